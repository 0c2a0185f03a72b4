/**
 * Sign-in throttling: exponential backoff on failures, per client address and
 * per account, instead of a lockout anyone can trigger.
 *
 * - **Per address** (`req.ip`): the first {@link LOGIN_BACKOFF}.free failures
 *   are free; after that each attempt must wait `base · 2^(failures − free)`
 *   (capped) since the last failure. A successful sign-in does not clear it
 *   (an attacker who owns one account cannot launder their address with it);
 *   it only takes back the attempt's own charge.
 * - **Per account**, keyed by the e-mail as typed (lowercased) — whether or not
 *   any user has it, so a 429 says nothing about which e-mails exist. Same
 *   backoff; a successful sign-in to the account clears it.
 *
 * Every attempt is charged as a failure *before* the password is checked and
 * the charge is taken back on success, so parallel requests cannot slip past
 * the gate while their hashes run.
 *
 * The owner during an attack: the account's backoff is not applied to an
 * address from which that account signed in successfully in the last 30 days
 * (a few per account), so an attacker failing from elsewhere does not keep
 * the owner out of their usual places. The tradeoff: an owner signing in from a
 * new address while the account is under attack waits the account's backoff
 * like the attacker (at most {@link LOGIN_BACKOFF}.capMs between tries, never a
 * lockout); an admin can still issue them an API token (`POST /v1/tokens`).
 * Telling the owner apart at a new address would need something the attacker
 * cannot also present from a new address (a device cookie), which we do not have.
 *
 * State is in memory, per node: a restart forgets it, and in a cluster each
 * node throttles separately (an attacker spreading over N nodes gets N times the
 * budget, still exponentially slowed). Both maps are bounded (oldest key
 * forgotten first) so a spray of addresses or e-mails cannot exhaust memory.
 */

export interface BackoffPolicy {
  /** Failures before any delay. */
  free: number;
  /** The first delay (ms); each further failure doubles it. */
  baseMs: number;
  /** The longest delay (ms). */
  capMs: number;
  /** A key idle this long (ms) since its last failure is forgotten. */
  forgetMs: number;
}

/** 5 free failures, then 30 s, 1 min, 2 min … up to 15 min between tries; forgotten after an hour without failures. */
export const LOGIN_BACKOFF: BackoffPolicy = { free: 5, baseMs: 30_000, capMs: 15 * 60_000, forgetMs: 60 * 60_000 };

/** How long a successful sign-in makes its address trusted for that account (ms), and how many addresses per account. */
const TRUST_MS = 30 * 86_400_000;
const TRUSTED_PER_ACCOUNT = 8;

interface Failures {
  count: number;
  lastAt: number;
}

/** Failure-driven exponential backoff per key, in a bounded map. */
export class Backoff {
  private readonly keys = new Map<string, Failures>();

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly now: () => number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Milliseconds `key` must still wait before its next attempt; 0 = it may try now. */
  waitFor(key: string): number {
    const f = this.current(key);
    if (!f || f.count < this.policy.free) return 0;
    const delay = Math.min(this.policy.capMs, this.policy.baseMs * 2 ** Math.min(f.count - this.policy.free, 40));
    return Math.max(0, f.lastAt + delay - this.now());
  }

  /** Counts a failure for `key` now. */
  fail(key: string): void {
    const f = this.current(key) ?? { count: 0, lastAt: 0 };
    this.keys.delete(key);
    this.keys.set(key, { count: f.count + 1, lastAt: this.now() });
    if (this.keys.size > this.maxKeys) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
  }

  /** Takes back one failure (an attempt charged up front that succeeded). */
  forgiveOne(key: string): void {
    const f = this.keys.get(key);
    if (f) f.count = Math.max(0, f.count - 1);
  }

  /** Forgets every failure of `key`. */
  clear(key: string): void {
    this.keys.delete(key);
  }

  private current(key: string): Failures | undefined {
    const f = this.keys.get(key);
    if (f && this.now() - f.lastAt > this.policy.forgetMs) {
      this.keys.delete(key);
      return undefined;
    }
    return f;
  }
}

/** The per-address and per-account gates of `POST /v1/auth/login` (see the header). */
export class LoginThrottle {
  private readonly addresses: Backoff;
  private readonly accounts: Backoff;
  /** account → address → last successful sign-in (ms). */
  private readonly trusted = new Map<string, Map<string, number>>();

  constructor(
    private readonly now: () => number,
    policy: BackoffPolicy = LOGIN_BACKOFF,
    private readonly maxKeys = 100_000,
  ) {
    this.addresses = new Backoff(policy, now, maxKeys);
    this.accounts = new Backoff(policy, now, maxKeys);
  }

  /**
   * Admits an attempt of `account` from `address`: returns the milliseconds to
   * wait (nothing charged), or 0 after charging the attempt as a failure to both.
   */
  admit(address: string, account: string): number {
    const wait = Math.max(this.addresses.waitFor(address), this.isTrusted(account, address) ? 0 : this.accounts.waitFor(account));
    if (wait > 0) return wait;
    this.addresses.fail(address);
    this.accounts.fail(account);
    return 0;
  }

  /** The admitted attempt proved the password: take back its charge, clear the account, trust the address for it. */
  succeeded(address: string, account: string): void {
    this.addresses.forgiveOne(address);
    this.accounts.clear(account);
    const now = this.now();
    const places = this.trusted.get(account) ?? new Map<string, number>();
    this.trusted.delete(account);
    places.delete(address);
    places.set(address, now);
    for (const [addr, at] of places) if (places.size > TRUSTED_PER_ACCOUNT || now - at > TRUST_MS) places.delete(addr);
    this.trusted.set(account, places);
    if (this.trusted.size > this.maxKeys) {
      const oldest = this.trusted.keys().next();
      if (!oldest.done) this.trusted.delete(oldest.value);
    }
  }

  private isTrusted(account: string, address: string): boolean {
    const at = this.trusted.get(account)?.get(address);
    return at !== undefined && this.now() - at <= TRUST_MS;
  }
}
