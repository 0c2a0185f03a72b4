/**
 * Durable append-only writer for one recording segment (`seg-NNN.pcm` plus its
 * journal `seg-NNN.log`, see segment-files.ts).
 *
 * Audio is copied into a small in-memory buffer and written through to the
 * file descriptor by `flush()` (the recorder calls it at least every 200 ms).
 * No fsync runs on the event loop while a call records: they go to libuv's
 * thread pool (`io.fsync`), so hundreds of recording calls never hold the
 * media clock for the disk:
 *
 *   open()              create journal + segment; write the header   (event loop, no fsync)
 *     └─ pool: fsync journal → fsync directory                       ("header durable")
 *   syncInBackground()  pool: fsync segment, one at a time, only once the header is durable
 *   finish()            flush; pool: fsync segment; close both       (a Promise: durable and closed)
 *
 * So audio is never durable before the journal header that describes it. A
 * `kill -9` loses nothing that was flushed (the bytes are in the page cache);
 * a power loss loses at most what was written since the last fsync. `sync()`,
 * `close()` and `journal()` (pause/resume lines, rare) fsync on the event loop;
 * so does everything when the injected `io` has no `fsync`.
 *
 * The writer never throws: the first I/O error (ENOSPC, EIO, EEXIST …) is
 * captured in `error`, both descriptors are closed and every later call is a
 * no-op returning false; an error on the pool is seen by the next call. A
 * descriptor the pool still holds is closed when the pool returns (closing it
 * earlier could hand its number to another file). File operations go through
 * an injectable `RecorderIo` so tests can simulate a full, failing or slow disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeJournalLine, journalFile, journalHeader, RECORDING_RATE, segmentFile, type JournalEntry, type RecordingRate } from './segment-files.ts';

/** The synchronous file operations the recorder uses (node:fs by default). */
export interface RecorderIo {
  mkdirSync(dir: string, opts: { recursive: true; mode: number }): unknown;
  openSync(file: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  /** fsync off the event loop; absent = the periodic sync is done with fsyncSync. */
  fsync?(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void;
}

/** node:fs, bound. */
export const nodeIo: RecorderIo = {
  mkdirSync: (dir, opts) => fs.mkdirSync(dir, opts),
  openSync: (file, flags, mode) => fs.openSync(file, flags, mode),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  fsync: (fd, done) => fs.fsync(fd, done),
};

/** The first I/O error a writer hit. */
export interface WriterError {
  /** errno code when there is one (`ENOSPC`, `EIO`, `EEXIST` …). */
  code?: string;
  message: string;
}

export interface SegmentWriterOptions {
  dir: string;
  index: number;
  /** Segment start on the recording clock (ms since the call was answered). */
  startMs: number;
  /** The recording's sample rate, written in the journal header (default 8 kHz). */
  sampleRate?: RecordingRate;
  io?: RecorderIo;
  /** In-memory buffer size; a full buffer is flushed immediately. Default 32 KiB (~1 s of audio). */
  bufferBytes?: number;
}

function describe(err: unknown): WriterError {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? { code, message: err.message } : { message: err.message };
  }
  return { message: String(err) };
}

export class SegmentWriter {
  /** Segment file name inside the working directory. */
  readonly file: string;
  readonly startMs: number;
  readonly sampleRate: RecordingRate;
  /** Bytes handed to the kernel so far (survive a process kill). */
  flushedBytes = 0;
  error: WriterError | undefined;
  private readonly io: RecorderIo;
  private readonly dir: string;
  private readonly index: number;
  private readonly buf: Buffer;
  private used = 0;
  private fd = -1;
  private logFd = -1;
  private dirty = false;
  /** The journal header and the directory entry are on disk (audio may be synced after this only). */
  private headerDurable = false;
  /** A background fsync of the segment is in flight. */
  private syncing = false;
  /** Pool operations in flight per descriptor, and descriptors to close when theirs return. */
  private readonly inPool = new Map<number, number>();
  private readonly closeWhenDone = new Set<number>();
  /** Called when the pool goes idle (finish() waits on it). */
  private idleWaiters: Array<() => void> = [];

  constructor(opts: SegmentWriterOptions) {
    this.dir = opts.dir;
    this.index = opts.index;
    this.startMs = opts.startMs;
    this.sampleRate = opts.sampleRate ?? RECORDING_RATE;
    this.io = opts.io ?? nodeIo;
    this.file = segmentFile(opts.index);
    this.buf = Buffer.alloc(Math.max(4096, opts.bufferBytes ?? 32 * 1024));
  }

  /** Bytes buffered but not yet written. */
  get pendingBytes(): number {
    return this.used;
  }

  get ok(): boolean {
    return this.error === undefined;
  }

  /**
   * Creates the directory, the journal (with its header) and the segment file; the header and the directory
   * entry are made durable on the pool (or here, without `io.fsync`). Both files are created exclusively: an
   * existing segment with this index is an error (a resumed call must use the next index).
   */
  open(): boolean {
    return this.guard(() => {
      this.io.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.logFd = this.io.openSync(path.join(this.dir, journalFile(this.index)), 'ax', 0o600);
      this.writeAll(this.logFd, Buffer.from(encodeJournalLine(journalHeader(this.startMs, this.sampleRate))));
      this.fd = this.io.openSync(path.join(this.dir, this.file), 'ax', 0o600);
      if (!this.io.fsync) {
        this.io.fsyncSync(this.logFd);
        this.syncDir();
        this.headerDurable = true;
        return;
      }
      this.inBackground(this.logFd, () =>
        this.guard(() => {
          const dirFd = this.io.openSync(this.dir, 'r');
          this.inBackground(dirFd, () => (this.headerDurable = true), true);
        }),
      );
    });
  }

  /** Buffers `bytes`, flushing first if they do not fit. */
  append(bytes: Uint8Array): boolean {
    if (!this.ok) return false;
    if (this.used + bytes.length > this.buf.length && !this.flush()) return false;
    if (bytes.length > this.buf.length) {
      return this.guard(() => this.writeAll(this.fd, bytes, true));
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
    return true;
  }

  /** Writes the buffer through to the file descriptor. */
  flush(): boolean {
    if (!this.ok) return false;
    if (this.used === 0) return true;
    return this.guard(() => {
      const n = this.used;
      this.used = 0;
      this.writeAll(this.fd, this.buf.subarray(0, n), true);
    });
  }

  /** fsyncs the segment file (and the header, if the pool has not yet) on the event loop. */
  sync(): boolean {
    if (!this.ok) return false;
    if (!this.dirty && !this.syncing && this.headerDurable) return true;
    return this.guard(() => {
      if (!this.headerDurable) {
        this.io.fsyncSync(this.logFd);
        this.syncDir();
        this.headerDurable = true;
      }
      this.io.fsyncSync(this.fd);
      this.dirty = false;
    });
  }

  /**
   * fsyncs the segment file on the thread pool if anything was written since the last sync, once the header is
   * durable; at most one in flight. An error fails the writer (seen by the next call). Without `io.fsync`, the
   * same as `sync()`.
   */
  syncInBackground(): boolean {
    if (!this.ok) return false;
    if (!this.io.fsync) return this.sync();
    if (!this.dirty || this.syncing || !this.headerDurable) return true;
    this.syncing = true;
    this.dirty = false;
    this.inBackground(this.fd, () => {
      this.syncing = false;
    });
    return true;
  }

  /** Appends one journal line and fsyncs it. */
  journal(entry: JournalEntry): boolean {
    if (!this.ok) return false;
    return this.guard(() => {
      this.writeAll(this.logFd, Buffer.from(encodeJournalLine(entry)));
      this.io.fsyncSync(this.logFd);
    });
  }

  /** Flushes, fsyncs and closes both files on the event loop. Safe to call more than once. */
  close(): boolean {
    const ok = this.flush() && this.sync();
    this.closeFds();
    return ok;
  }

  /**
   * Flushes now (so `flushedBytes` is final when this returns), then makes the segment durable on the pool and
   * closes both files: resolves true once that is done, false if any step failed (`error` says why). Without
   * `io.fsync`, the same as `close()`.
   */
  async finish(): Promise<boolean> {
    if (!this.flush() || !this.io.fsync) return this.close(); // (runs before the first await: flushedBytes is final)
    await this.whenIdle(); // the header's fsyncs and a periodic sync still on the pool
    if (this.ok && this.dirty) {
      this.dirty = false;
      this.inBackground(this.fd, () => undefined);
      await this.whenIdle();
    }
    this.closeFds();
    return this.ok;
  }

  /**
   * Runs `io.fsync(fd)` on the pool; `then` runs when it succeeds. `closeAfter`: the descriptor is released when
   * it returns. A failure fails the writer.
   */
  private inBackground(fd: number, then: () => void, closeAfter = false): void {
    this.inPool.set(fd, (this.inPool.get(fd) ?? 0) + 1);
    if (closeAfter) this.closeWhenDone.add(fd);
    this.io.fsync!(fd, (err) => {
      const left = (this.inPool.get(fd) ?? 1) - 1;
      if (left > 0) this.inPool.set(fd, left);
      else this.inPool.delete(fd);
      if (left <= 0 && this.closeWhenDone.delete(fd)) this.closeQuietly(fd);
      if (err) {
        if (this.ok) {
          this.error = describe(err);
          this.used = 0;
          this.closeFds();
        }
      } else if (this.ok) {
        then();
      }
      if (this.inPool.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private whenIdle(): Promise<void> {
    if (this.inPool.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private writeAll(fd: number, bytes: Uint8Array, audio = false): void {
    let off = 0;
    while (off < bytes.length) {
      const n = this.io.writeSync(fd, bytes, off, bytes.length - off);
      if (!(n > 0)) throw Object.assign(new Error(`short write (${n} bytes) to ${this.file}`), { code: 'EIO' });
      off += n;
      if (audio) {
        this.flushedBytes += n;
        this.dirty = true;
      }
    }
  }

  private syncDir(): void {
    const dfd = this.io.openSync(this.dir, 'r');
    try {
      this.io.fsyncSync(dfd);
    } finally {
      this.io.closeSync(dfd);
    }
  }

  private guard(fn: () => void): boolean {
    if (!this.ok) return false;
    try {
      fn();
      return true;
    } catch (err) {
      this.error = describe(err);
      this.used = 0;
      this.closeFds();
      return false;
    }
  }

  private closeFds(): void {
    for (const fd of [this.fd, this.logFd]) {
      if (fd < 0) continue;
      // The pool still holds it: released when that returns (closing it now could hand its number to another file).
      if (this.inPool.has(fd)) this.closeWhenDone.add(fd);
      else this.closeQuietly(fd);
    }
    this.fd = -1;
    this.logFd = -1;
  }

  private closeQuietly(fd: number): void {
    try {
      this.io.closeSync(fd);
    } catch {
      // Closing after a failed write may fail again (EIO); nothing more to do.
    }
  }
}
