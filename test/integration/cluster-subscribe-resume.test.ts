/**
 * Cluster mode: a seq means the same on every node (each applies the same log), so a subscription taken on one node
 * resumes on another with exactly the deltas the first would have delivered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resolveDurability, Store, type Delta } from '../../store/index.ts';
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

async function node(name: string): Promise<Store<typeof tallySchema.tables>> {
  const s = await Store.openCluster({
    dataDir: tmpDir(),
    schema: tallySchema,
    durability: resolveDurability({ profile: 'development', fsync: 'never' }),
    checkpointMs: 0,
    node: name,
    cluster: { servers: nats.urls, stream: 'LOG_RESUME', replicas: 3 },
  });
  open.push(s);
  return s;
}

const strip = (d: Delta): Omit<Delta, 'committedAt'> => ({ seq: d.seq, table: d.table, op: d.op, old: d.old, new: d.new });

test('a subscription taken on node A resumes on node B with the deltas A delivered after that seq, tenant-scoped', async () => {
  const a = await node('node-a');
  const b = await node('node-b');
  await a.submitNamed('put', { id: 'x0' }, { tenant: 'acme', caller: 't' });
  const witness: Delta[] = [];
  const sub = a.subscribe('tally', {}, 'acme', (d) => witness.push(d));
  for (let i = 0; i < 30; i++) {
    const node = i % 2 === 0 ? a : b;
    await node.submitNamed(i % 5 === 4 ? 'remove' : 'put', { id: `x${i % 7}`, ...(i % 5 === 4 ? {} : { n: i }) }, { tenant: i % 3 === 0 ? 'other' : 'acme', caller: 't' });
  }
  const target = Math.max(a.logPosition, b.logPosition);
  await Promise.all([a.waitForPosition(target), b.waitForPosition(target)]);
  const r = b.resume('tally', {}, 'acme', () => {}, sub.snapshot.seq);
  assert.equal(r.kind, 'resumed');
  if (r.kind !== 'resumed') return;
  r.unsubscribe();
  assert.ok(witness.length > 0);
  assert.deepEqual(r.deltas.map(strip), witness.map(strip));
  for (const d of r.deltas) for (const row of [d.old, d.new]) if (row) assert.equal(row.tenant, 'acme');
});
