/**
 * The process logger: pino, JSON lines on stdout, written by a destination
 * that never blocks and never throws. pino's own synchronous writer retries a
 * failed write every 100 ms forever at exit, and turns the first ENOSPC into
 * an uncaught error: with stdout on a full disk the process would hang holding
 * its port and data-dir lock. Here a line that cannot be written is dropped and
 * counted instead:
 *  - ENOSPC, EIO, EFBIG, EDQUOT, EPIPE… (the disk or the reader is gone): the
 *    line is dropped; the next line that gets through is preceded by a note
 *    with the number dropped (`log lines dropped`);
 *  - EAGAIN (a non-blocking pipe whose reader is slow): the line waits in a
 *    bounded buffer (1 MiB), retried on a timer; past the bound lines are dropped.
 * `droppedLogLines()` is exported on /metrics and /healthz.
 */
import fs from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

const PENDING_MAX_BYTES = 1 << 20;
const RETRY_MS = 50;

/** A pino destination over a file descriptor that drops, and counts, what it cannot write. */
export class DroppingDestination implements DestinationStream {
  dropped = 0;
  private reported = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly fd: number) {}

  write(line: string): void {
    const reported = this.reported;
    const buf = Buffer.from(this.dropped > this.reported ? this.dropNote() + line : line);
    if (this.pending.length > 0) return this.enqueue(buf);
    const rest = this.writeNow(buf);
    if (rest === false) {
      this.reported = reported; // the note did not get through either
      this.dropped += 1;
    } else if (rest !== true) this.enqueue(rest);
  }

  private dropNote(): string {
    const n = this.dropped - this.reported;
    this.reported = this.dropped;
    return `${JSON.stringify({ level: 40, time: Date.now(), service: 'switchboard', dropped: n, msg: 'log lines dropped (the log could not be written)' })}\n`;
  }

  /** true: written; false: dropped for good; a Buffer: the unwritten rest (EAGAIN). */
  private writeNow(buf: Buffer): boolean | Buffer {
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(this.fd, buf, off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return buf.subarray(off);
        if (off > 0) this.tryWrite('\n'); // keep the next line on a line of its own
        return false;
      }
    }
    return true;
  }

  private tryWrite(s: string): void {
    try {
      fs.writeSync(this.fd, s);
    } catch {
      // best effort
    }
  }

  private enqueue(buf: Buffer): void {
    if (this.pendingBytes + buf.length > PENDING_MAX_BYTES) {
      this.dropped += 1;
      return;
    }
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (!this.timer) {
      this.timer = setTimeout(() => this.retry(), RETRY_MS);
      this.timer.unref();
    }
  }

  private retry(): void {
    this.timer = null;
    while (this.pending.length > 0) {
      const head = this.pending[0] as Buffer;
      const rest = this.writeNow(head);
      if (rest === true || rest === false) {
        if (!rest) this.dropped += 1;
        this.pending.shift();
        this.pendingBytes -= head.length;
        continue;
      }
      this.pendingBytes -= head.length - rest.length;
      this.pending[0] = rest;
      this.timer = setTimeout(() => this.retry(), RETRY_MS);
      this.timer.unref();
      return;
    }
  }

  /** pino's flushSync (at exit): one non-blocking attempt at what is buffered, never a wait. */
  flushSync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.retry();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

let destination: DroppingDestination | null = null;

/** Log lines dropped since start because stdout could not take them (full disk, gone or stuck reader). */
export function droppedLogLines(): number {
  return destination?.dropped ?? 0;
}

export function createLogger(level = 'info', fd = 1): Logger {
  const dest = new DroppingDestination(fd);
  if (fd === 1) {
    // At exit, one non-blocking attempt at lines still waiting for a slow reader (never a wait).
    if (!destination) process.once('exit', () => destination?.flushSync());
    destination = dest;
  }
  return pino({ level, base: { service: 'switchboard' } }, dest);
}
