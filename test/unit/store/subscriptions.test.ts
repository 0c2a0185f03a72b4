import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDurability, Store, StoreError, type Delta, type Filter } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const open = () => Store.open({ dataDir: tmpDir(), schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, node: 'n1' });

/** A deterministic PRNG so a failure can be reproduced from the seed in its message. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

interface Mirror {
  tenant: string;
  filter: Filter;
  rows: Map<string, Record<string, unknown>>;
  lastSeq: number;
  deltas: Delta[];
  unsubscribe: () => void;
}

function mirror(store: Store<typeof tallySchema.tables>, tenant: string, filter: Filter): Mirror {
  const m: Mirror = { tenant, filter, rows: new Map(), lastSeq: 0, deltas: [], unsubscribe: () => {} };
  const { snapshot, unsubscribe } = store.subscribe('tally', filter, tenant, (d) => {
    assert.ok(d.seq > m.lastSeq || (d.seq === m.lastSeq && m.deltas.length > 0), 'deltas arrive in commit order after the snapshot');
    m.lastSeq = d.seq;
    m.deltas.push(d);
    if (d.op === 'delete') m.rows.delete(String(d.old?.id));
    else m.rows.set(String(d.new?.id), d.new as Record<string, unknown>);
  });
  m.lastSeq = snapshot.seq;
  for (const row of snapshot.rows) m.rows.set(String(row.id), row);
  m.unsubscribe = unsubscribe;
  return m;
}

for (const seed of [1, 7, 42, 1234]) {
  test(`snapshot + deltas equal the filtered table after random commits (seed ${seed})`, async (t) => {
    const store = open();
    t.after(() => store.close());
    const rand = rng(seed);
    const colors = ['red', 'green', 'blue'] as const;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const filters: Array<[string, Filter]> = [
      ['a', {}],
      ['a', { color: 'red' }],
      ['a', { color: ['red', 'green'] }],
      ['a', { id: 'k3' }],
      ['a', { color: 'blue', n: [1, 2, 3] }],
      ['b', {}],
      ['b', { color: 'green' }],
    ];
    const mirrors: Mirror[] = [];
    for (let round = 0; round < 30; round++) {
      // Subscribers join at random points, mid-stream.
      if (round % 5 === 0) for (const [tenant, f] of filters) mirrors.push(mirror(store, tenant, f));
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        const tenant = rand() < 0.7 ? 'a' : 'b';
        const id = `k${Math.floor(rand() * 12)}`;
        const who = { tenant, caller: 'x' };
        const roll = rand();
        if (roll < 0.6) batch.push(store.submitNamed('put', { id, color: pick(colors), n: Math.floor(rand() * 5) }, who));
        else if (roll < 0.8) batch.push(store.submitNamed('remove', { id }, who));
        else batch.push(store.submitNamed('put_then_fail', { id: `${id}-f` }, who));
      }
      await Promise.all(batch);
    }
    for (const m of mirrors) {
      const expected = store.read(m.tenant).tally.find(m.filter as Record<string, never>);
      const got = [...m.rows.values()].sort((x, y) => String(x.id).localeCompare(String(y.id)));
      assert.deepEqual(got, expected, `tenant ${m.tenant} filter ${JSON.stringify(m.filter)}`);
      for (const d of m.deltas) {
        for (const row of [d.old, d.new]) if (row) assert.equal(row.tenant, m.tenant, 'a subscriber never sees another tenant');
      }
    }
    assert.ok(mirrors.some((m) => m.deltas.length > 0));
  });
}

test('a row leaving the filter is a delete for that subscriber, entering is an insert', async (t) => {
  const store = open();
  t.after(() => store.close());
  const who = { tenant: 'a', caller: 'x' };
  const red = mirror(store, 'a', { color: 'red' });
  await store.submitNamed('put', { id: 'p', color: 'red' }, who);
  await store.submitNamed('put', { id: 'p', color: 'blue' }, who);
  await store.submitNamed('put', { id: 'p', color: 'red', n: 1 }, who);
  await store.submitNamed('put', { id: 'p', color: 'red', n: 2 }, who);
  assert.deepEqual(red.deltas.map((d) => d.op), ['insert', 'delete', 'insert', 'update']);
  assert.deepEqual(red.deltas.map((d) => d.seq), [1, 2, 3, 4]);
  red.unsubscribe();
  await store.submitNamed('put', { id: 'p', color: 'red', n: 3 }, who);
  assert.equal(red.deltas.length, 4, 'no deltas after unsubscribe');
  assert.equal(store.subscriberCount, 0);
});

test('tenant B subscribing to everything sees nothing of tenant A', async (t) => {
  const store = open();
  t.after(() => store.close());
  const b = mirror(store, 'b', {});
  const bSpoof = mirror(store, 'b', { tenant: 'a' } as Filter); // a client-supplied tenant is overridden
  for (let i = 0; i < 10; i++) await store.submitNamed('put', { id: `x${i}` }, { tenant: 'a', caller: 'x' });
  assert.equal(b.deltas.length, 0);
  assert.equal(bSpoof.deltas.length, 0);
  assert.equal(b.rows.size, 0);
});

test('a throwing listener does not break delivery to others or the commit', async (t) => {
  const errors: unknown[] = [];
  const store = Store.open({ dataDir: tmpDir(), schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, onError: (e) => errors.push(e) });
  t.after(() => store.close());
  store.subscribe('tally', {}, 'a', () => {
    throw new Error('listener bug');
  });
  const ok = mirror(store, 'a', {});
  const r = await store.submitNamed('put', { id: 'z' }, { tenant: 'a', caller: 'x' });
  assert.equal(r.outcome.ok, true);
  assert.equal(ok.deltas.length, 1);
  assert.equal(errors.length, 1);
});

test('subscribing to an unknown table or column is refused', (t) => {
  const store = open();
  t.after(() => store.close());
  assert.throws(() => store.subscribe('nope' as 'tally', {}, 'a', () => {}), (e: unknown) => e instanceof StoreError && e.code === 'invalid_command');
  assert.throws(() => store.subscribe('tally', { colour: 'red' }, 'a', () => {}), /no column colour/);
});

test('a delta carries when its commit returned, so subscribers can measure delivery lag', async (t) => {
  const store = open();
  t.after(() => store.close());
  const deltas: Delta[] = [];
  store.subscribe('tally', {}, 'a', (d) => deltas.push(d));
  const before = performance.now();
  await store.submitNamed('put', { id: 'lag' }, { tenant: 'a', caller: 'x' });
  const after = performance.now();
  assert.equal(deltas.length, 1);
  assert.ok(deltas[0]!.committedAt >= before && deltas[0]!.committedAt <= after);
});
