/**
 * Catching up from a snapshot (store/snapshot.ts, store/jetstream-snapshots.ts, store/open-cluster.ts) on a real
 * 3-server NATS cluster: the stream is trimmed by its byte limit, so a node that joins with an empty data dir cannot
 * replay from message 1; it restores the latest snapshot, checks it against its manifest, applies the stream from the
 * snapshot's position, and ends with the others' head hash — verify passes on its data dir. A snapshot
 * whose manifest does not match it is refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { resolveDurability, Store, StoreError } from '../../store/index.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tallySchema } from '../helpers/tally-schema.ts';
import { tmpDir } from '../helpers/tmp.ts';

type Node = Store<typeof tallySchema.tables>;
let nats: NatsCluster;
const open: Node[] = [];
const STREAM = 'LOG_TRIMMED';

before(async () => {
  nats = await startNatsCluster(3);
});
after(async () => {
  for (const s of open) s.close();
  await Promise.all(open.map((s) => s.whenClosed()));
  await nats.stop();
});

async function node(name: string, dataDir = tmpDir()): Promise<Node> {
  const s = await Store.openCluster({
    dataDir,
    schema: tallySchema,
    durability: resolveDurability({ profile: 'development', fsync: 'never' }),
    checkpointEvery: 40,
    checkpointMs: 0,
    node: name,
    cluster: { servers: nats.urls, stream: STREAM, replicas: 3, maxBytes: 16 * 1024 },
  });
  open.push(s);
  return s;
}

const who = { tenant: 'acme', caller: 'test' };

async function firstSeq(): Promise<number> {
  const nc = await connect({ servers: nats.urls });
  try {
    return (await (await jetstreamManager(nc)).streams.info(STREAM)).state.first_seq;
  } finally {
    await nc.close();
  }
}

test('a wiped node joins a trimmed stream from the latest snapshot: same head hash, verify passes; a mismatched manifest is refused', async () => {
  const a = await node('node-a');
  const b = await node('node-b');
  for (let i = 0; i < 300; i++) await (i % 2 ? a : b).submitNamed('put', { id: `k${i % 17}`, n: i }, who);
  assert.ok((await firstSeq()) > 1, 'the byte limit trimmed the stream');
  const manifest = await a.publishSnapshot();
  assert.equal(manifest.position, a.logPosition);
  assert.equal(manifest.hash, a.head.hash);
  // more commands after the snapshot, then more trimming: the joiner applies these from the stream
  for (let i = 0; i < 40; i++) await b.submitNamed('put', { id: `late${i}`, n: i }, who);
  assert.ok((await firstSeq()) <= manifest.position + 1, 'the stream still holds what follows the snapshot');

  const dirC = tmpDir();
  const c = await node('node-c', dirC);
  assert.equal(c.restoredFrom?.position, manifest.position);
  await Promise.all([a, b, c].map((s) => s.waitForPosition(b.logPosition)));
  assert.deepEqual(c.head, b.head);
  assert.deepEqual(c.digest(), a.digest());
  assert.equal(c.read('acme').tally.get('late39')?.n, 39);
  // it takes commands like any node
  await c.submitNamed('put', { id: 'from-c', n: 1 }, who);
  await Promise.all([a, b].map((s) => s.waitForPosition(c.logPosition)));
  assert.deepEqual(a.head, c.head);
  c.checkpointNow();
  c.close();
  await c.whenClosed();
  // verify on its data dir, opened offline as `switchboard verify` opens one (that command runs the gateway's schema;
  // this store runs the test schema)
  const offline = Store.open({ dataDir: dirC, schema: tallySchema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0 });
  try {
    const report = offline.verify();
    assert.equal(report.ok, true, report.problems.join('; '));
    assert.equal(report.headHash, a.head.hash);
  } finally {
    offline.close();
  }

  // a manifest that does not describe its snapshot (its head hash altered) is refused, nothing restored
  const { latestManifest } = await import('../../store/jetstream-snapshots.ts');
  const nc = await connect({ servers: nats.urls });
  try {
    const bad0 = await latestManifest(nc, STREAM);
    const js = jetstream(nc);
    await js.publish(`${STREAM}_SNAPSHOTS.manifest`, JSON.stringify({ ...bad0, hash: 'f'.repeat(64) }));
  } finally {
    await nc.close();
  }
  const bad = (await (async () => {
    // the snapshot's chunks are still there: only the manifest lies
    const n2 = await connect({ servers: nats.urls });
    try {
      return await latestManifest(n2, STREAM);
    } finally {
      await n2.close();
    }
  })())!;
  assert.equal(bad.hash, 'f'.repeat(64));
  await assert.rejects(node('node-d'), (err: unknown) => err instanceof StoreError && err.code === 'log_inconsistent' && /snapshot at stream message \d+ .* refused/.test(err.message));
});
