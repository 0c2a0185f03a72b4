/**
 * Draining a real `switchboard start` process (bridge/drain.ts, issue 15): SIGTERM makes it refuse new calls busy
 * (Twilio `<Reject reason="busy"/>`) and answer /readyz 503 `draining`, while its live call keeps streaming agent
 * audio until the caller hangs up; then it exits 0, the call ended normally and the node's row `stopped`. With a
 * small SWITCHBOARD_DRAIN_TIMEOUT_MS, a call still live at the limit is ended (embedded: no other node could take
 * it) with reason `drain timeout`, and the process exits 0 as well.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557654321';
let gw: GatewayProcess | null = null;
const peers: TwilioPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
  await gw?.stop();
  gw = null;
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' }));
    const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
    resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  } finally {
    store.close();
  }
}

function peer(g: GatewayProcess, from: string): TwilioPeer {
  const p = new TwilioPeer({ publicUrl: g.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from });
  peers.push(p);
  return p;
}

/** The process's exit code (it may have exited already). */
function exitCode(g: GatewayProcess): Promise<number | null> {
  if (g.child.exitCode !== null || g.child.signalCode !== null) return Promise.resolve(g.child.exitCode);
  return new Promise((resolve) => g.child.once('exit', (code) => resolve(code)));
}

async function readyz(g: GatewayProcess): Promise<{ status: number; body: { status?: string } }> {
  const res = await fetch(`${g.publicUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as { status?: string } };
}

function openStore(dataDir: string) {
  return Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
}

test('SIGTERM drains: a new call is refused busy, /readyz 503, the live call streams on until the caller hangs up, exit 0', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-drain-');
  await seed(dataDir);
  gw = await spawnGateway({ port, dataDir });
  const g = gw;
  const live = peer(g, '+15550002222');
  assert.equal((await live.dial()).kind, 'streaming');
  await live.waitFor(() => live.marksReceived >= 6, 15_000, 'the disclosure streaming');

  g.child.kill('SIGTERM');
  const deadline = performance.now() + 10_000;
  let ready = await readyz(g);
  while (ready.status !== 503 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    ready = await readyz(g);
  }
  assert.deepEqual([ready.status, ready.body.status], [503, 'draining']);

  const refused = await peer(g, '+15550003333').dial();
  assert.equal(refused.kind, 'rejected', JSON.stringify(refused));

  const before = live.receivedAudio().length;
  await live.waitFor(() => live.receivedAudio().length > before + 8000, 15_000, 'agent audio keeps flowing during the drain');
  assert.equal(g.child.exitCode, null, 'still running while its call is live');
  await live.hangup();
  assert.equal(await exitCode(g), 0);
  gw = null;

  const store = openStore(dataDir);
  try {
    const calls = store.read('default').calls.find({}, { orderBy: 'received_at' });
    assert.equal(calls.length, 1, 'the refused call made no call row');
    assert.equal(calls[0]?.state, 'ended');
    assert.doesNotMatch(String(calls[0]?.end_reason), /drain/);
    const node = store.read(null).nodes.find({})[0];
    assert.equal(node?.state, 'stopped');
    assert.equal(node?.down_reason, 'drained');
    const rejected = [...store.events()].filter((e) => e.reducer === 'call_rejected');
    assert.ok(rejected.some((e) => JSON.stringify(e.args).includes('draining')), 'the refusal is logged as draining');
    assert.ok(store.verify().ok);
  } finally {
    store.close();
  }
});

test('drain time limit with a call still live: embedded, the call is ended (drain timeout), node stopped, exit 0', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-drain-timeout-');
  await seed(dataDir);
  gw = await spawnGateway({ port, dataDir, env: { SWITCHBOARD_DRAIN_TIMEOUT_MS: '1500' } });
  const g = gw;
  const live = peer(g, '+15550004444');
  assert.equal((await live.dial()).kind, 'streaming');
  await live.waitFor(() => live.marksReceived >= 2, 15_000, 'media flowing');
  g.child.kill('SIGTERM');
  assert.equal(await exitCode(g), 0);
  gw = null;

  const store = openStore(dataDir);
  try {
    const call = store.read('default').calls.find({})[0];
    assert.equal(call?.state, 'ended');
    assert.match(String(call?.end_reason), /drain timeout \(1500 ms\)/);
    const node = store.read(null).nodes.find({})[0];
    assert.equal(node?.state, 'stopped');
    assert.match(String(node?.down_reason), /^drain timeout \(1500 ms\): 1 call\(s\) ended$/);
    assert.ok(store.verify().ok);
  } finally {
    store.close();
  }
});
