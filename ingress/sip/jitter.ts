/**
 * A small RTP reorder/jitter buffer. Packets are released in sequence order;
 * an in-order packet goes out at once (no added latency on a clean path), a
 * gap is waited for until `depth` later packets are queued or `maxWaitMs`
 * passes, then skipped (counted as lost). Late packets and duplicates are
 * dropped. Sequence numbers are extended across the 16-bit wrap. The wait
 * timer runs under the owner's FaultGuard (media/guard.ts), if given.
 */
import type { FaultGuard } from '../../media/guard.ts';

export interface JitterStats {
  received: number;
  released: number;
  lost: number;
  late: number;
  duplicates: number;
}

export interface ReleasedPacket<T> {
  seq: number;
  timestamp: number;
  item: T;
}

export class JitterBuffer<T> {
  readonly stats: JitterStats = { received: 0, released: 0, lost: 0, late: 0, duplicates: 0 };
  private readonly queue = new Map<number, { timestamp: number; item: T }>();
  /** Next extended sequence number to release; null before the first packet. */
  private expected: number | null = null;
  private highest = 0;
  private waitTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly release: (p: ReleasedPacket<T>) => void,
    private readonly depth = 3,
    private readonly maxWaitMs = 60,
    private readonly guard?: FaultGuard,
  ) {}

  /** Extends a 16-bit sequence number to the one nearest the highest seen. */
  private extend(seq: number): number {
    if (this.expected === null) return seq + 65536; // leave room below for reordered first packets
    let ext = (this.highest & ~0xffff) | seq;
    if (ext < this.highest - 32768) ext += 65536;
    else if (ext > this.highest + 32768) ext -= 65536;
    return ext;
  }

  push(seq: number, timestamp: number, item: T): void {
    this.stats.received++;
    const ext = this.extend(seq & 0xffff);
    if (this.expected === null) {
      this.expected = ext;
      this.highest = ext;
    }
    if (ext > this.highest) this.highest = ext;
    if (ext < this.expected) {
      this.stats.late++;
      return;
    }
    if (this.queue.has(ext)) {
      this.stats.duplicates++;
      return;
    }
    this.queue.set(ext, { timestamp, item });
    this.drain();
  }

  /** A new stream (SSRC change, re-INVITE): forget the numbering. */
  reset(): void {
    this.flush();
    this.expected = null;
    this.highest = 0;
  }

  /** Releases everything queued, skipping gaps. */
  flush(): void {
    while (this.queue.size > 0) this.skipGap();
    this.clearWait();
  }

  close(): void {
    this.queue.clear();
    this.clearWait();
  }

  private drain(): void {
    for (;;) {
      this.releaseInOrder();
      if (this.queue.size === 0) return this.clearWait();
      if (this.queue.size < this.depth) break;
      this.skipGap();
    }
    if (!this.waitTimer) {
      const onWait = (): void => {
        this.waitTimer = null;
        if (this.queue.size > 0) {
          this.skipGap();
          this.drain();
        }
      };
      this.waitTimer = setTimeout(this.guard ? this.guard.wrap('jitter wait', onWait) : onWait, this.maxWaitMs);
      this.waitTimer.unref();
    }
  }

  private releaseInOrder(): void {
    while (this.expected !== null) {
      const p = this.queue.get(this.expected);
      if (!p) return;
      this.queue.delete(this.expected);
      this.stats.released++;
      this.release({ seq: this.expected & 0xffff, timestamp: p.timestamp, item: p.item });
      this.expected++;
    }
  }

  /** Gives up on the missing packet(s) before the lowest queued one. */
  private skipGap(): void {
    if (this.queue.size === 0 || this.expected === null) return;
    const lowest = Math.min(...this.queue.keys());
    this.stats.lost += lowest - this.expected;
    this.expected = lowest;
    this.releaseInOrder();
  }

  private clearWait(): void {
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }
}
