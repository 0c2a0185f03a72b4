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
  /** Releases what the flusher holds (the store is closing). */
  close?(): void;
}

/**
 * fdatasync of the `-wal` file on libuv's thread pool: one hop per group commit.
 * The descriptor is opened on first use and kept: while the store's connection
 * is open SQLite never deletes or replaces the WAL (it restarts it in place),
 * so the same inode stays the WAL until close. fdatasync is what SQLite itself
 * uses for WAL syncs on Linux: the data and the size needed to read it back,
 * without the timestamp update.
 */
export function walFlusher(walFile: string): Flusher {
  let fd: number | null = null;
  const open = (): number => (fd ??= fs.openSync(walFile, 'r'));
  return {
    flush(done) {
      let f: number;
      try {
        f = open();
      } catch (err) {
        return done(err as Error);
      }
      fs.fdatasync(f, (err) => done(err));
    },
    flushSync() {
      fs.fdatasyncSync(open());
    },
    close() {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
    },
  };
}
