/**
 * Resuming a subscription from a seq (Store.resume over the change journal): the deltas after it equal what a
 * subscriber that never left received after it — none missed, none repeated — and the client's rows then equal a
 * fresh snapshot; across a reopen of the store too; a seq the journal no longer covers gets a flagged snapshot; a
 * batch rolled back by a storage fault is journalled only when its retry commits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDurability, Store, type Delta, type Filter } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { databaseOf } from '../../../store/testing.ts';

type TallyStore = Store<typeof tallySchema.tables>;
const open = (dataDir = tmpDir(), changeWindow?: number): TallyStore =>
  Store.open({ dataDir, schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, node: 'n1', ...(changeWindow ? { changeWindow } : {}) });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

type Rows = Map<string, Record<string, unknown>>;
function apply(rows: Rows, d: Delta): void {
  if (d.op === 'delete') {
    assert.ok(rows.has(String(d.old?.id)), `a delete of a row the client has (seq ${d.seq})`);
    rows.delete(String(d.old?.id));
  } else {
    assert.equal(rows.has(String(d.new?.id)), d.op === 'update', `an ${d.op} of a row the client ${d.op === 'update' ? 'has' : 'lacks'} (seq ${d.seq})`);
    rows.set(String(d.new?.id), d.new as Record<string, unknown>);
  }
}
const sorted = (rows: Rows): Array<Record<string, unknown>> => [...rows.values()].sort((x, y) => String(x.id).localeCompare(String(y.id)));
const strip = (d: Delta): Omit<Delta, 'committedAt'> => ({ seq: d.seq, table: d.table, op: d.op, old: d.old, new: d.new });

async function randomCommits(store: TallyStore, rand: () => number, n: number): Promise<void> {
  const colors = ['red', 'green', 'blue'] as const;
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const who = { tenant: rand() < 0.7 ? 'a' : 'b', caller: 'x' };
    const id = `k${Math.floor(rand() * 12)}`;
    const roll = rand();
    if (roll < 0.6) batch.push(store.submitNamed('put', { id, color: colors[Math.floor(rand() * 3)] ?? 'red', n: Math.floor(rand() * 5) }, who));
    else if (roll < 0.8) batch.push(store.submitNamed('remove', { id }, who));
    else batch.push(store.submitNamed('put_then_fail', { id: `${id}-f` }, who));
  }
  await Promise.all(batch);
}

const filters: Array<[string, Filter]> = [
  ['a', {}],
  ['a', { color: 'red' }],
  ['a', { color: ['red', 'green'], n: [0, 1, 2] }],
  ['b', {}],
  ['b', { color: 'blue' }],
];

for (const seed of [3, 11, 99]) {
  test(`resuming from several seqs: the missed deltas exactly, then the rows equal a fresh snapshot (seed ${seed})`, async (t) => {
    const store = open();
    t.after(() => store.close());
    const rand = rng(seed);
    for (const [tenant, filter] of filters) {
      // A witness that never disconnects, and a client that leaves at some seqs and resumes from the last one it saw.
      const witness: Delta[] = [];
      const w = store.subscribe('tally', filter, tenant, (d) => witness.push(d));
      const rows: Rows = new Map(w.snapshot.rows.map((r) => [String(r.id), r]));
      let seen = w.snapshot.seq;
      let off = (): void => {};
      const received: Delta[] = [];
      const onDelta = (d: Delta): void => {
        assert.ok(d.seq > seen || (received.length > 0 && d.seq === received[received.length - 1]!.seq), 'in commit order, never before what the client saw');
        received.push(d);
        apply(rows, d);
        seen = d.seq;
      };
      for (let round = 0; round < 6; round++) {
        const from = seen;
        off();
        await randomCommits(store, rand, 15); // committed while the client is away
        const r = store.resume('tally', filter, tenant, onDelta, from);
        assert.equal(r.kind, 'resumed');
        if (r.kind !== 'resumed') return;
        off = r.unsubscribe;
        for (const d of r.deltas) onDelta(d);
        seen = r.seq;
        await randomCommits(store, rand, 10); // live again
      }
      off();
      w.unsubscribe();
      assert.deepEqual(received.map(strip), witness.map(strip), `tenant ${tenant} ${JSON.stringify(filter)}: no delta missed or repeated`);
      assert.deepEqual(sorted(rows), store.read(tenant).tally.find(filter as Record<string, never>));
      for (const d of received) for (const row of [d.old, d.new]) if (row) assert.equal(row.tenant, tenant, 'a resumed subscription never sees another tenant');
    }
  });
}

test('the journal survives a reopen: a client resumes after the store restarted', async (t) => {
  const dir = tmpDir();
  let store = open(dir);
  const rand = rng(5);
  await randomCommits(store, rand, 40);
  const s = store.subscribe('tally', {}, 'a', () => {});
  const rows: Rows = new Map(s.snapshot.rows.map((r) => [String(r.id), r]));
  store.close();
  store = open(dir);
  t.after(() => store.close());
  await randomCommits(store, rand, 40);
  const r = store.resume('tally', {}, 'a', (d) => apply(rows, d), s.snapshot.seq);
  assert.equal(r.kind, 'resumed');
  if (r.kind === 'resumed') for (const d of r.deltas) apply(rows, d);
  assert.ok(r.kind === 'resumed' && r.deltas.length > 0);
  assert.deepEqual(sorted(rows), store.read('a').tally.find({}));
  await store.submitNamed('put', { id: 'live' }, { tenant: 'a', caller: 'x' });
  assert.ok(rows.has('live'), 'live deltas follow the resumed ones');
});

test('a seq the journal no longer covers gets a fresh snapshot flagged too_old; beyond the head is refused', async (t) => {
  const store = open(tmpDir(), 10);
  t.after(() => store.close());
  const who = { tenant: 'a', caller: 'x' };
  for (let i = 0; i < 1_050; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => store.submitNamed('put', { id: `p${(i + j) % 7}`, n: (i + j) % 5 }, who)));
  const head = store.subscribe('tally', {}, 'a', () => {}).snapshot.seq;
  const old = store.resume('tally', {}, 'a', () => {}, 3);
  assert.equal(old.kind, 'snapshot');
  if (old.kind === 'snapshot') {
    assert.equal(old.reason, 'too_old');
    assert.equal(old.snapshot.seq, head);
    assert.deepEqual(old.snapshot.rows, store.read('a').tally.find({}));
  }
  const recent = store.resume('tally', {}, 'a', () => {}, head - 5);
  assert.equal(recent.kind, 'resumed');
  assert.equal(store.resume('tally', {}, 'a', () => {}, head + 1).kind, 'beyond_head');
  assert.throws(() => store.resume('tally', { colour: 'red' }, 'a', () => {}, head), /no column colour/);
});

test('tenant B resuming over tenant A commits gets none of them', async (t) => {
  const store = open();
  t.after(() => store.close());
  await store.submitNamed('put', { id: 'b1' }, { tenant: 'b', caller: 'x' });
  const since = store.subscribe('tally', {}, 'b', () => {}).snapshot.seq;
  for (let i = 0; i < 10; i++) await store.submitNamed('put', { id: `a${i}` }, { tenant: 'a', caller: 'x' });
  const spoof = store.resume('tally', { tenant: 'a' } as Filter, 'b', () => {}, since);
  const plain = store.resume('tally', {}, 'b', () => {}, since);
  for (const r of [spoof, plain]) {
    assert.equal(r.kind, 'resumed');
    if (r.kind === 'resumed') assert.deepEqual(r.deltas, []);
  }
});

test('a batch rolled back by a storage fault leaves nothing in the journal; its retry is journalled once', async (t) => {
  const store = Store.open({ dataDir: tmpDir(), schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, node: 'n1', retryMs: 20 });
  t.after(() => store.close());
  const who = { tenant: 'a', caller: 'x' };
  await store.submitNamed('put', { id: 'before' }, who);
  const witness: Delta[] = [];
  const w = store.subscribe('tally', {}, 'a', (d) => witness.push(d));
  const db = databaseOf(store);
  db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
  const pending = Array.from({ length: 5 }, (_, i) => store.submitNamed('put', { id: `k${i}-${'x'.repeat(5000)}` }, who));
  const deadline = Date.now() + 20_000;
  while (store.health === null) {
    assert.ok(Date.now() < deadline, 'the store turns unhealthy');
    await new Promise((r) => setTimeout(r, 5));
  }
  const during = store.resume('tally', {}, 'a', () => {}, w.snapshot.seq);
  assert.ok(during.kind === 'resumed' && during.deltas.length === 0, 'nothing of the rolled-back batch is replayed');
  if (during.kind === 'resumed') during.unsubscribe();
  db.pragma('max_page_count = 1073741823');
  await Promise.all(pending);
  const after = store.resume('tally', {}, 'a', () => {}, w.snapshot.seq);
  assert.equal(after.kind, 'resumed');
  if (after.kind === 'resumed') assert.deepEqual(after.deltas.map(strip), witness.map(strip));
  assert.equal(witness.length, 5);
});
