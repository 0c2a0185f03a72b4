/**
 * Nodes and call ownership (schema/nodes.ts): leases renewed by one heartbeat per node, the verdict "lost" carried
 * by another node's heartbeat by command time, and the claim in `call_media_connected` refused while another
 * node's lease runs. Two nodes are one data dir opened in turn under two names (each command carries its node);
 * time is the store's injected clock (each command's ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call_media_connected, call_media_lost, call_received, call_resume_requested, node_drain_started, node_heartbeat, node_stopped } from '../../../schema/reducers.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { schema } from '../../../schema/index.ts';
import { resolveDurability, Store } from '../../../store/index.ts';

const OPS = { tenant: 'default', caller: 'system:node' };
const LEASE = 3_000;

/** The data dir opened as `node` with the clock at `now.t`. */
function asNode(dir: string, node: string, now: { t: number }) {
  return Store.open({ dataDir: dir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node, clock: () => now.t });
}

async function newCall(store: ReturnType<typeof openTestStore>, sid: string): Promise<string> {
  return resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: sid, from: '+15550001111', to: '+15551234567' }, T)).call_id;
}

test('a heartbeat renews the node lease in one row; another node lost by a later heartbeat comes back alive on its own', async () => {
  const dir = tmpDir();
  const now = { t: 1_000_000 };
  let s = asNode(dir, 'node-a', now);
  const first = resultOf(await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS));
  assert.deepEqual(first, { node: 'node-a', lease_until: 1_003_000, rejoined: false, lost: [] });
  now.t += 1_000;
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0' }, OPS);
  let a = s.read(null).nodes.get('node-a');
  assert.equal(a?.state, 'alive');
  assert.equal(a?.started_at, 1_000_000);
  assert.equal(a?.last_heartbeat_at, 1_001_000);
  assert.equal(a?.lease_until, 1_004_000);
  s.close();

  // node-b's heartbeat inside node-a's lease: nothing said about node-a.
  now.t = 1_003_999;
  s = asNode(dir, 'node-b', now);
  assert.deepEqual(resultOf(await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS)).lost, []);
  // At the lease's end (by command time): node-a is lost.
  now.t = 1_004_000;
  assert.deepEqual(resultOf(await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0' }, OPS)).lost, ['node-a']);
  a = s.read(null).nodes.get('node-a');
  assert.equal(a?.state, 'lost');
  assert.equal(a?.down_at, 1_004_000);
  assert.match(a?.down_reason ?? '', /lease expired/);
  s.close();

  // node-a was only paused: its next heartbeat makes it alive again.
  now.t = 1_009_000;
  s = asNode(dir, 'node-a', now);
  const back = resultOf(await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0' }, OPS));
  assert.equal(back.rejoined, true);
  assert.deepEqual(back.lost, ['node-b']);
  assert.equal(s.read(null).nodes.get('node-a')?.state, 'alive');
  assert.equal(s.read(null).nodes.get('node-a')?.started_at, 1_000_000);
  s.close();
});

test('a claim (call_media_connected) is refused while the owner’s lease runs, granted once it expired', async () => {
  const dir = tmpDir();
  const now = { t: 2_000_000 };
  let s = asNode(dir, 'node-a', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  const call = await newCall(s, 'CA-owned');
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-a' }, T));
  assert.equal(s.read('acme').calls.get(call)?.owner_node, 'node-a');
  // The owner's own claim again (a resume on the same node) is granted.
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-a2' }, T));
  s.close();

  now.t = 2_002_999;
  s = asNode(dir, 'node-b', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  const refused = await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-b' }, T);
  assert.equal(refused.outcome.ok, false);
  assert.ok(!refused.outcome.ok);
  assert.equal(refused.outcome.error.code, 'call_owned');
  assert.match(refused.outcome.error.message, /owned by node node-a \(lease until .*\); node node-b may take it/);
  assert.equal(s.read('acme').calls.get(call)?.owner_node, 'node-a');
  assert.equal(s.read('acme').legs.find({ call_id: call }).length, 2, 'the refused claim left no leg');

  now.t = 2_003_000; // node-a's lease has ended (not yet marked lost: expiry alone suffices)
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-b' }, T));
  assert.equal(s.read('acme').calls.get(call)?.owner_node, 'node-b');
  s.close();

  // node-a comes back: its heartbeat renews its lease, but the call is node-b's; node-a's claim is refused now.
  now.t = 2_004_000;
  s = asNode(dir, 'node-a', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0' }, OPS);
  const late = await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-a3' }, T);
  assert.ok(!late.outcome.ok);
  assert.equal(late.outcome.error.code, 'call_owned');
  s.close();
});

test('within the owner’s lease a claim is granted when the owner’s media never connected or the owner said it is lost, refused when only superseded', async () => {
  const dir = tmpDir();
  const now = { t: 5_000_000 };
  let s = asNode(dir, 'node-a', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  const fresh = await newCall(s, 'CA-fresh'); // received here (owner node-a), media not yet connected anywhere
  const dropped = await newCall(s, 'CA-dropped');
  const stalled = await newCall(s, 'CA-stalled');
  const leg = resultOf(await s.submit(call_media_connected, { call_id: dropped, provider: 'twilio', media_session: 'MZ-d' }, T)).leg_id;
  resultOf(await s.submit(call_media_lost, { call_id: dropped, leg_id: leg, reason: 'socket closed (1006)' }, T));
  resultOf(await s.submit(call_media_connected, { call_id: stalled, provider: 'twilio', media_session: 'MZ-s' }, T));
  s.close();

  now.t += 1_000; // node-a's lease runs
  s = asNode(dir, 'node-b', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  resultOf(await s.submit(call_media_connected, { call_id: fresh, provider: 'twilio', media_session: 'MZ-b1' }, T));
  resultOf(await s.submit(call_resume_requested, { call_id: dropped, reason: 'twilio redirect' }, T));
  resultOf(await s.submit(call_media_connected, { call_id: dropped, provider: 'twilio', media_session: 'MZ-b2' }, T));
  // node-a may still be sending this one (its leg closed only by node-b's resume request): refused until the lease ends
  resultOf(await s.submit(call_resume_requested, { call_id: stalled, reason: 'twilio redirect' }, T));
  const r = await s.submit(call_media_connected, { call_id: stalled, provider: 'twilio', media_session: 'MZ-b3' }, T);
  assert.ok(!r.outcome.ok);
  assert.equal(r.outcome.error.code, 'call_owned');
  const calls = s.read('acme').calls;
  assert.deepEqual([calls.get(fresh)?.owner_node, calls.get(dropped)?.owner_node, calls.get(stalled)?.owner_node], ['node-b', 'node-b', 'node-a']);
  now.t += LEASE;
  resultOf(await s.submit(call_media_connected, { call_id: stalled, provider: 'twilio', media_session: 'MZ-b3' }, T));
  assert.equal(s.read('acme').calls.get(stalled)?.owner_node, 'node-b');
  s.close();
});

test('draining, then stopped: the stopped node’s calls may be taken at once (a handover); a boot heartbeat makes it alive', async () => {
  const dir = tmpDir();
  const now = { t: 3_000_000 };
  let s = asNode(dir, 'node-a', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  const call = await newCall(s, 'CA-drain');
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-a' }, T));
  assert.deepEqual(resultOf(await s.submit(node_drain_started, { timeout_ms: 60_000 }, OPS)), { node: 'node-a', drain_until: 3_060_000, already: false });
  now.t += 1_000;
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0' }, OPS);
  assert.equal(s.read(null).nodes.get('node-a')?.state, 'draining', 'a heartbeat keeps the drain');
  assert.equal(resultOf(await s.submit(node_drain_started, { timeout_ms: 5 }, OPS)).already, true);
  resultOf(await s.submit(node_stopped, { reason: 'drain timeout: 1 call left for handover' }, OPS));
  const a = s.read(null).nodes.get('node-a');
  assert.equal(a?.state, 'stopped');
  assert.equal(a?.lease_until, now.t);
  s.close();

  s = asNode(dir, 'node-b', now); // same instant: node-a's lease ran, but it stopped
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-b' }, T));
  assert.equal(s.read('acme').calls.get(call)?.owner_node, 'node-b');
  s.close();

  s = asNode(dir, 'node-a', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  assert.equal(s.read(null).nodes.get('node-a')?.state, 'alive');
  assert.equal(s.read(null).nodes.get('node-a')?.drain_until, null);
  s.close();
});

test('embedded: without node rows (an older log) a claim by any node is granted; a sole node stops the names before it', async () => {
  const dir = tmpDir();
  const now = { t: 4_000_000 };
  let s = asNode(dir, 'old-name', now);
  const call = await newCall(s, 'CA-embedded');
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-1' }, T));
  s.close();
  s = asNode(dir, 'new-name', now);
  resultOf(await s.submit(call_media_connected, { call_id: call, provider: 'twilio', media_session: 'MZ-2' }, T));
  assert.equal(s.read('acme').calls.get(call)?.owner_node, 'new-name');
  s.close();

  s = asNode(dir, 'old-name', now);
  await s.submit(node_heartbeat, { lease_ms: null, version: '0.1.0', boot: true, sole: true }, OPS);
  assert.equal(s.read(null).nodes.get('old-name')?.lease_until, null);
  s.close();
  s = asNode(dir, 'new-name', now);
  const r = resultOf(await s.submit(node_heartbeat, { lease_ms: null, version: '0.1.0', boot: true, sole: true }, OPS));
  assert.deepEqual(r.lost, ['old-name']);
  assert.equal(s.read(null).nodes.get('old-name')?.state, 'stopped');
  s.close();
});
