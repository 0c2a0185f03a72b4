/**
 * A FIFO of mono PCM samples fed in frames of any length and read in fixed
 * blocks (the recorder's per-channel staging area). Pushed arrays are kept by
 * reference, not copied: callers must not mutate them afterwards.
 */
export class SampleQueue {
  private chunks: Int16Array[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  private size = 0;

  /** Samples queued. */
  get length(): number {
    return this.size;
  }

  push(samples: Int16Array): void {
    if (samples.length === 0) return;
    this.chunks.push(samples);
    this.size += samples.length;
  }

  /**
   * Moves up to `n` samples into `out[0, n)` and zero-fills the rest of that
   * range. Returns how many samples were taken from the queue.
   */
  take(out: Int16Array, n: number): number {
    let filled = 0;
    while (filled < n && this.chunks.length > 0) {
      const chunk = this.chunks[0] as Int16Array;
      const count = Math.min(n - filled, chunk.length - this.head);
      out.set(chunk.subarray(this.head, this.head + count), filled);
      filled += count;
      this.head += count;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.size -= filled;
    if (filled < n) out.fill(0, filled, n);
    return filled;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.size = 0;
  }
}
