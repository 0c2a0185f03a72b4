/**
 * Trunk admission, the UAS's `admit()` hook: every new (non-ACK, non-
 * retransmitted) request passes, in order:
 *
 *  1. per-source rate limit (rate-limit.ts): over it, one 503 + Retry-After per second per source, the rest dropped.
 *     Requests inside a LIVE dialog (the caller tells: Call-ID and both tags match a call of ours) neither count nor
 *     are limited: a BYE or re-INVITE refused for rate would keep a call — its recording, its agent, its bill —
 *     up, and a trunk at its contracted call rate sends ~3 requests per call (INVITE, ACK, BYE). A forged To tag
 *     matches no dialog and is counted like any new request;
 *  2. the source allowlist (cidr.ts): outside it → 403 Forbidden. We answer rather than drop, as most carriers'
 *     trunks do (a misconfigured trunk sees why), and step 1 caps what a scanner gets back. Requests inside a LIVE
 *     dialog pass: an outbound call (uac.ts) goes to any host, and its callee's BYE must end it;
 *  3. digest auth (digest.ts), when users are configured, for requests outside a dialog (no To tag) other than
 *     CANCEL (and ACK), which cannot be challenged (RFC 3261 §22.1): no or bad credentials → 401 with a fresh
 *     challenge. In-dialog requests (BYE, re-INVITE, INFO) are not re-challenged: they only act on a dialog an
 *     authenticated INVITE created (matched by Call-ID and both tags), anything else gets 481. Password guessing is
 *     throttled per source, per user name and node-wide (guess-throttle.ts): past those budgets an attempt is not
 *     checked and gets the 401 of a wrong password.
 *
 * When both an allowlist and users are configured, a request needs both. Refusals are identical whatever the
 * user name: the same status, headers and body, with only the nonce differing — throttled or not. Every refusal
 * here is sent statelessly by the UAS (RFC 3261 §8.2.7: no 100 Trying, no retransmission of the final answer),
 * so a flood of requests from a forged source gets one datagram each, at most.
 */
import type { Logger } from 'pino';
import { unmapped, type CidrList } from './cidr.ts';
import { DigestVerifier, NonceMint } from './digest.ts';
import { GuessThrottle, type GuessBudgets } from './guess-throttle.ts';
import { RateLimiter } from './rate-limit.ts';
import type { TrunkConfig } from './trunk-config.ts';
import type { Peer } from './transport.ts';
import type { Refusal, ValidRequest } from './validate.ts';

/** status 0: drop silently (no response). */
export type Admission = Refusal | null;

export class TrunkAdmission {
  readonly limiter: RateLimiter | null;
  readonly digest: DigestVerifier | null;
  private readonly allow: CidrList | null;
  private readonly guesses: GuessThrottle;

  constructor(
    config: TrunkConfig,
    nonceSecret: Buffer,
    private readonly log: Logger,
    budgets?: GuessBudgets,
  ) {
    this.allow = config.allow;
    this.limiter = config.rate ? new RateLimiter(config.rate.rate, config.rate.burst) : null;
    this.digest = config.users ? new DigestVerifier(config.realm, config.users, new NonceMint(nonceSecret)) : null;
    this.guesses = new GuessThrottle(budgets, log);
  }

  /** Digest attempts whose password was compared, and those answered without comparing (throttled), since start. */
  get guessing(): { checked: number; unchecked: number } {
    return this.guesses.stats;
  }

  /** `inDialog`: the request matches a live dialog of ours (not just any To tag). */
  admit(v: ValidRequest, peer: Peer, opts: { inDialog?: boolean } = {}, now = Date.now()): Admission {
    const source = unmapped(peer.address);
    const method = v.req.method;
    const rate = opts.inDialog ? 'ok' : (this.limiter?.take(source, now) ?? 'ok');
    if (rate === 'drop') return { status: 0, detail: 'rate limit' };
    if (rate === 'refuse') {
      this.log.warn({ from: source, method }, 'SIP source over its rate limit');
      return { status: 503, headers: [['Retry-After', '1']], detail: 'rate limit' };
    }
    if (this.allow && !opts.inDialog && !this.allow.has(source)) {
      this.log.info({ from: source, method }, 'SIP request from outside the allowlist refused');
      return { status: 403, detail: 'source not in SWITCHBOARD_SIP_ALLOW' };
    }
    if (!this.digest || method === 'ACK' || method === 'CANCEL' || v.to.params.tag) return null;
    const verdict = this.digest.verify({ method, uri: v.req.uri, authorizations: v.req.headers.lines('authorization') }, now, this.guesses.gate(source, now));
    if (verdict.ok) return null;
    // Throttled attempts are not logged one by one (the throttle logs when a budget runs out).
    if (verdict.detail !== 'no credentials' && verdict.detail !== 'guessing throttled') this.log.info({ from: source, method, detail: verdict.detail }, 'SIP digest authentication failed');
    return { status: 401, headers: [['WWW-Authenticate', this.digest.challenge(verdict.stale, now)]], detail: verdict.detail };
  }
}
