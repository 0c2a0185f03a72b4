/**
 * Call ownership on a real 3-server NATS JetStream cluster (schema/nodes.ts, bridge/ownership.ts): two nodes, each
 * a Store on the one stream with its own CallManager, CallControl and NodeOwnership, attach media for the same
 * call. The log's order decides: exactly one claim wins, the other's media is refused through call control; and
 * a node that applies another node's claim on a call it carries stops that call's media at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { Agent } from '../../agents/types.ts';
import { CallControl } from '../../bridge/call-control.ts';
import { CallManager } from '../../bridge/call-manager.ts';
import { NodeOwnership } from '../../bridge/ownership.ts';
import type { RecordingHandle } from '../../bridge/recording-port.ts';
import { MediaClock } from '../../media/pacer.ts';
import { schema, type SwitchboardTables } from '../../schema/index.ts';
import { call_answered, call_received, consent_decided, consent_policy_created, consent_started, tenant_created } from '../../schema/reducers.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const T = { tenant: 'acme', caller: 'test' };
const LEASE_MS = 1_500;
let nats: NatsCluster;
const cleanup: Array<() => Promise<void> | void> = [];

before(async () => {
  nats = await startNatsCluster(3);
});

after(async () => {
  for (const c of cleanup.reverse()) await c();
  await nats.stop();
});

interface Node {
  store: Store<SwitchboardTables>;
  calls: CallManager;
  control: CallControl;
  ownership: NodeOwnership;
  clock: MediaClock;
}

/** A node on `stream`: store, media clock gated by its lease, sessions, call control, ownership (started). */
async function node(name: string, stream: string, opts: { clockSkewMs?: number } = {}): Promise<Node> {
  const skew = opts.clockSkewMs ?? 0;
  const store = await Store.openCluster({
    dataDir: tmpDir(),
    schema,
    durability: resolveDurability({ profile: 'development', fsync: 'never' }),
    checkpointMs: 0,
    node: name,
    clock: () => Date.now() + skew,
    cluster: { servers: nats.urls, stream, replicas: 3 },
  });
  const logger = pino({ level: 'silent' });
  let ownership: NodeOwnership | null = null;
  const clock = new MediaClock({ gate: () => ownership?.mayTransmit() ?? true });
  clock.start();
  const agent: Agent = { name: 'a', version: '1', has: () => false, runTurn: async () => ({ state: {} }), runTool: async () => null };
  const handle: RecordingHandle = { recordingId: 'rec', tap: { name: 'recorder', process: () => undefined }, pause: async () => undefined, finish: async () => undefined };
  const calls = new CallManager({
    store,
    clock,
    tts: { name: 'silence', synthesize: async (_text: string, rate: number) => new Int16Array(rate / 50) },
    agents: { select: async () => agent, retain: () => undefined, release: () => undefined },
    logger,
    stt: { name: 'none', startSession: () => ({ write: () => undefined, end: async () => undefined, close: () => undefined, on: () => () => undefined }) },
    recordings: { begin: async () => handle },
  } as unknown as ConstructorParameters<typeof CallManager>[0]);
  ownership = new NodeOwnership({ store, sessions: calls, cluster: true, leaseMs: LEASE_MS, version: 'test', logger });
  await ownership.start();
  const control = new CallControl({ store, sessions: calls, logger });
  const n = { store, calls, control, ownership, clock };
  cleanup.push(async () => {
    await ownership?.stop();
    calls.close();
    clock.stop();
    store.close();
    await store.whenClosed();
  });
  return n;
}

/** A call answered with consent granted (so its session goes straight to the agent), written on `n`. */
async function liveCall(n: Node, sid: string): Promise<string> {
  const s = n.store;
  if (!s.read(null).tenants.get('acme')) await s.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const policy = s.read('acme').consent_policies.findOne({ name: 'p' })?.id ?? resultOf(await s.submit(consent_policy_created, { name: 'p', mode: 'notify', disclosure_text: 'Recorded.' }, T)).policy_id;
  const callId = resultOf(await s.submit(call_received, { provider: 'webrtc', provider_call_id: sid, from: 'a', to: 'b' }, T)).call_id;
  resultOf(await s.submit(call_answered, { call_id: callId }, T));
  const { consent_id } = resultOf(await s.submit(consent_started, { call_id: callId, policy_id: policy }, T));
  resultOf(await s.submit(consent_decided, { consent_id, outcome: 'granted', method: 'implied', evidence: {} }, T));
  return callId;
}

async function settle(...nodes: Node[]): Promise<void> {
  const target = Math.max(...nodes.map((n) => n.store.logPosition));
  await Promise.all(nodes.map((n) => n.store.waitForPosition(target)));
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not met within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('two nodes attach media for the same call at once: exactly one owner, the other’s media is refused', async () => {
  const a = await node('node-a', 'LOG_RACE');
  const b = await node('node-b', 'LOG_RACE');
  for (let round = 0; round < 5; round++) {
    const callId = await liveCall(a, `race-${round}`);
    await settle(a, b);
    const ref = { tenant: 'acme', callId };
    const legA = new MemoryLeg(false);
    const legB = new MemoryLeg(false);
    const [ra, rb] = await Promise.allSettled([a.control.attach(ref, legA), b.control.attach(ref, legB)]);
    await settle(a, b);
    const owner = a.store.read('acme').calls.get(callId)?.owner_node;
    assert.equal(b.store.read('acme').calls.get(callId)?.owner_node, owner, 'both nodes hold one owner');
    const [won, lost, lostLeg, wonLeg, winner] = ra.status === 'fulfilled' ? [ra, rb, legB, legA, a] : [rb, ra, legA, legB, b];
    assert.equal(won.status, 'fulfilled', `round ${round}: one claim wins`);
    assert.equal(lost.status, 'rejected', `round ${round}: the other is refused`);
    assert.equal(owner, winner.store.node);
    assert.match(String((lost as PromiseRejectedResult).reason), /owned by node node-[ab]/);
    assert.equal(lostLeg.closed, true, 'the loser closed its media');
    assert.match(lostLeg.closedWith?.reason ?? '', /^media refused: call .* is owned by node/);
    assert.equal(wonLeg.closed, false);
    assert.equal(winner.calls.has(callId), true);
    assert.equal((winner === a ? b : a).calls.has(callId), false, 'no session on the loser');
    const claims = [...a.store.events()].filter((e) => e.reducer === 'call_media_connected' && (e.args as { call_id: string }).call_id === callId);
    assert.deepEqual(
      claims.map((e) => (e.outcome.ok ? 'ok' : e.outcome.error.code)),
      ['ok', 'call_owned'],
    );
    a.calls.get(callId)?.detach('round over');
    b.calls.get(callId)?.detach('round over');
  }
  await settle(a, b);
  assert.deepEqual(a.store.head, b.store.head);
  assert.deepEqual(a.store.digest(), b.store.digest());
});

test('a node that applies another node’s claim on its call stops that call’s media at once', async () => {
  // node-b's clock runs LEASE_MS ahead: by its commands' times node-a's lease has run out although node-a keeps
  // heartbeating — the log grants node-b's claim, and node-a must learn it from the log alone.
  const a = await node('fence-a', 'LOG_FENCE');
  const b = await node('fence-b', 'LOG_FENCE', { clockSkewMs: LEASE_MS * 4 });
  const callId = await liveCall(a, 'fence-1');
  const ref = { tenant: 'acme', callId };
  const legA = new MemoryLeg(false);
  const session = (await a.control.attach(ref, legA))!; // a session: no transfer waits for this call
  void session.pipeline.play(new Int16Array(8000 * 30).fill(2000));
  await until(() => legA.sentFrames.length >= 10, 'node-a sends the agent’s audio');
  await settle(a, b);
  const legB = new MemoryLeg(false);
  await b.control.attach(ref, legB);
  // node-b's submit resolved once node-b applied it; node-a applies the same position next.
  await a.store.waitForPosition(b.store.logPosition);
  assert.equal(legA.closed, true, 'node-a closed the call’s media on applying the claim');
  assert.match(legA.closedWith?.reason ?? '', /^ownership lost: call taken over by fence-b \(seq \d+\)$/);
  const sent = legA.sentFrames.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(legA.sentFrames.length, sent, 'no frame after the fence');
  assert.equal(a.calls.has(callId), false);
  assert.equal(a.store.read('acme').calls.get(callId)?.owner_node, 'fence-b');
  assert.equal(legB.closed, false);
});
