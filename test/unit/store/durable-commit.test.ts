/**
 * fsync `always` off the event loop (store/wal-sync.ts): a submitter is told
 * its outcome, and subscribers get its deltas, only after the fsync that
 * covers its batch returned; batches committed while one fsync is in flight
 * wait for the next, in order; an fsync failure stops the store; close()
 * makes everything durable before it returns. A controllable flusher stands
 * in for the disk; the last test runs the real one, and durable-sync.test.ts
 * traces the real fdatasync of the WAL against each acknowledgement.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DB_FILE, resolveDurability, Store, StoreError, type Flusher, type Receipt } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const A = { tenant: 'a', caller: 'alice' };

/** A disk whose fsyncs return when the test says so. */
class HeldDisk implements Flusher {
  readonly calls: Array<(err: Error | null) => void> = [];
  syncs = 0;
  flush(done: (err: Error | null) => void): void {
    this.calls.push(done);
  }
  flushSync(): void {
    this.syncs++;
  }
  release(err: Error | null = null): void {
    const done = this.calls.shift();
    assert.ok(done, 'an fsync is in flight');
    done(err);
  }
}

function open(disk: Flusher, dataDir = tmpDir()) {
  return Store.open({ dataDir, schema: tallySchema, durability: resolveDurability({ profile: 'production', fsync: 'always' }), flusher: disk, checkpointMs: 0, node: 'n1' });
}

const tick = () => new Promise((r) => setImmediate(r));

test('production `always` syncs off the loop (SQLite NORMAL + WAL fsync); maximum_safety keeps the sync inside COMMIT', () => {
  assert.deepEqual([resolveDurability({ profile: 'production' }).synchronous, resolveDurability({ profile: 'production' }).syncOffLoop], ['NORMAL', true]);
  assert.deepEqual([resolveDurability({ profile: 'maximum_safety' }).synchronous, resolveDurability({ profile: 'maximum_safety' }).syncOffLoop], ['EXTRA', false]);
  assert.equal(resolveDurability({ profile: 'production', fsync: 'periodic' }).syncOffLoop, false);
});

test('nobody hears of a batch before its fsync returns; batches committed meanwhile ride the next fsync, in order', async (t) => {
  const disk = new HeldDisk();
  const store = open(disk);
  t.after(() => store.close());
  const told: string[] = [];
  const deltas: string[] = [];
  store.subscribe('tally', {}, 'a', (d) => deltas.push(String(d.new?.id ?? d.old?.id)));
  const first = store.submitNamed('put', { id: 'k1' }, A).then((r: Receipt) => told.push(`k1@${r.seq}`));
  await tick();
  assert.equal(disk.calls.length, 1, 'batch 1 committed, its fsync in flight');
  assert.equal(store.read('a').tally.get('k1')?.id, 'k1', 'committed (visible to readers) …');
  assert.deepEqual([told, deltas], [[], []], '… but no submitter or subscriber told yet');

  const later = [store.submitNamed('put', { id: 'k2' }, A), store.submitNamed('put', { id: 'k3' }, A)].map((p) => p.then((r) => told.push(`${r.outcome.ok ? 'ok' : 'no'}@${r.seq}`)));
  await tick();
  assert.equal(disk.calls.length, 1, 'one fsync at a time: batch 2 waits');
  disk.release();
  await first;
  await tick();
  assert.deepEqual(told, ['k1@1']);
  assert.deepEqual(deltas, ['k1']);
  assert.equal(disk.calls.length, 1, 'the next fsync covers batch 2');
  disk.release();
  await Promise.all(later);
  assert.deepEqual(told, ['k1@1', 'ok@2', 'ok@3']);
  assert.deepEqual(deltas, ['k1', 'k2', 'k3']);
});

test('a subscriber arriving while a batch waits for its fsync gets it in the snapshot, not again as a delta', async (t) => {
  const disk = new HeldDisk();
  const store = open(disk);
  t.after(() => store.close());
  const w = store.submitNamed('put', { id: 's1' }, A);
  await tick();
  const seen: string[] = [];
  const { snapshot } = store.subscribe('tally', {}, 'a', (d) => seen.push(`${d.op}:${String(d.new?.id)}@${d.seq}`));
  assert.deepEqual([snapshot.seq, snapshot.rows.map((r) => r.id)], [1, ['s1']], 'committed, so in the snapshot at seq 1');
  disk.release();
  await w;
  const later = store.submitNamed('put', { id: 's2' }, A);
  await tick();
  disk.release();
  await later;
  assert.deepEqual(seen, ['insert:s2@2'], 'seq 1 is not delivered twice');
});

test('a duplicate submitted while its batch waits for the fsync gets the same outcome, once durable', async (t) => {
  const disk = new HeldDisk();
  const store = open(disk);
  t.after(() => store.close());
  const a = store.submitNamed('put', { id: 'd', n: 1 }, { ...A, id: 'same' });
  await tick();
  const b = store.submitNamed('put', { id: 'd', n: 2 }, { ...A, id: 'same' });
  let settled = false;
  void b.then(() => (settled = true));
  await tick();
  assert.equal(settled, false);
  disk.release();
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.seq, rb.seq);
  assert.equal(rb.duplicate, true);
  assert.equal(store.read('a').tally.get('d')?.n, 1);
});

test('an fsync failure fails the waiting submitters (not retryable) and stops the store', async (t) => {
  const disk = new HeldDisk();
  const store = open(disk);
  t.after(() => store.close());
  const w = store.submitNamed('put', { id: 'x' }, A);
  await tick();
  disk.release(Object.assign(new Error('I/O error'), { code: 'EIO' }));
  await assert.rejects(w, (e: unknown) => e instanceof StoreError && e.code === 'storage_failed' && !e.retryable && /EIO/.test(e.message));
  await assert.rejects(store.submitNamed('put', { id: 'y' }, A), (e: unknown) => e instanceof StoreError && e.code === 'storage_failed');
});

test('close() with an fsync in flight syncs blocking and settles everyone before it returns', async (t) => {
  const disk = new HeldDisk();
  const dir = tmpDir();
  const store = open(disk, dir);
  t.after(() => store.close());
  const outcomes: number[] = [];
  const all = [store.submitNamed('put', { id: 'c1' }, A), store.submitNamed('put', { id: 'c2' }, A)].map((p) => p.then((r) => outcomes.push(r.seq)));
  await tick();
  const third = store.submitNamed('put', { id: 'c3' }, A).then((r) => outcomes.push(r.seq));
  store.close();
  assert.equal(disk.syncs, 1);
  await Promise.all([...all, third]);
  assert.deepEqual(outcomes.sort(), [1, 2, 3]);
  disk.release(); // the late callback of the first fsync changes nothing
  const again = open(new HeldDisk(), dir);
  t.after(() => again.close());
  assert.equal(again.head.seq, 3);
});

test('the real WAL fsync: outcomes arrive, the -wal file is what gets synced', async (t) => {
  const dir = tmpDir();
  const store = Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0, node: 'n1' });
  t.after(() => store.close());
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => store.submitNamed('put', { id: `r${i}` }, A)));
  assert.ok(rs.every((r) => r.outcome.ok));
  assert.ok(fs.existsSync(path.join(dir, `${DB_FILE}-wal`)));
});
