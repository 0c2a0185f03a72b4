/**
 * Cluster mode's log (store/jetstream-log.ts) on a real 3-server NATS JetStream cluster: several Store instances
 * (nodes, each with its own SQLite) on one stream apply every command in one order, with one hash chain.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { resolveDurability, Store, StoreError } from '../../store/index.ts';
import { databaseOf } from '../../store/testing.ts';
import { freePort } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tallySchema } from '../helpers/tally-schema.ts';
import { tmpDir } from '../helpers/tmp.ts';

let nats: NatsCluster;
const open: Store<typeof tallySchema.tables>[] = [];

before(async () => {
  nats = await startNatsCluster(3);
});

after(async () => {
  for (const s of open) s.close();
  await Promise.all(open.map((s) => s.whenClosed()));
  await nats.stop();
});

async function node(name: string, dataDir = tmpDir(), stream = 'SWITCHBOARD_LOG', servers = nats.urls): Promise<Store<typeof tallySchema.tables>> {
  const s = await Store.openCluster({
    dataDir,
    schema: tallySchema,
    durability: resolveDurability({ profile: 'development', fsync: 'never' }),
    checkpointEvery: 50,
    checkpointMs: 0,
    node: name,
    cluster: { servers, stream, replicas: 3 },
  });
  open.push(s);
  return s;
}

function ids(s: Store<typeof tallySchema.tables>): string[] {
  return [...s.events()].map((e) => e.id);
}

/** Waits until every node has applied what any of them has. */
async function settle(...nodes: Store<typeof tallySchema.tables>[]): Promise<void> {
  const target = Math.max(...nodes.map((n) => n.logPosition));
  await Promise.all(nodes.map((n) => n.waitForPosition(target)));
}

const who = (tenant = 'acme') => ({ tenant, caller: 'test' });

test('two nodes submitting concurrently apply every command in one order, one head hash, verify passes on both', async () => {
  const stream = 'LOG_CONCURRENT';
  const dirA = tmpDir();
  const dirB = tmpDir();
  const a = await node('node-a', dirA, stream);
  const b = await node('node-b', dirB, stream);
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < 150; i++) {
    work.push(a.submitNamed('put', { id: `a${i % 40}`, n: i }, who()));
    work.push(b.submitNamed('put', { id: `b${i % 40}`, n: i }, who()));
    if (i % 25 === 0) work.push(b.submitNamed('put_then_fail', { id: `f${i}` }, who()));
    if (i % 30 === 0) work.push(a.submitNamed('mint', { kind: 'x' }, who()));
  }
  const receipts = await Promise.all(work);
  assert.equal(receipts.length, work.length);
  // read-your-writes on the submitting node: what a submit resolved with is in that node's tables already
  const last = await a.submitNamed('put', { id: 'ryw', n: 7 }, who());
  assert.equal(last.outcome.ok, true);
  assert.equal(a.read('acme').tally.get('ryw')?.n, 7);
  await settle(a, b);
  const order = ids(a);
  assert.equal(order.length, work.length + 1);
  assert.deepEqual(ids(b), order);
  assert.deepEqual(a.head, b.head);
  assert.deepEqual(a.digest(), b.digest());
  for (const s of [a, b]) {
    s.checkpointNow();
    const report = s.verify();
    assert.equal(report.ok, true, report.problems.join('; '));
    assert.equal(report.headHash, a.head.hash);
  }
  // every node signed its own checkpoints with its own key
  assert.notEqual(a.publicKeyPem, b.publicKeyPem);
  // each event names the node that submitted it
  const nodes = new Set([...a.events()].map((e) => e.node));
  assert.deepEqual([...nodes].sort(), ['node-a', 'node-b']);
});

test('a duplicate command id returns its recorded outcome on either node, also when both submit it at once', async () => {
  const stream = 'LOG_DUP';
  const a = await node('node-a', tmpDir(), stream);
  const b = await node('node-b', tmpDir(), stream);
  const first = await a.submitNamed('put', { id: 'd1', n: 1 }, { ...who(), id: 'cmd-dup-1' });
  assert.equal(first.duplicate, false);
  await settle(a, b);
  const again = await b.submitNamed('put', { id: 'd1', n: 99 }, { ...who(), id: 'cmd-dup-1' });
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
  assert.deepEqual(again.outcome, first.outcome);
  const [x, y] = await Promise.all([
    a.submitNamed('put', { id: 'd2', n: 1 }, { ...who(), id: 'cmd-dup-2' }),
    b.submitNamed('put', { id: 'd2', n: 2 }, { ...who(), id: 'cmd-dup-2' }),
  ]);
  assert.equal(x.seq, y.seq);
  assert.deepEqual(x.outcome, y.outcome);
  await settle(a, b);
  assert.equal(ids(a).filter((id) => id === 'cmd-dup-2').length, 1);
  assert.deepEqual(ids(a), ids(b));
  assert.equal(a.read('acme').tally.get('d1')?.n, 1);
});

test('a late node catches up, a restarted node resumes exactly once, a wiped node rebuilds with the same replay digest', async () => {
  const stream = 'LOG_CATCHUP';
  const a = await node('node-a', tmpDir(), stream);
  for (let i = 0; i < 60; i++) await a.submitNamed('put', { id: `k${i % 10}`, n: i }, who());
  const dirC = tmpDir();
  const c = await node('node-c', dirC, stream);
  // openCluster returns once the node has applied what the stream held when it opened
  assert.deepEqual(c.head, a.head);
  assert.deepEqual(ids(c), ids(a));
  // restart: resumes after its recorded stream position, applies nothing twice
  c.close();
  await c.whenClosed();
  await Promise.all(Array.from({ length: 20 }, (_, i) => a.submitNamed('put', { id: `late${i}`, n: i }, who())));
  const c2 = await node('node-c', dirC, stream);
  assert.deepEqual(c2.head, a.head);
  assert.deepEqual(ids(c2), ids(a));
  // wiped: its SQLite is rebuilt from the log
  c2.close();
  await c2.whenClosed();
  fs.rmSync(dirC, { recursive: true, force: true });
  const c3 = await node('node-c', dirC, stream);
  assert.deepEqual(c3.head, a.head);
  const ra = a.replay();
  const rc = c3.replay();
  assert.equal(rc.ok, true);
  assert.equal(rc.replayDigest, ra.replayDigest);
  assert.equal(rc.liveDigest, ra.liveDigest);
  assert.equal(c3.verify().ok, true);
  // opened without the cluster (an offline tool): reads work, a write is refused (it would fork this copy)
  c3.close();
  await c3.whenClosed();
  const offline = Store.open({ dataDir: dirC, schema: tallySchema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0 });
  try {
    assert.equal(offline.read('acme').tally.get('late3')?.n, 3);
    await assert.rejects(offline.submitNamed('put', { id: 'fork', n: 1 }, who()), /cluster node's copy of the log/);
  } finally {
    offline.close();
  }
});

test('messages delivered again after a crash (the position behind the applied commands) are not applied twice', async () => {
  const stream = 'LOG_REDELIVER';
  const a = await node('node-a', tmpDir(), stream);
  const dirB = tmpDir();
  const b = await node('node-b', dirB, stream);
  await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).submitNamed('put', { id: `r${i % 7}`, n: i }, who())));
  await settle(a, b);
  const head = b.head;
  b.close();
  await b.whenClosed();
  // as if the process died after applying commands whose message position was not yet recorded
  const raw = Store.open({ dataDir: dirB, schema: tallySchema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0 });
  databaseOf(raw).prepare("UPDATE _meta SET value = '1' WHERE key = 'stream_seq'").run();
  raw.close();
  const b2 = await node('node-b', dirB, stream);
  assert.deepEqual(b2.head, head, 'every re-delivered command was a duplicate: nothing applied twice');
  assert.ok(b2.logPosition >= a.logPosition);
  await b2.submitNamed('put', { id: 'after', n: 1 }, who());
  await settle(a, b2);
  assert.deepEqual(ids(b2), ids(a));
  assert.deepEqual(b2.head, a.head);
  assert.equal(b2.verify().ok, true);
});

for (const refill of [false, true]) {
  const how = refill ? 'holds other messages at the numbers a node applied' : 'now ends before what a node applied';
  test(`a stream that ${how} (the servers lost acknowledged messages) halts the node with log_inconsistent, instead of applying reused numbers`, { timeout: 120_000 }, async () => {
    const stream = refill ? 'LOG_REUSED' : 'LOG_REGRESSED';
    const a = await node('node-a', tmpDir(), stream);
    for (let i = 0; i < 5; i++) await a.submitNamed('put', { id: `r${i}`, n: i }, who());
    const applied = a.logPosition;
    // what a NATS cluster that lost its majority's unwritten messages looks like: the same stream, ending earlier —
    // or, once others published, other messages under the same numbers
    const nc = await connect({ servers: nats.urls });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    await jsm.streams.delete(stream);
    await jsm.streams.add({ ...info.config });
    if (refill) {
      const js = jetstream(nc);
      for (let i = 0; i < applied + 2; i++) await js.publish(`${stream}.commands`, JSON.stringify({ v: 1, c: [[`other-${i}`, 1, 'node-x', 'acme', 'test', 'put', JSON.stringify({ id: `o${i}`, n: i })]] }));
    }
    await nc.close();
    const deadline = Date.now() + 60_000;
    let refusal: unknown = null;
    while (Date.now() < deadline && !refusal) {
      await a.submitNamed('put', { id: 'next', n: 1 }, who()).catch((err: unknown) => (refusal = err));
      if (!refusal) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(refusal instanceof StoreError && refusal.code === 'log_inconsistent', String(refusal));
    assert.match((refusal as StoreError).message, new RegExp(`stream ${stream} (now ends at message \\d+, before message ${applied} this node applied|holds another message at ${applied} than the one this node applied there): the NATS servers lost messages.*wipe its data dir`));
    assert.equal(ids(a).filter((id) => id.startsWith('other-')).length, 0, 'no message of the refilled stream was applied');
    assert.equal(a.verify().ok, true, 'what the node applied is intact');
  });
}

test('one NATS server killed: commands still commit (quorum 2 of 3) on every node', async () => {
  const stream = 'LOG_QUORUM';
  const a = await node('node-a', tmpDir(), stream);
  const b = await node('node-b', tmpDir(), stream);
  await a.submitNamed('put', { id: 'before', n: 1 }, who());
  nats.kill(2);
  const after = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).submitNamed('put', { id: `q${i}`, n: i }, who())));
  assert.ok(after.every((r) => r.outcome.ok));
  await settle(a, b);
  assert.deepEqual(a.head, b.head);
  assert.equal(a.verify().ok, true);
});

test('an unreachable NATS is one clear error naming SWITCHBOARD_CLUSTER_NATS', async () => {
  const port = await freePort();
  await assert.rejects(
    Store.openCluster({
      dataDir: tmpDir(),
      schema: tallySchema,
      durability: resolveDurability({ profile: 'development', fsync: 'never' }),
      checkpointMs: 0,
      cluster: { servers: [`nats://127.0.0.1:${port}`], connectTimeoutMs: 1500 },
    }),
    (err: unknown) => err instanceof StoreError && /SWITCHBOARD_CLUSTER_NATS: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+/.test(err.message),
  );
});
