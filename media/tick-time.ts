/**
 * How long the media clock's ticks take: a fixed-bucket histogram (counts per
 * upper bound, sum, count) filled without allocating, read by /metrics as
 * `switchboard_media_tick_seconds`. A tick sends every due frame of every
 * stream on its phase; when its time nears the 20 ms slot (5 ms per phase with
 * the gateway's four phases) the node is near the calls it can pace.
 */

/** Upper bounds of the buckets, ms (a last, implicit bucket holds everything above). */
export const TICK_BUCKETS_MS: readonly number[] = [0.25, 0.5, 1, 2, 5, 10, 20, 40, 100, 250, 1000];

export class TickTimes {
  /** counts[i]: ticks that took ≤ TICK_BUCKETS_MS[i] (not cumulative); the last entry: above every bound. */
  readonly counts = new Float64Array(TICK_BUCKETS_MS.length + 1);
  count = 0;
  sumMs = 0;
  maxMs = 0;

  observe(ms: number): void {
    const v = ms > 0 ? ms : 0;
    let i = 0;
    while (i < TICK_BUCKETS_MS.length && v > (TICK_BUCKETS_MS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumMs += v;
    if (v > this.maxMs) this.maxMs = v;
  }
}
