/**
 * Per-source token buckets (`rate` tokens/s, `burst` deep), keyed by source
 * address (not port). Over the limit a source gets one answer per second
 * (`refuse`: the caller sends 503 + Retry-After) and silence for the rest
 * (`drop`), so a flood is not reflected. Idle sources (full buckets) are
 * swept so the map stays small.
 */
export type RateVerdict = 'ok' | 'refuse' | 'drop';

interface Bucket {
  tokens: number;
  at: number;
  refusedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweptAt = 0;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly maxSources = 100_000,
  ) {}

  take(source: string, now = Date.now()): RateVerdict {
    if (now - this.sweptAt > 10_000 || this.buckets.size >= this.maxSources) this.sweep(now);
    let b = this.buckets.get(source);
    if (!b) {
      b = { tokens: this.burst, at: now, refusedAt: -Infinity };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'ok';
    }
    if (now - b.refusedAt >= 1000) {
      b.refusedAt = now;
      return 'refuse';
    }
    return 'drop';
  }

  get sources(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    const refill = (this.burst / this.rate) * 1000;
    for (const [k, b] of this.buckets) if (now - b.at >= refill) this.buckets.delete(k);
    // Still at the cap (a spoofed-source flood): forget the least recently created.
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxSources) break;
      this.buckets.delete(k);
    }
  }
}
