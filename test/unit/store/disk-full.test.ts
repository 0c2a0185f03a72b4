/**
 * A storage fault in a batch (SQLite's own SQLITE_FULL, from a database capped
 * with `PRAGMA max_page_count`, as a full disk gives it): no submitter is
 * rejected and no rejection goes unhandled; the store reports itself unhealthy,
 * keeps the failed batch and what queues behind it, retries, and once space
 * returns every command commits in submit order with a chain that verifies and
 * replays. Past its bound, and at close, a waiting command gets a clear
 * `storage_unavailable` error and is never written. The real disk-full run (a
 * tmpfs, a live call, a restart) is test/e2e/disk-full.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDurability, Store, StoreError, type Receipt, type StoreFault, type Tables } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { databaseOf } from '../../../store/testing.ts';

const A = { tenant: 'a', caller: 'alice' };

function open(dataDir = tmpDir(), extra: { maxQueued?: number; profile?: 'production' | 'development' } = {}) {
  const profile = extra.profile ?? 'development';
  return Store.open({
    dataDir,
    schema: tallySchema,
    durability: resolveDurability({ profile, fsync: profile === 'production' ? 'always' : 'never' }),
    checkpointMs: 0,
    checkpointEvery: 50,
    node: 'n1',
    retryMs: 20,
    ...(extra.maxQueued !== undefined ? { maxQueued: extra.maxQueued } : {}),
  });
}

/** Caps the database at its current size: the next page it needs fails with SQLITE_FULL. */
function fillDisk<T extends Tables>(store: Store<T>): void {
  const db = databaseOf(store);
  db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
}
function freeDisk<T extends Tables>(store: Store<T>): void {
  databaseOf(store).pragma('max_page_count = 1073741823');
}

function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 5);
    };
    check();
  });
}

const big = (i: number) => ({ id: `k${i}-${'x'.repeat(5000)}`, n: i });

for (const profile of ['development', 'production'] as const) {
  test(`${profile}: SQLITE_FULL in a batch is retried until it commits; nobody is rejected; the log verifies and replays`, async (t) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    t.after(() => process.off('unhandledRejection', onUnhandled));
    const store = open(tmpDir(), { profile });
    t.after(() => store.close());
    const health: Array<StoreFault | null> = [];
    store.onHealth((f) => health.push(f));
    await store.submitNamed('put', { id: 'before' }, A);
    const head = store.head;

    fillDisk(store);
    const settled: Array<Receipt | Error> = [];
    const first = Array.from({ length: 200 }, (_, i) => store.submitNamed('put', big(i), A).then((r) => (settled[i] = r), (e: Error) => (settled[i] = e)));
    await until(() => health.length === 1, 'the store to report the fault');
    assert.equal(health[0]?.kind, 'disk_full');
    assert.match(String(health[0]?.reason), /SQLITE_FULL/);
    assert.equal(store.health?.kind, 'disk_full');
    // A command submitted while unhealthy waits behind the failed batch.
    const later = store.submitNamed('put', { id: 'later', n: 7 }, A);
    await new Promise((r) => setTimeout(r, 200)); // several retries happen meanwhile
    assert.equal(settled.filter(Boolean).length, 0, 'no submitter was told anything while the disk is full');
    assert.deepEqual(store.head, head, 'nothing of the failed batch was committed');
    assert.equal(store.read('a').tally.find().length, 1, 'and the tables hold nothing of it');
    assert.equal(store.health?.waiting, 201);

    freeDisk(store);
    await Promise.all(first);
    const last = await later;
    assert.equal(health.length, 2);
    assert.equal(health[1], null, 'healthy again');
    assert.equal(store.health, null);
    const receipts = settled as Receipt[];
    assert.ok(receipts.every((r) => !(r instanceof Error) && r.outcome.ok), 'every command of the failed batch committed');
    assert.deepEqual(receipts.map((r) => r.seq), receipts.map((_, i) => head.seq + 1 + i), 'in submit order, no seq skipped');
    assert.equal(last.seq, head.seq + 201);
    assert.equal(store.read('a').tally.find().length, 202);
    assert.ok(store.verify().ok, 'the hash chain and checkpoints verify');
    assert.ok(store.replay().ok, 'a replay of the log gives the same tables');
    assert.deepEqual(unhandled, []);

    // The database on disk agrees: applied_seq is the head, and the store reopens.
    const dir = store.dataDir;
    store.close();
    const again = open(dir, { profile });
    t.after(() => again.close());
    assert.equal(again.head.seq, head.seq + 201);
    assert.ok(again.verify().ok);
  });
}

test('while unhealthy, commands past the bound get a clear storage_unavailable error and are never written', async (t) => {
  const store = open(tmpDir(), { maxQueued: 3 });
  t.after(() => store.close());
  await store.submitNamed('put', { id: 'before' }, A);
  fillDisk(store);
  const waiting = [0, 1].map((i) => store.submitNamed('put', big(i), A));
  await until(() => store.health !== null, 'the fault');
  const third = store.submitNamed('put', big(2), A);
  await assert.rejects(store.submitNamed('put', big(3), A), (e: StoreError) => e.code === 'storage_unavailable' && e.retryable && /SQLITE_FULL/.test(e.message));
  freeDisk(store);
  const done = await Promise.all([...waiting, third]);
  assert.deepEqual(done.map((r) => r.outcome.ok), [true, true, true]);
  assert.equal(store.read('a').tally.get(big(3).id), undefined);
  assert.ok(store.verify().ok);
});

test('closed while the disk is full: waiting submitters get storage_unavailable; the reopened log has none of it, and verifies', async (t) => {
  const dir = tmpDir();
  const store = open(dir);
  t.after(() => store.close());
  await store.submitNamed('put', { id: 'before' }, A);
  const head = store.head;
  fillDisk(store);
  const waiting = Array.from({ length: 20 }, (_, i) => store.submitNamed('put', big(i), A));
  await until(() => store.health !== null, 'the fault');
  store.close();
  for (const w of waiting) await assert.rejects(w, (e: StoreError) => e.code === 'storage_unavailable' && /not committed/.test(e.message));
  const again = open(dir);
  t.after(() => again.close());
  assert.deepEqual(again.head, head, 'no half-written batch');
  assert.ok(again.verify().ok);
  await again.submitNamed('put', { id: 'after' }, A);
  assert.ok(again.verify().ok && again.replay().ok);
});

test('a command a subscriber submits while its batch is delivered is applied, not dropped with the batch it rode in behind', async (t) => {
  const store = open();
  t.after(() => store.close());
  const followUps: Array<Promise<Receipt>> = [];
  store.subscribe('tally', {}, 'a', (d) => {
    if (d.new && String(d.new.id).startsWith('k') && followUps.length === 0) followUps.push(store.submitNamed('put', { id: 'follow-up' }, A));
  });
  await Promise.all([store.submitNamed('put', { id: 'k1' }, A), store.submitNamed('put', { id: 'k2' }, A)]);
  await until(() => followUps.length === 1, 'the follow-up submit');
  const r = await Promise.race([followUps[0]!, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the follow-up never settled')), 10_000))]);
  assert.ok(r.outcome.ok);
  assert.ok(store.read('a').tally.get('follow-up'));
});
