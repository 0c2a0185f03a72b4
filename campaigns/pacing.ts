/**
 * Calls-per-second pacing: a token bucket per provider (per tenant), with the time given (pure; tests inject it).
 * `rate` tokens a second, at most `burst` banked. Campaigns use burst 1, i.e. one decision every 1/rate seconds:
 * Vonage counts its limit over any rolling second and refuses the excess, so a burst of banked tokens would be
 * refused there. The committed decision time is what counts (the store's check in `campaign_attempt_decided` uses
 * it): `spentAt` aligns the bucket on it when it is a little later than the take.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly rate: number,
    readonly burst = 1,
    now = 0,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError('a token bucket needs rate > 0 and burst >= 1');
    this.tokens = burst;
    this.at = now;
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
  }

  /** Takes a token at `now` when one is there. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens -= 1;
    return true;
  }

  /** When the next token is there (`now` when one is). */
  nextAt(now: number): number {
    this.refill(now);
    if (this.tokens >= 1 - 1e-9) return now;
    return this.at + Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }

  /** Gives back the token just taken (the decision placed no call: the number was on the do-not-call list). */
  refund(): void {
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }

  /**
   * The token taken a moment ago was spent at `ts` (the decision's committed time, at or after the take): the
   * bucket refills from `ts`, not from the take.
   */
  spentAt(ts: number): void {
    if (ts > this.at) {
      this.at = ts;
      this.tokens = Math.min(this.tokens, this.burst - 1);
    }
  }
}
