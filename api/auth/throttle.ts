/**
 * A fixed-budget sliding window per key (client address): at most `limit`
 * attempts in `windowMs`. Login uses it in front of the per-user lockout, so
 * a brute force is slowed per address and stopped per account.
 */
export class Throttle {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
    /** Forget idle keys past this many, oldest first (bounded memory under a spray of addresses). */
    private readonly maxKeys = 100_000,
  ) {}

  /** Counts an attempt; returns ms to wait when over the limit, else 0. */
  hit(key: string): number {
    const t = this.now();
    const recent = (this.hits.get(key) ?? []).filter((at) => at > t - this.windowMs);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return (recent[0] ?? t) + this.windowMs - t;
    }
    recent.push(t);
    this.hits.delete(key);
    this.hits.set(key, recent);
    if (this.hits.size > this.maxKeys) {
      const oldest = this.hits.keys().next();
      if (!oldest.done) this.hits.delete(oldest.value);
    }
    return 0;
  }
}
