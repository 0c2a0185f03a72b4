/**
 * Durable append-only writer for one recording segment (`seg-NNN.pcm` plus its
 * journal `seg-NNN.log`, see segment-files.ts).
 *
 * Audio is copied into a small in-memory buffer and written through to the
 * file descriptor by `flush()` (the recorder calls it at least every 200 ms);
 * `sync()` fsyncs; `syncInBackground()` (the recorder's periodic sync) does it
 * on libuv's thread pool, so hundreds of recording calls never hold the media
 * event loop for the disk. A `kill -9` loses nothing that was flushed (the
 * bytes are in the page cache); a power loss loses at most what was written
 * since the last fsync. Journal lines are written and fsync'd one at a time.
 *
 * The writer never throws: the first I/O error (ENOSPC, EIO, EEXIST …) is
 * captured in `error`, both descriptors are closed and every later call is a
 * no-op returning false. File operations go through an injectable `RecorderIo`
 * so tests can simulate a full or failing disk.
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
  /** A background fsync is in flight on `fd`; `closeAfterSync`: close it when that returns. */
  private syncing = false;
  private closeAfterSync = -1;

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
   * Creates the directory, the journal (header made durable first) and the
   * segment file. Both files are created exclusively: an existing segment with
   * this index is an error (a resumed call must use the next index).
   */
  open(): boolean {
    return this.guard(() => {
      this.io.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.logFd = this.io.openSync(path.join(this.dir, journalFile(this.index)), 'ax', 0o600);
      this.writeAll(this.logFd, Buffer.from(encodeJournalLine(journalHeader(this.startMs, this.sampleRate))));
      this.io.fsyncSync(this.logFd);
      this.fd = this.io.openSync(path.join(this.dir, this.file), 'ax', 0o600);
      this.syncDir();
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

  /** fsyncs the segment file if anything was written since the last sync. */
  sync(): boolean {
    if (!this.ok) return false;
    if (!this.dirty && !this.syncing) return true;
    return this.guard(() => {
      this.io.fsyncSync(this.fd);
      this.dirty = false;
    });
  }

  /**
   * fsyncs the segment file on the thread pool if anything was written since the last sync; at most one in
   * flight. An error fails the writer (seen by the next call). Without `io.fsync`, the same as `sync()`.
   */
  syncInBackground(): boolean {
    if (!this.ok) return false;
    const fsync = this.io.fsync;
    if (!fsync) return this.sync();
    if (!this.dirty || this.syncing) return true;
    this.syncing = true;
    this.dirty = false;
    const fd = this.fd;
    fsync(fd, (err) => {
      this.syncing = false;
      if (this.closeAfterSync === fd) {
        // Closed meanwhile (close() synced once more, blocking): only the descriptor is left to release.
        this.closeAfterSync = -1;
        this.closeQuietly(fd);
        return;
      }
      if (err && this.ok) {
        this.error = describe(err);
        this.used = 0;
        this.closeFds();
      }
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

  /** Flushes, fsyncs and closes both files. Safe to call more than once. */
  close(): boolean {
    const ok = this.flush() && this.sync();
    this.closeFds();
    return ok;
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
    // A background fsync still holds the segment's descriptor: it is closed when that returns (closing it now
    // could hand its number to another file before the thread pool uses it).
    if (this.syncing && this.fd >= 0) this.closeAfterSync = this.fd;
    else if (this.fd >= 0) this.closeQuietly(this.fd);
    if (this.logFd >= 0) this.closeQuietly(this.logFd);
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
