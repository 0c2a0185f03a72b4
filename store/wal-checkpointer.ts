/**
 * WAL checkpoints on their own thread. A checkpoint copies committed WAL
 * frames back into the database file and, with `synchronous` NORMAL or
 * above, fsyncs both files: several ms of copying and a disk flush. Run by the
 * writing connection (SQLite's auto-checkpoint, or an idle timer) it held the
 * event loop, and with it the apply loop and every call's media clock.
 *
 * Here a second connection in a worker thread runs `wal_checkpoint(PASSIVE)`
 * every `intervalMs`. PASSIVE never blocks the writer: the writer keeps
 * appending frames while older ones are copied, and restarts the WAL from its
 * start at its next transaction once every frame is back in the database. The
 * main connection keeps a high `wal_autocheckpoint` only as a backstop should
 * this thread fall behind or die. This needs the database in normal (shared
 * memory) locking mode; one gateway per data dir is enforced by the directory
 * lock (database.ts).
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no
 * TypeScript loader, and loads the same better-sqlite3 build as the store.
 * `stop()` is synchronous: it waits (bounded) until the worker's connection is
 * closed, so a closed store holds no handle on its files.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface WalCheckpointerOptions {
  file: string;
  /** The store's `synchronous` mode: a checkpoint syncs like the store does (OFF = never). */
  synchronous: string;
  intervalMs?: number;
  /** A checkpoint that failed for a reason other than a busy lock. */
  onError?: (err: Error) => void;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const done = new Int32Array(workerData.done);
let db = null;
let timer = null;
const report = (err) => parentPort.postMessage({ type: 'error', code: err.code || '', message: String(err.message || err) });
try {
  db = new Database(workerData.file, { fileMustExist: true, timeout: 0 });
  db.pragma('synchronous = ' + workerData.synchronous);
  db.pragma('cache_size = -1024');
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  timer = setInterval(() => {
    try {
      checkpoint.get();
    } catch (err) {
      if (err.code !== 'SQLITE_BUSY' && err.code !== 'SQLITE_LOCKED') report(err);
    }
  }, workerData.intervalMs);
} catch (err) {
  report(err);
}
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  if (timer) clearInterval(timer);
  try { if (db) db.close(); } catch (err) { report(err); }
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
  parentPort.close();
});
`;

const STOP_WAIT_MS = 5000;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly done = new SharedArrayBuffer(4);
  private stopped = false;

  constructor(opts: WalCheckpointerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, file: opts.file, synchronous: opts.synchronous, intervalMs: opts.intervalMs ?? 100, done: this.done },
      // Not the parent's `--import tsx` and friends: the worker is plain JavaScript.
      execArgv: [],
      stdout: false,
      stderr: false,
    });
    this.worker.unref();
    const onError = opts.onError ?? (() => {});
    this.worker.on('message', (m: { type?: string; code?: string; message?: string }) => {
      if (m.type === 'error') onError(new Error(`WAL checkpoint: ${m.code ? `${m.code}: ` : ''}${m.message ?? ''}`));
    });
    this.worker.on('error', (err) => onError(err));
  }

  /** Stops the timer and closes the worker's connection, waiting for it (at most 5 s). Runs once. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const flag = new Int32Array(this.done);
    this.worker.postMessage('stop');
    Atomics.wait(flag, 0, 0, STOP_WAIT_MS);
    if (Atomics.load(flag, 0) !== 1) void this.worker.terminate();
  }
}
