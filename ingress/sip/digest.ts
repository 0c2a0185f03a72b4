/**
 * HTTP Digest for SIP (RFC 3261 §22, RFC 2617 / RFC 7616 with MD5, qop=auth).
 *
 *  - Nonces are stateless: base64url(issued-at ms ‖ 8 random bytes ‖ HMAC-SHA256 tag), keyed by a secret kept in
 *    the data directory, so a nonce issued before a restart still verifies after it, and expires after `ttlMs`
 *    (then the client is re-challenged with `stale=true`, but only if its digest was otherwise right).
 *  - Replay: per nonce, the highest nonce-count (nc) accepted is remembered until the nonce expires; a request
 *    whose nc is not above it is refused. That memory is per process (lost on restart) and bounded.
 *  - No enumeration: an unknown user is checked against a dummy HA1 with exactly the same steps as a known user
 *    with a wrong password, and both get the same fresh challenge.
 *  - Guessing: a `GuessGate` (guess-throttle.ts) decides per user name whether the password is checked at all; an
 *    attempt it turns away takes the same steps and gets the same answer as a wrong password.
 */
import crypto from 'node:crypto';
import type { GuessGate } from './guess-throttle.ts';

export const md5 = (s: string): string => crypto.createHash('md5').update(s, 'utf8').digest('hex');

/** HA1 = MD5(username:realm:password) (RFC 2617 §3.2.2.2). */
export const ha1Of = (username: string, realm: string, password: string): string => md5(`${username}:${realm}:${password}`);

/** request-digest (RFC 2617 §3.2.2.1): with qop=auth, or the RFC 2069 form without qop. */
export function digestResponse(p: { ha1: string; method: string; uri: string; nonce: string; qop?: string; nc?: string; cnonce?: string }): string {
  const ha2 = md5(`${p.method}:${p.uri}`);
  if (p.qop) return md5(`${p.ha1}:${p.nonce}:${p.nc ?? ''}:${p.cnonce ?? ''}:${p.qop}:${ha2}`);
  return md5(`${p.ha1}:${p.nonce}:${ha2}`);
}

/** Parses `Digest k=v, k="quoted", …` (auth-params, RFC 2617 §3.2.2). Null if not Digest or malformed. */
export function parseDigest(value: string): Record<string, string> | null {
  const m = /^\s*Digest\s+/i.exec(value);
  if (!m) return null;
  const out: Record<string, string> = {};
  let s = value.slice(m[0].length);
  const re = /^\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/;
  while (s.trim() !== '') {
    const p = re.exec(s);
    if (!p) return null;
    const key = (p[1] as string).toLowerCase();
    if (Object.hasOwn(out, key)) return null; // a repeated directive is ambiguous
    out[key] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] as string);
    s = s.slice(p[0].length);
  }
  return out;
}

export type NonceCheck = 'ok' | 'stale' | 'invalid';

export class NonceMint {
  /** Highest nc accepted per nonce, with the nonce's expiry (insertion order = issue order, roughly). */
  private readonly seen = new Map<string, { nc: number; expires: number }>();

  constructor(
    private readonly secret: Buffer,
    readonly ttlMs = 5 * 60_000,
    private readonly maxTracked = 100_000,
  ) {}

  issue(now = Date.now()): string {
    const body = Buffer.alloc(16);
    body.writeBigUInt64BE(BigInt(Math.floor(now)), 0);
    crypto.randomFillSync(body, 8, 8);
    return Buffer.concat([body, this.tag(body)]).toString('base64url');
  }

  check(nonce: string, now = Date.now()): NonceCheck {
    const raw = /^[A-Za-z0-9_-]{43}$/.test(nonce) ? Buffer.from(nonce, 'base64url') : null;
    if (!raw || raw.length !== 32) return 'invalid';
    const body = raw.subarray(0, 16);
    if (!crypto.timingSafeEqual(raw.subarray(16), this.tag(body))) return 'invalid';
    const issued = Number(body.readBigUInt64BE(0));
    if (issued > now + 60_000) return 'invalid'; // from the future (beyond clock skew)
    return now - issued > this.ttlMs ? 'stale' : 'ok';
  }

  /** Records nc for a verified nonce; false if it is not above the last one accepted (a replay). */
  acceptCount(nonce: string, nc: number, now = Date.now()): boolean {
    const e = this.seen.get(nonce);
    if (e && nc <= e.nc) return false;
    if (e) e.nc = nc;
    else {
      if (this.seen.size >= this.maxTracked) this.prune(now);
      this.seen.set(nonce, { nc, expires: now + this.ttlMs + 60_000 });
    }
    return true;
  }

  get tracked(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    for (const [k, e] of this.seen) if (e.expires <= now) this.seen.delete(k);
    // Still full: forget the oldest (their nonces are the nearest to expiry).
    for (const k of this.seen.keys()) {
      if (this.seen.size < this.maxTracked) break;
      this.seen.delete(k);
    }
  }

  private tag(body: Buffer): Buffer {
    return crypto.createHmac('sha256', this.secret).update('switchboard-sip-nonce\0').update(body).digest().subarray(0, 16);
  }
}

export interface DigestRequest {
  method: string;
  /** The Request-URI (for the log only: see verify). */
  uri: string;
  /** Authorization header values of the request. */
  authorizations: string[];
}

export type DigestVerdict = { ok: true; username: string } | { ok: false; stale: boolean; detail: string };

/**
 * Verifies a request's Authorization against `users` (username → HA1 for `realm`). Every path through it
 * for a username we do not know is step for step the path of a known one with a wrong password.
 */
export class DigestVerifier {
  private readonly dummyHa1 = md5(crypto.randomBytes(16).toString('hex'));

  constructor(
    readonly realm: string,
    private readonly users: ReadonlyMap<string, string>,
    readonly nonces: NonceMint,
  ) {}

  /** The WWW-Authenticate value of a fresh challenge. */
  challenge(stale: boolean, now = Date.now()): string {
    return `Digest realm="${this.realm.replace(/["\\]/g, '\\$&')}", nonce="${this.nonces.issue(now)}", algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
  }

  /**
   * RFC 3261 §22.1 / RFC 2617 §3.2.2: `gate` (absent: every attempt is checked) is asked before the comparison and
   * told its outcome — a wrong digest is a failed guess; a stale nonce or a replayed nc with the right digest is not.
   */
  verify(req: DigestRequest, now = Date.now(), gate?: GuessGate): DigestVerdict {
    const creds = req.authorizations.map(parseDigest).find((c) => c !== null && c.realm === this.realm) ?? null;
    if (!creds) return { ok: false, stale: false, detail: req.authorizations.length ? 'no Digest credentials for our realm' : 'no credentials' };
    const { username = '', nonce = '', uri = '', response = '', qop = '', nc = '', cnonce = '' } = creds;
    const algorithm = (creds.algorithm ?? 'MD5').toUpperCase();
    if (algorithm !== 'MD5') return { ok: false, stale: false, detail: `algorithm ${algorithm}` };
    if (qop.toLowerCase() !== 'auth' || !/^[0-9a-fA-F]{8}$/.test(nc) || cnonce === '') return { ok: false, stale: false, detail: 'qop=auth with nc and cnonce required' };
    // RFC 2617 §3.2.2.5 asks the uri to name the Request-URI's resource; deployed UACs differ (sipp sends
    // sip:HOST:PORT for sip:USER@HOST:PORT), so like pjsip we only require a SIP URI and digest over it as sent.
    if (!/^sips?:/i.test(uri)) return { ok: false, stale: false, detail: 'digest uri is not a SIP URI' };
    // Unknown user: the same computation against a dummy HA1, the same comparison, the same outcome.
    const known = this.users.get(username);
    const expected = digestResponse({ ha1: known ?? this.dummyHa1, method: req.method, uri, nonce, qop: 'auth', nc, cnonce });
    const given = /^[0-9a-fA-F]{32}$/.test(response) ? response.toLowerCase() : '0'.repeat(32);
    // Throttled: the same computation, and the answer of a wrong password whatever the digest was.
    const checked = gate?.mayCheck(username) ?? true;
    const match = crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(given)) && known !== undefined && checked;
    const fresh = this.nonces.check(nonce, now);
    if (!checked) return { ok: false, stale: false, detail: 'guessing throttled' };
    if (!match || fresh === 'invalid') {
      gate?.failed(username);
      return { ok: false, stale: false, detail: 'bad credentials' };
    }
    if (fresh === 'stale') return { ok: false, stale: true, detail: 'nonce expired' };
    if (!this.nonces.acceptCount(nonce, Number.parseInt(nc, 16), now)) return { ok: false, stale: false, detail: 'nonce count replayed' };
    gate?.succeeded(username);
    return { ok: true, username };
  }
}

export type DigestAnswer = { ok: true; header: string } | { ok: false; detail: string };

/**
 * The client side (an outbound INVITE challenged with 401/407): the Authorization (or Proxy-Authorization)
 * value answering a `WWW-Authenticate` / `Proxy-Authenticate` challenge. MD5 only; qop=auth when offered (with
 * a fresh cnonce and nc), else the RFC 2069 form; an algorithm or qop we cannot do is refused, not guessed.
 */
export function answerChallenge(challenge: string, c: { username: string; password: string; method: string; uri: string; nc?: number; cnonce?: string }): DigestAnswer {
  const p = parseDigest(challenge);
  if (!p) return { ok: false, detail: 'the challenge is not a Digest challenge' };
  const { realm, nonce } = p;
  if (realm === undefined || !nonce) return { ok: false, detail: 'the challenge has no realm or nonce' };
  const algorithm = (p.algorithm ?? 'MD5').toUpperCase();
  if (algorithm !== 'MD5') return { ok: false, detail: `algorithm ${algorithm} is not supported (MD5 only)` };
  const qops = (p.qop ?? '').split(',').map((q) => q.trim().toLowerCase()).filter((q) => q !== '');
  if (qops.length > 0 && !qops.includes('auth')) return { ok: false, detail: `qop ${qops.join(',')} is not supported (auth only)` };
  const quote = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const ha1 = ha1Of(c.username, realm, c.password);
  const parts = [`username=${quote(c.username)}`, `realm=${quote(realm)}`, `nonce=${quote(nonce)}`, `uri=${quote(c.uri)}`];
  if (qops.length > 0) {
    const nc = (c.nc ?? 1).toString(16).padStart(8, '0');
    const cnonce = c.cnonce ?? crypto.randomBytes(8).toString('hex');
    parts.push(`response=${quote(digestResponse({ ha1, method: c.method, uri: c.uri, nonce, qop: 'auth', nc, cnonce }))}`, 'qop=auth', `nc=${nc}`, `cnonce=${quote(cnonce)}`);
  } else parts.push(`response=${quote(digestResponse({ ha1, method: c.method, uri: c.uri, nonce }))}`);
  parts.push('algorithm=MD5');
  if (p.opaque !== undefined) parts.push(`opaque=${quote(p.opaque)}`);
  return { ok: true, header: `Digest ${parts.join(', ')}` };
}
