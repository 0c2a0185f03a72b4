/**
 * A record, outside the database, that the store was unhealthy (disk full,
 * I/O error) — so the next start knows the log may lack what happened during
 * the fault (calls that ended, recordings that failed: their commands waited
 * in memory and died with the process).
 *
 * It must be writable exactly when the disk is full, so `<dataDir>/store-fault`
 * is allocated at open (512 bytes, while there is space) and only ever
 * overwritten in place (pwrite at offset 0, same length: no new block): a JSON
 * fault, or blanks when healthy. Writing it is best effort and never throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { StoreFault } from './engine.ts';

const SIZE = 512;
export const FAULT_FILE = 'store-fault';

export type RecordedFault = Pick<StoreFault, 'kind' | 'reason' | 'since'>;

export class FaultMarker {
  private fd: number | null = null;
  /** The fault the previous process recorded and never cleared, read at open. */
  readonly previous: RecordedFault | null;

  constructor(dataDir: string) {
    const file = path.join(dataDir, FAULT_FILE);
    let previous: RecordedFault | null = null;
    try {
      previous = parse(fs.readFileSync(file, 'utf8'));
    } catch {
      // absent (first start) or unreadable: nothing recorded
    }
    this.previous = previous;
    try {
      this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      if (fs.fstatSync(this.fd).size < SIZE) fs.writeSync(this.fd, Buffer.alloc(SIZE, ' '), 0, SIZE, 0);
    } catch {
      if (this.fd !== null) fs.closeSync(this.fd);
      this.fd = null; // no room even for the marker: faults go unrecorded (the log stays consistent either way)
    }
    // The previous fault stays recorded until whoever handles it calls clear().
  }

  record(fault: RecordedFault): void {
    const text = JSON.stringify({ kind: fault.kind, reason: fault.reason.slice(0, 300), since: fault.since });
    this.put(text);
  }

  clear(): void {
    this.put('');
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private put(text: string): void {
    if (this.fd === null) return;
    const buf = Buffer.alloc(SIZE, ' ');
    buf.write(text.slice(0, SIZE), 0, 'utf8');
    try {
      fs.writeSync(this.fd, buf, 0, SIZE, 0);
      fs.fdatasyncSync(this.fd);
    } catch {
      // best effort: the marker is a hint for the next start, never a reason to stop
    }
  }
}

function parse(text: string): RecordedFault | null {
  const t = text.trim();
  if (!t) return null;
  const v = JSON.parse(t) as Partial<RecordedFault>;
  if (typeof v.kind !== 'string' || typeof v.reason !== 'string' || typeof v.since !== 'number') return null;
  return { kind: v.kind as RecordedFault['kind'], reason: v.reason, since: v.since };
}
