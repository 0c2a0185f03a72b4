/**
 * Group commit with the fsync off the event loop (fsync `always`, profile
 * `production`). SQLite commits with `synchronous = NORMAL`: the batch's WAL
 * frames are written (page cache) but not synced inside COMMIT, which would
 * hold the event loop — and with it every call's media clock — for the disk's
 * flush time. The apply loop then fsyncs the `-wal` file on libuv's thread
 * pool and only when that returns settles the batch's submitters and delivers
 * its deltas: what `FULL` guarantees (a submitter is told "done" only for a
 * durable commit), paid on another thread.
 *
 *   batch k   COMMIT ─┐                 ┌─ resolve k, k+1 · deltas
 *   batch k+1  COMMIT ─┼─ fsync(wal) ────┘
 *   batch k+2    COMMIT ─── (waits: the next fsync covers it)
 *
 * One fsync is in flight at a time and covers every batch committed before it
 * started; batches committed meanwhile wait for the next one (ordering kept).
 * Readers of the tables may see a batch a few ms before it is durable (as with
 * any WAL reader between write and sync); no submitter, subscriber or API
 * answer built from a submit's outcome is told before it is durable. An fsync
 * error stops the store (after a failed fsync the kernel may have dropped the
 * dirty pages: continuing would acknowledge writes that are not on disk).
 */
import fs from 'node:fs';

export interface Flusher {
  /** Makes everything written so far durable, off the event loop. */
  flush(done: (err: Error | null) => void): void;
  /** The same, blocking (for close). */
  flushSync(): void;
}

export function walFlusher(walFile: string): Flusher {
  return {
    flush(done) {
      fs.open(walFile, 'r', (err, fd) => {
        if (err) return done(err);
        fs.fsync(fd, (syncErr) => fs.close(fd, () => done(syncErr)));
      });
    },
    flushSync() {
      const fd = fs.openSync(walFile, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
