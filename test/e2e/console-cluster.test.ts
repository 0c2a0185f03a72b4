/**
 * The console's cluster view (issue 15), driven by headless Chromium against an in-process gateway: the nodes panel
 * (`GET /v1/cluster/nodes`) and the owner column of the calls list. The data dir first holds the log of another
 * node (`node-x`: a heartbeat with a lease and a call it received), then the embedded gateway starts on it: its
 * start records that node `stopped` ("superseded … embedded: one node"). The admin sees both nodes with their
 * states, versions and the down reason, and each call's owning node in the list; an auditor (not an admin of the
 * operator tenant) sees the owner column but no nodes panel. `/console/nodes.js` is served like the other assets.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../api/console.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { schema } from '../../schema/index.ts';
import { call_received, node_heartbeat } from '../../schema/reducers.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api, userToken } from '../helpers/api.ts';
import { finishedCall } from '../helpers/call-fixture.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const OTHER = 'node-x';
const OTHER_FROM = '+15550104444';
const OWN_FROM = '+15550105555';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let browser: Browser;
const contexts: BrowserContext[] = [];

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/ensure-deps.sh" or set SWITCHBOARD_CHROMIUM`);
  const dataDir = tmpDir('sb-console-cluster-');
  // Another node's log first: its heartbeat (a lease) and a call it received.
  const other = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node: OTHER });
  resultOf(await other.submit(node_heartbeat, { lease_ms: 15_000, version: '0.0.9', boot: true }, { tenant: 'default', caller: 'system:node' }));
  resultOf(await other.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-console-cluster', from: OTHER_FROM, to: '+15551230000' }, { tenant: 'default', caller: 'test' }));
  await other.close();
  gw = await startTestGateway({ dataDir, env: { SWITCHBOARD_NODE_ID: 'node-main' } });
  await finishedCall(gw.store, new FsBlobStore(gw.dataDir), { tenant: 'default', master: loadOrCreateMasterKey(gw.dataDir), from: OWN_FROM });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 30_000 });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await gw?.stop();
});

/** Signs in with a token through "Sign in with an API token"; collects page errors and CSP refusals. */
async function signedIn(token: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  assert.equal((await page.goto(`${gw.publicUrl}/console`))?.status(), 200);
  await page.getByText('Sign in with an API token').click();
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  await page.locator('#calls-body tr').nth(1).waitFor();
  return { page, problems };
}

/** The text of each cell of the calls-list row whose From is `from`, by column header. */
async function callCells(page: Page, from: string): Promise<Record<string, string>> {
  const headers = await page.locator('#calls-table thead th').allInnerTexts();
  const cells = await page.locator('#calls-body tr', { hasText: from }).locator('td').allInnerTexts();
  return Object.fromEntries(headers.map((hd, i) => [hd.trim(), (cells[i] ?? '').trim()]));
}

test('/console/nodes.js is served with the console CSP and renders no HTML from strings', async () => {
  const res = await fetch(`${gw.publicUrl}/console/nodes.js`);
  assert.equal(res.status, 200);
  assert.ok(res.headers.get('content-type')?.startsWith('text/javascript'));
  assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.doesNotMatch(await res.text(), /\.innerHTML\s*=|insertAdjacentHTML|document\.write/);
});

test("an admin sees the nodes panel (this node alive, the other stopped with its reason) and each call's owner", { timeout: 60_000 }, async () => {
  const { page, problems } = await signedIn(ADMIN_TOKEN);
  const panel = page.locator('#nodes');
  await panel.waitFor();
  await page.locator('#nodes-status', { hasText: 'Embedded' }).waitFor();
  assert.match(await page.locator('#nodes-status').innerText(), new RegExp(`2 nodes \\(1 alive, 1 stopped\\); this console is served by ${gw.store.node}`));

  const self = panel.locator(`tr[data-node-id="${gw.store.node}"]`);
  assert.match(await self.innerText(), /\(this node\)/);
  assert.equal((await self.locator('.state').innerText()).trim(), 'alive');
  assert.match(await self.innerText(), /no expiry/);
  const other = panel.locator(`tr[data-node-id="${OTHER}"]`);
  assert.equal((await other.locator('.state').innerText()).trim(), 'stopped');
  assert.match(await other.innerText(), /0\.0\.9/);
  assert.match(await other.innerText(), new RegExp(`superseded by ${gw.store.node} \\(embedded: one node\\)`));

  // The calls list: a Node column naming each call's owner.
  assert.equal((await callCells(page, OTHER_FROM)).Node, OTHER);
  assert.equal((await callCells(page, OWN_FROM)).Node, gw.store.node);
  assert.deepEqual(problems, []);
});

test('an auditor sees the owner column but not the nodes panel (admins of the operator tenant only)', { timeout: 60_000 }, async () => {
  const auditor = await userToken(gw.publicUrl, 'auditor');
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/cluster/nodes', { token: auditor.token })).status, 403);
  const { page, problems } = await signedIn(auditor.token);
  assert.equal((await callCells(page, OTHER_FROM)).Node, OTHER);
  assert.equal(await page.locator('#nodes').isVisible(), false);
  assert.deepEqual(problems, []);
});
