/**
 * WAL checkpoints run on the store's checkpoint thread (store/wal-checkpointer.ts),
 * never on the event loop that applies commands and paces media: committed
 * frames reach the database file while the main thread is blocked, the WAL
 * restarts instead of growing, and close() leaves no connection behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DB_FILE, resolveDurability, Store } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const A = { tenant: 'a', caller: 'alice' };
const sizeOf = (f: string): number => fs.statSync(f).size;
/** Blocks this thread (no event loop turns) for `ms`. */
const blockMainThread = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * The WAL's last committed frame (mxFrame, offset 16 of the wal-index header) and how many frames have been copied
 * back into the database file (nBackfill, offset 96: the checkpoint info), read from the -shm file
 * (https://www.sqlite.org/walformat.html; native byte order).
 */
function walProgress(dbFile: string): { mxFrame: number; nBackfill: number } {
  const shm = fs.readFileSync(`${dbFile}-shm`).subarray(0, 100);
  const u32 = (at: number) => (os.endianness() === 'LE' ? shm.readUInt32LE(at) : shm.readUInt32BE(at));
  return { mxFrame: u32(16), nBackfill: u32(96) };
}

test('committed WAL frames are copied into the database file while the main thread is blocked', async () => {
  const dir = tmpDir();
  const store = Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0, node: 'n1' });
  try {
    const db = path.join(dir, DB_FILE);
    // Commit until frames are waiting to be copied, read right after the acknowledgements (no event loop turn
    // between): on a busy box the checkpoint thread may already have caught up with a batch.
    let start = { mxFrame: 0, nBackfill: 0 };
    for (let n = 0, round = 0; round < 20 && start.nBackfill >= start.mxFrame; round++) {
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 500; i++, n++) writes.push(store.submitNamed('put', { id: `t${n}`, color: 'red', n }, A));
      await Promise.all(writes);
      start = walProgress(db);
    }
    assert.ok(start.nBackfill < start.mxFrame, `frames waiting for the checkpoint (${JSON.stringify(start)})`);
    // From here this thread runs nothing (no timer, no commit, no auto-checkpoint: the event loop never turns)
    // until the checkpoint makes progress, so only the checkpoint thread can make it. A generous bound, not a speed.
    const deadline = performance.now() + 30_000;
    while (walProgress(db).nBackfill === start.nBackfill && performance.now() < deadline) blockMainThread(20);
    const end = walProgress(db);
    assert.ok(end.nBackfill > start.nBackfill, `frames copied into the database file while the main thread was blocked (${JSON.stringify({ start, end })})`);
    assert.equal(end.mxFrame, start.mxFrame, 'nothing committed meanwhile');
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
      for (let i = 0; i < 500; i++, n++) writes.push(store.submitNamed('put', { id: `t${n}`, color: 'blue', n }, A));
      await Promise.all(writes);
      // Wait for the checkpoint thread to copy every frame back (the event), not a fixed interval: the next
      // transaction then restarts the WAL from its start.
      const db = path.join(dir, DB_FILE);
      const caughtUp = () => walProgress(db).nBackfill === walProgress(db).mxFrame;
      const deadline = performance.now() + 30_000;
      while (!caughtUp() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(caughtUp(), `the checkpoint thread caught up with the WAL (${JSON.stringify(walProgress(db))})`);
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
    await store.submitNamed('put', { id: `round${k}`, color: 'green', n: k }, A);
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
