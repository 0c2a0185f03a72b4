/**
 * Checkpoint attestations of several nodes (store/attestations.ts, store/jetstream-attestations.ts) on a real
 * 3-server NATS cluster: each node publishes the checkpoints it signs, every node stores them all, and `verify` on any
 * node reports which nodes attested each position and checks every attestation against its own chain. A tampered
 * attestation (bad signature) and a forged one (a node's real key over another hash) fail verify naming the node and
 * seq; another key under a pinned name is reported and not counted; a late node receives the earlier attestations;
 * `switchboard verify --data-dir` on a stopped cluster node's dir prints them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { schema } from '../../schema/index.ts';
import { number_added } from '../../schema/reducers.ts';
import { encodeAttestation, nodeSubject } from '../../store/jetstream-attestations.ts';
import { loadOrCreateNodeKey, signCheckpoint, type NodeKey } from '../../store/checkpoint.ts';
import { resolveDurability, Store, type Tables, type VerifyReport } from '../../store/index.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tallySchema } from '../helpers/tally-schema.ts';
import { tmpDir } from '../helpers/tmp.ts';

let nats: NatsCluster;
const open: Store<Tables>[] = [];
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const who = { tenant: 'acme', caller: 'test' };

before(async () => {
  nats = await startNatsCluster(3);
});

after(async () => {
  for (const s of open) s.close();
  await Promise.all(open.map((s) => s.whenClosed()));
  await nats.stop();
});

async function node<T extends Tables>(name: string, stream: string, dataDir = tmpDir(), s: typeof tallySchema | typeof schema = tallySchema): Promise<Store<T>> {
  const store = await Store.openCluster({
    dataDir,
    schema: s as never,
    durability: resolveDurability({ profile: 'development', fsync: 'never' }),
    checkpointEvery: 10,
    checkpointMs: 0,
    node: name,
    cluster: { servers: nats.urls, stream, replicas: 3 },
  });
  open.push(store as Store<Tables>);
  return store as Store<T>;
}

async function settle(...nodes: Store<Tables>[]): Promise<void> {
  const target = Math.max(...nodes.map((n) => n.logPosition));
  await Promise.all(nodes.map((n) => n.waitForPosition(target)));
}

/** Polls `store.verify()` until `until(report)` holds (attestations arrive within a tick or two), for at most 30 s. */
async function verifyUntil(store: Store<Tables>, until: (r: VerifyReport) => boolean, what: string): Promise<VerifyReport> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = store.verify();
    if (until(r)) return r;
    if (Date.now() > deadline) throw new Error(`${store.node}: ${what} within 30 s; last report: ${JSON.stringify({ ok: r.ok, problems: r.problems, attestations: { ...r.attestations, positions: r.attestations.positions.slice(-5) } })}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const attestedBy = (r: VerifyReport, seq: number): string[] => r.attestations.positions.find((p) => p.seq === seq)?.nodes ?? [];

async function publish(stream: string, key: NodeKey, seq: number, hash: string, signature?: string): Promise<void> {
  const cp = signCheckpoint(key, seq, hash, Date.now());
  const nc = await connect({ servers: nats.urls });
  try {
    await jetstream(nc).publish(nodeSubject(stream, key.node), encodeAttestation({ ...cp, publicKey: key.publicKeyPem, signature: signature ?? cp.signature }));
  } finally {
    await nc.close();
  }
}

test('every node attests the common positions, each node verifies the others; a late node receives the earlier attestations', async () => {
  const stream = 'ATTEST_COMMON';
  const a = await node<Tables>('node-a', stream);
  const b = await node<Tables>('node-b', stream);
  // three rounds, each ending with both nodes signing the same head: positions every node attests (their own
  // schedules, every 10 events inside their batches, differ)
  const heads: number[] = [];
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).submitNamed('put', { id: `k${i % 9}`, n: round * 20 + i }, who)));
    await settle(a, b);
    a.checkpointNow();
    b.checkpointNow();
    heads.push(a.head.seq);
  }
  for (const s of [a, b]) {
    const r = await verifyUntil(s, (x) => heads.every((seq) => attestedBy(x, seq).length === 2), "attestations of every round's head by node-a and node-b");
    assert.equal(r.ok, true, r.problems.join('; '));
    for (const seq of heads) assert.deepEqual(attestedBy(r, seq), ['node-a', 'node-b']);
    assert.ok(r.attestations.nodes['node-a']! >= 3 && r.attestations.nodes['node-b']! >= 3, JSON.stringify(r.attestations.nodes));
    assert.deepEqual(r.attestations.keyChanges, []);
  }
  const aSeqs = a.verify().attestations.positions.filter((p) => p.nodes.includes('node-a')).map((p) => p.seq);

  // a node that starts late: the log and every earlier attestation reach it
  const c = await node<Tables>('node-c', stream);
  assert.deepEqual(c.head, a.head);
  const rc = await verifyUntil(c, (x) => aSeqs.every((seq) => x.attestations.positions.some((p) => p.seq === seq && p.nodes.includes('node-a'))) && heads.every((seq) => attestedBy(x, seq).includes('node-b')), "node-a's and node-b's earlier attestations");
  assert.equal(rc.ok, true, rc.problems.join('; '));
  // it attests too, and the others check its attestation against their chains
  await c.submitNamed('put', { id: 'from-c', n: 1 }, who);
  await settle(a, b, c);
  for (const s of [a, b, c]) s.checkpointNow();
  const last = c.head.seq;
  for (const s of [a, b, c]) {
    const r = await verifyUntil(s, (x) => attestedBy(x, last).length === 3, 'attestations of the new head by all three');
    assert.equal(r.ok, true, r.problems.join('; '));
    assert.deepEqual(attestedBy(r, last), ['node-a', 'node-b', 'node-c']);
  }
});

test('a tampered attestation and a forged one fail verify naming the node and seq; another key under a pinned name is reported, not counted', async () => {
  const stream = 'ATTEST_FORGED';
  const dirB = tmpDir();
  const a = await node<Tables>('node-a', stream);
  const b = await node<Tables>('node-b', stream, dirB);
  for (let i = 0; i < 30; i++) await (i % 2 ? a : b).submitNamed('put', { id: `f${i}`, n: i }, who);
  await settle(a, b);
  b.checkpointNow();
  const head = b.head;
  await verifyUntil(a, (x) => attestedBy(x, head.seq).includes('node-b'), "node-b's attestation of the head");
  const counted = a.verify().attestations.count;

  // another key presenting itself as node-b, signing the true hash: a key change, not counted, verify still passes
  const impostor: NodeKey = loadOrCreateNodeKey(path.join(tmpDir(), 'keys'), 'node-b');
  await publish(stream, impostor, head.seq - 1, [...a.events(head.seq - 1, head.seq - 1)][0]!.hash);
  const changed = await verifyUntil(a, (x) => x.attestations.keyChanges.length > 0, 'the key change reported');
  assert.equal(changed.ok, true, changed.problems.join('; '));
  assert.equal(changed.attestations.count, counted);
  assert.equal(changed.attestations.keyChanges[0]!.node, 'node-b');
  assert.equal(changed.attestations.keyChanges[0]!.seq, head.seq - 1);

  // tampered: node-b's key, a signature that is not its signature of that checkpoint
  const keyB = loadOrCreateNodeKey(path.join(dirB, 'keys'), 'node-b');
  const tamperedSeq = head.seq - 2;
  const bogus = crypto.randomBytes(64).toString('base64');
  await publish(stream, keyB, tamperedSeq, [...a.events(tamperedSeq, tamperedSeq)][0]!.hash, bogus);
  const tampered = await verifyUntil(a, (x) => !x.ok, 'the tampered attestation caught');
  assert.equal(tampered.firstBadSeq, tamperedSeq);
  assert.ok(tampered.problems.some((p) => p.includes(`attestation by node-b of seq ${tamperedSeq}`) && /signature is invalid/.test(p)), tampered.problems.join('; '));

  // forged: node-b's real key over another history's hash at seq 5
  await publish(stream, keyB, 5, 'f'.repeat(64));
  const forged = await verifyUntil(a, (x) => x.problems.some((p) => p.includes('node node-b attested seq 5')), 'the forged attestation caught');
  assert.equal(forged.ok, false);
  assert.equal(forged.firstBadSeq, 5);
  assert.ok(forged.problems.some((p) => /node node-b attested seq 5 with hash f{64}, this node's hash there is [0-9a-f]{64}: the two nodes signed different histories/.test(p)), forged.problems.join('; '));
  // node-b, receiving the same stream, fails the same way
  const onB = await verifyUntil(b, (x) => x.problems.some((p) => p.includes('node node-b attested seq 5')), 'the forged attestation caught on node-b');
  assert.equal(onB.ok, false);
});

test('switchboard verify --data-dir on a stopped cluster node prints the attestations by every node (offline), --json lists them', async () => {
  const stream = 'ATTEST_CLI';
  const dirA = tmpDir();
  const a = await node<Tables>('node-a', stream, dirA, schema);
  const b = await node<Tables>('node-b', stream, tmpDir(), schema);
  for (let i = 0; i < 12; i++) {
    // refused (no tenant yet) or not, each is an event of the log
    await (i % 2 ? a : b).submit(number_added, { number: `+1555000${String(i).padStart(4, '0')}`, agent: 'default', consent_policy_id: null, provider: null }, { tenant: 'default', caller: 'cli' });
  }
  await settle(a, b);
  a.checkpointNow();
  b.checkpointNow();
  const head = a.head;
  await verifyUntil(a, (x) => attestedBy(x, head.seq).length === 2, 'the head attested by both');
  a.close();
  await a.whenClosed();
  const env = { ...process.env, SWITCHBOARD_LOG_LEVEL: 'silent' };
  const text = spawnSync(process.execPath, [BIN, 'verify', '--data-dir', dirA], { encoding: 'utf8', timeout: 120_000, env });
  assert.equal(text.status, 0, text.stdout + text.stderr);
  assert.match(text.stdout, /verify: OK/);
  assert.match(text.stdout, /^attestations: \d+ by 2 nodes \(node-a \d+, node-b \d+\) over \d+ positions; \d+ attested by every one of them$/m);
  assert.match(text.stdout, new RegExp(`^  seq ${head.seq}: attested by node-a, node-b$`, 'm'));
  const json = spawnSync(process.execPath, [BIN, 'verify', '--data-dir', dirA, '--json'], { encoding: 'utf8', timeout: 120_000, env });
  assert.equal(json.status, 0, json.stdout + json.stderr);
  const report = JSON.parse(json.stdout) as VerifyReport;
  assert.equal(report.headHash, head.hash);
  assert.deepEqual(report.attestations.positions.find((p) => p.seq === head.seq)?.nodes, ['node-a', 'node-b']);
});
