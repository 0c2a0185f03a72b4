/**
 * The console's live badge resumes its subscription across a gateway restart: headless Chromium signed in, one
 * active call; the gateway stops, calls start and end meanwhile (another writer on the data dir), the gateway comes
 * back on the same port and data dir. The console reconnects with `since` = the last seq it saw, gets `resumed` and
 * the deltas it missed — no new snapshot — and the badge goes from the old count to the new one without ever
 * showing an empty list in between.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { schema } from '../../schema/index.ts';
import { call_ended, call_received } from '../../schema/reducers.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { ADMIN_TOKEN, freePort, startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>> | undefined;
let browser: Browser | undefined;
after(async () => {
  await browser?.close();
  await gw?.stop();
});

type Frame = Record<string, unknown> & { type: string };

test('the console resumes its live subscription after a gateway restart: the missed deltas, no snapshot, no flicker', { timeout: 120_000 }, async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/ensure-deps.sh" or set SWITCHBOARD_CHROMIUM`);
  const port = await freePort();
  const dataDir = tmpDir('sb-console-resume-');
  gw = await startTestGateway({ port, dataDir });
  const who = { tenant: 'default', caller: 'system:test' };
  const { call_id: first } = resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAresume1', from: '+15550001001', to: '+15550002222' }, who));

  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 30_000 });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(30_000);
  const sent: Frame[] = [];
  const received: Frame[] = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => sent.push(JSON.parse(String(f.payload)) as Frame));
    ws.on('framereceived', (f) => {
      const m = JSON.parse(String(f.payload)) as Frame;
      // only the live-calls badge's subscription (the approvals panel has its own)
      if (m.id === undefined || m.id === 'live-calls') received.push(m);
    });
  });
  await page.goto(`${gw.publicUrl}/console`);
  await page.getByText('Sign in with an API token').click();
  await page.getByLabel('API token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  const live = page.locator('#live');
  await live.filter({ hasText: 'Live: 1 active call' }).waitFor();
  // Every text the badge shows from now on.
  await page.evaluate(() => {
    const el = document.getElementById('live') as HTMLElement;
    const seen: string[] = [];
    (window as unknown as { __live: string[] }).__live = seen;
    new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
  });
  const lastSeq = Math.max(...received.filter((m) => typeof m.seq === 'number').map((m) => m.seq as number));
  const before = received.length;

  await gw.stop();
  gw = undefined;
  await live.filter({ hasText: 'offline' }).waitFor();
  // Meanwhile, another writer on the data dir: two calls start, the first ends.
  const offline = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    for (const n of [2, 3]) resultOf(await offline.submit(call_received, { provider: 'twilio', provider_call_id: `CAresume${n}`, from: `+1555000100${n}`, to: '+15550002222' }, who));
    resultOf(await offline.submit(call_ended, { call_id: first, reason: 'caller_hangup' }, who));
  } finally {
    offline.close();
  }
  gw = await startTestGateway({ port, dataDir });
  await live.filter({ hasText: 'Live: 2 active calls' }).waitFor();

  // The live-calls badge's subscription (the approvals panel subscribes on its own socket too).
  const resubscribe = sent.filter((m) => m.type === 'subscribe' && m.id === 'live-calls').at(-1);
  assert.equal(resubscribe?.since, lastSeq, 'the console resumed from the last seq it saw');
  const after = received.slice(before);
  assert.ok(after.some((m) => m.type === 'resumed' && m.since === lastSeq), JSON.stringify(after));
  assert.equal(after.filter((m) => m.type === 'snapshot').length, 0, 'no new snapshot');
  assert.deepEqual(after.filter((m) => m.type === 'delta').map((m) => m.op), ['insert', 'insert', 'delete']);
  const shown = await page.evaluate(() => (window as unknown as { __live: string[] }).__live);
  assert.ok(!shown.includes('Live: 0 active calls'), `the badge never went empty: ${JSON.stringify(shown)}`);
});
