/**
 * WAL checkpoints run on the store's checkpoint thread (store/wal-checkpointer.ts),
 * never on the event loop that applies commands and paces media: committed
 * frames reach the database file while the main thread is blocked, the WAL
 * restarts instead of growing, and close() leaves no connection behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DB_FILE, resolveDurability, Store } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const A = { tenant: 'a', caller: 'alice' };
const sizeOf = (f: string): number => fs.statSync(f).size;
/** Blocks this thread (no event loop turns) for `ms`. */
const blockMainThread = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

test('committed WAL frames are copied into the database file while the main thread is blocked', async () => {
  const dir = tmpDir();
  const store = Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0, node: 'n1' });
  try {
    const db = path.join(dir, DB_FILE);
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 1500; i++) writes.push(store.submit('put', { id: `t${i}`, color: 'red', n: i }, A));
    await Promise.all(writes);
    const before = sizeOf(db);
    // Nothing on this thread runs for 1.5 s: no timer, no commit, no auto-checkpoint.
    blockMainThread(1500);
    const after = sizeOf(db);
    assert.ok(after > before, `the database file grew from ${before} to ${after} bytes while the main thread was blocked`);
  } finally {
    store.close();
  }
});

test('under steady writes the WAL is reused from its start instead of growing with the log', async () => {
  const dir = tmpDir();
  const store = Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0, node: 'n1' });
  try {
    const wal = path.join(dir, `${DB_FILE}-wal`);
    let n = 0;
    const round = async (): Promise<void> => {
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 500; i++, n++) writes.push(store.submit('put', { id: `t${n}`, color: 'blue', n }, A));
      await Promise.all(writes);
      await new Promise((r) => setTimeout(r, 150)); // one checkpoint interval or so
    };
    await round();
    const first = sizeOf(wal);
    for (let k = 0; k < 8; k++) await round();
    const last = sizeOf(wal);
    const db = sizeOf(path.join(dir, DB_FILE));
    assert.ok(last < first * 3, `the WAL stayed near its first size (${first} → ${last} bytes) over 9× the writes`);
    assert.ok(db > first, `the rows live in the database file (${db} bytes), not only in the WAL`);
  } finally {
    store.close();
  }
});

test('close() waits for the checkpoint thread: the data dir reopens at once and every row is there', async () => {
  const dir = tmpDir();
  const open = () => Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0, node: 'n1' });
  for (let k = 0; k < 5; k++) {
    const store = open();
    await store.submit('put', { id: `round${k}`, color: 'green', n: k }, A);
    store.close();
  }
  const store = open();
  try {
    for (let k = 0; k < 5; k++) assert.equal(store.read('a').tally.get(`round${k}`)?.n, k);
    assert.equal(store.verify().ok, true);
  } finally {
    store.close();
  }
});
