/**
 * Digest password-guessing throttle (RFC 3261 §22, §26.3.2.4): how many wrong passwords the gateway is willing to
 * *check* — per source, per user name and in total — before it stops checking and answers every further attempt
 * with the same 401 it gives a wrong password.
 *
 * Three failure budgets, each a token bucket that refills while nobody fails (the backoff decays by itself):
 *  - per source address (an IPv6 source by its /64, which one host owns): `source`, default 5 failures, then one
 *    more per minute;
 *  - per user name, known or unknown alike (the same key, the same numbers, so the throttle tells nothing about
 *    which names exist): `user`, default 10, then one per minute;
 *  - for the whole node, across all sources and names: `global`, default 50, then 5 per second.
 * Only a checked attempt that fails spends a token. An attempt that is not checked spends nothing, so a source
 * hammering a throttled key does not extend its own ban: the budget refills at its rate, whatever the attacker does,
 * and is full again `burst / rate` after the attack stops (5–10 minutes with the defaults).
 *
 * An attempt by `source` as `user` is checked when
 *  1. `source` authenticated as `user` within the last hour, and has not failed as `user` since (a trusted pair:
 *     it knows the password, and an address that sent the right one cannot be throttled out by strangers) — or
 *  2. the global and the source budgets have a token left, and either the user's has one too or the source has
 *     not failed at all lately (its bucket is full). So the legitimate trunk, which does not fail, still gets its
 *     right password checked while strangers hammer its user name; a botnet gets one checked guess per fresh
 *     address at a throttled name, and the global budget caps those.
 * After a restart the trusted pairs are forgotten; a trunk then gets in through rule 2, unless a distributed attack
 * is spending the whole global budget at that moment (then nobody new is checked until it refills: a guessing
 * attack with unlimited addresses can only be bounded in total, and that bound is the price).
 *
 * The answer to an attempt that is not checked is the same 401 with a fresh challenge as for a wrong password (not
 * 403, 503 or silence). A 403 or a dropped request would tell the attacker it is throttled — and so that its
 * guesses went unchecked, which it could use to pace itself just under the budget — and a 503 asks a proxy to
 * fail over and the trunk to come back after Retry-After; a 401 for credentials a UAC just sent makes it give up
 * the call (RFC 3261 §22.2), as a wrong password does. This is what Asterisk's `alwaysauthreject` and the
 * brute-force recipes of Kamailio/OpenSIPS aim at: every failure looks the same. The amplification is capped
 * elsewhere: the 401 is sent statelessly (uas.ts, RFC 3261 §8.2.7) and the per-source rate limit bounds how many
 * a source gets.
 *
 * Behind a proxy (Kamailio in front of a cluster) every request has the proxy's address: its source budget is
 * shared by all trunks behind it, and rule 1 is what keeps them in.
 */
import type { Logger } from 'pino';

export interface FailureBudget {
  /** Failures allowed at once. */
  burst: number;
  /** Failures allowed per second once the burst is spent (the refill). */
  rate: number;
}

export interface GuessBudgets {
  source: FailureBudget;
  user: FailureBudget;
  global: FailureBudget;
  /** How long a successful (source, user) pair stays trusted, ms (renewed by each success). */
  trustMs: number;
  /** Most keys remembered per kind (a spray of names or addresses cannot grow memory without bound). */
  maxKeys: number;
}

export const DEFAULT_GUESS_BUDGETS: GuessBudgets = {
  source: { burst: 5, rate: 1 / 60 },
  user: { burst: 10, rate: 1 / 60 },
  global: { burst: 50, rate: 5 },
  trustMs: 3_600_000,
  maxKeys: 50_000,
};

interface Tokens {
  tokens: number;
  at: number;
}

/** Token buckets of failures, keyed; a key whose bucket is full again is forgotten. */
class FailureBuckets {
  private readonly buckets = new Map<string, Tokens>();
  private sweptAt = 0;

  constructor(
    private readonly budget: FailureBudget,
    private readonly maxKeys: number,
  ) {}

  /** Tokens left for `key` at `now` (a key never seen, or long quiet, has the whole burst). */
  level(key: string, now: number): number {
    const b = this.buckets.get(key);
    if (!b) return this.budget.burst;
    return Math.min(this.budget.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * this.budget.rate);
  }

  /** Spends one token (not below zero); true when this left the key without tokens. */
  spend(key: string, now: number): boolean {
    if (now - this.sweptAt > 60_000 || this.buckets.size >= this.maxKeys) this.sweep(now);
    const tokens = Math.max(0, this.level(key, now) - 1);
    this.buckets.delete(key); // re-inserted last: eviction order is least recently failed first
    this.buckets.set(key, { tokens, at: now });
    return tokens < 1;
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const key of [...this.buckets.keys()]) if (this.level(key, now) >= this.budget.burst) this.buckets.delete(key);
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}

/** The per-request view digest.ts uses: may this user name's password be checked, and what came of it. */
export interface GuessGate {
  mayCheck(username: string): boolean;
  failed(username: string): void;
  succeeded(username: string): void;
}

export class GuessThrottle {
  private readonly sources: FailureBuckets;
  private readonly users: FailureBuckets;
  private readonly global: FailureBuckets;
  /** `source\0user` → trusted until (ms). */
  private readonly trusted = new Map<string, number>();
  private counts = { checked: 0, unchecked: 0 };

  constructor(
    readonly budgets: GuessBudgets = DEFAULT_GUESS_BUDGETS,
    private readonly log?: Logger,
  ) {
    this.sources = new FailureBuckets(budgets.source, budgets.maxKeys);
    this.users = new FailureBuckets(budgets.user, budgets.maxKeys);
    this.global = new FailureBuckets(budgets.global, budgets.maxKeys);
  }

  /** Attempts whose password was compared, and attempts answered without comparing (since start). */
  get stats(): { checked: number; unchecked: number } {
    return { ...this.counts };
  }

  /** The gate for one request from `address` at `now`. */
  gate(address: string, now: number): GuessGate {
    const source = sourceKey(address);
    return {
      mayCheck: (user) => {
        const ok = this.mayCheck(source, user, now);
        this.counts[ok ? 'checked' : 'unchecked']++;
        return ok;
      },
      failed: (user) => this.failed(source, user, now),
      succeeded: (user) => this.succeeded(source, user, now),
    };
  }

  private mayCheck(source: string, user: string, now: number): boolean {
    const until = this.trusted.get(pair(source, user));
    if (until !== undefined && until > now) return true;
    if (this.global.level('*', now) < 1 || this.sources.level(source, now) < 1) return false;
    return this.users.level(user, now) >= 1 || this.sources.level(source, now) >= this.budgets.source.burst;
  }

  private failed(source: string, user: string, now: number): void {
    this.trusted.delete(pair(source, user));
    if (this.global.spend('*', now)) this.log?.warn({ burst: this.budgets.global.burst }, 'SIP digest failures: node-wide budget spent, guesses go unchecked until it refills');
    if (this.sources.spend(source, now)) this.log?.warn({ from: source }, 'SIP digest failures: source throttled');
    if (this.users.spend(user, now)) this.log?.warn({ user: user.slice(0, 64) }, 'SIP digest failures: user name throttled');
  }

  private succeeded(source: string, user: string, now: number): void {
    const key = pair(source, user);
    this.trusted.delete(key);
    if (this.trusted.size >= this.budgets.maxKeys) {
      for (const [k, until] of this.trusted) if (until <= now || this.trusted.size >= this.budgets.maxKeys) this.trusted.delete(k);
    }
    this.trusted.set(key, now + this.budgets.trustMs);
  }
}

const pair = (source: string, user: string): string => `${source}\0${user}`;

/** The throttle's key for a source: an IPv4 address as is, an IPv6 one by its /64 (one host's allocation). */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.toLowerCase().split('::', 2);
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${all.slice(0, 4).map((g) => (Number.parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
