/**
 * Vonage signed webhooks: every webhook (and, with `authorization: {type:
 * 'vonage'}` on the NCCO's websocket endpoint, the media socket's opening
 * handshake) carries `Authorization: Bearer <JWT>`, HS256-signed with the
 * account's signature secret (VONAGE_SIGNATURE_SECRET). Its claims include
 * `iat`, `jti` and, for a request with a body, `payload_hash` — the hex sha256
 * of the body as sent.
 *
 * Checked here, failing closed:
 *  - the algorithm is pinned to HS256 (`alg: none`, HS384/512, RS256 key
 *    confusion are all refused) and the signature must verify;
 *  - `iat` must be present, not in the future (beyond CLOCK_SKEW_S) and not
 *    older than MAX_AGE_S; `exp`/`nbf` are honoured when present;
 *  - `jti` must be present and unseen: a replayed token is refused (the
 *    replay cache keeps each jti for as long as its token could still pass;
 *    the edge then claims it durably through the store — ingress/webhook-nonces.ts —
 *    so a replay after a restart is refused too);
 *  - `payload_hash`, when the request has a body, must be present and equal
 *    the sha256 of the raw body bytes (a signed token cannot be reused with a
 *    different body).
 * Every refusal is a 403, as the contract says for unsigned or wrongly signed
 * provider requests.
 *
 * Why `jsonwebtoken` and not `@vonage/jwt`: `verifySignature()` of
 * @vonage/jwt 1.14 only returns a boolean and accepts `['RS256', 'HS256']`, so
 * it neither pins the algorithm nor yields the claims (payload_hash, jti) we
 * must check; it is itself a thin wrapper over `jsonwebtoken.verify`, which is
 * used here directly with `algorithms: ['HS256']`. It is imported on first
 * use, not at start (`loadJsonwebtoken`, awaited by the adapter before its
 * first check and called in the background once the gateway listens); a check
 * before it is in fails closed (403).
 */
import { createHash } from 'node:crypto';
import type jsonwebtokenType from 'jsonwebtoken';

type Jsonwebtoken = typeof jsonwebtokenType;
let jsonwebtoken: Jsonwebtoken | null = null;
let loading: Promise<Jsonwebtoken> | null = null;

/** Imports jsonwebtoken once (later calls share the promise); a failed import is retried by the next call. */
export function loadJsonwebtoken(): Promise<Jsonwebtoken> {
  loading ??= import('jsonwebtoken').then(
    (m) => (jsonwebtoken = (m as unknown as { default: Jsonwebtoken }).default), // CommonJS: its exports are `default`
    (err: unknown) => {
      loading = null;
      throw err;
    },
  );
  return loading;
}

/** Oldest `iat` accepted (Vonage signs when it sends; retries are re-signed). */
export const MAX_AGE_S = 300;
/** Tolerated clock difference between Vonage and this node. */
export const CLOCK_SKEW_S = 60;

export type JwtVerdict =
  | { ok: true; bypassed: false; claims: VonageClaims }
  | { ok: true; bypassed: true }
  | { ok: false; status: 403; reason: string };

export interface VonageClaims {
  jti: string;
  iat: number;
  payload_hash?: string;
  application_id?: string;
  api_key?: string;
  [k: string]: unknown;
}

export interface JwtPolicy {
  /** VONAGE_SIGNATURE_SECRET; undefined = not configured. */
  secret: string | undefined;
  /** Development profile: unsigned traffic passes (with a warning) when no secret is configured. */
  allowUnsigned: boolean;
}

/** Remembers accepted `jti`s until their tokens could no longer pass the age check. */
export class ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records `jti` (valid until `untilMs`); false if it was already seen. */
  claim(jti: string, untilMs: number): boolean {
    const now = this.now();
    if (this.seen.size >= this.maxEntries) this.sweep(now);
    const prev = this.seen.get(jti);
    if (prev !== undefined && prev >= now) return false;
    // Still full of live entries: refuse rather than forget one (it could then be replayed).
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(jti, untilMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    for (const [jti, until] of this.seen) if (until < now) this.seen.delete(jti);
  }
}

/** Until when a token's `jti` must be remembered: long enough that the token fails the age check once forgotten (ms). */
export function replayWindowEnd(claims: Pick<VonageClaims, 'iat'>): number {
  return (claims.iat + MAX_AGE_S + 2 * CLOCK_SKEW_S) * 1000;
}

export function sha256Hex(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

/**
 * Verifies a Vonage-signed request. `body` is the raw body (null or empty for
 * GET and the WebSocket handshake). Consumes the token's `jti` on success.
 * With a secret configured, `loadJsonwebtoken()` must have resolved first.
 */
export function verifyVonageRequest(
  policy: JwtPolicy,
  authorization: string | string[] | undefined,
  body: Uint8Array | null,
  replay: ReplayCache,
  nowMs: number = Date.now(),
): JwtVerdict {
  if (!policy.secret) {
    return policy.allowUnsigned ? { ok: true, bypassed: true } : { ok: false, status: 403, reason: 'VONAGE_SIGNATURE_SECRET is not configured' };
  }
  const token = bearerToken(authorization);
  if (!token) return { ok: false, status: 403, reason: 'missing or malformed Authorization: Bearer <JWT>' };
  if (!jsonwebtoken) return { ok: false, status: 403, reason: 'the JWT library is not loaded yet (await loadJsonwebtoken())' };
  let claims: VonageClaims;
  try {
    const decoded = jsonwebtoken.verify(token, policy.secret, {
      algorithms: ['HS256'],
      maxAge: MAX_AGE_S,
      clockTolerance: CLOCK_SKEW_S,
      clockTimestamp: Math.floor(nowMs / 1000),
    });
    if (typeof decoded !== 'object' || decoded === null) return { ok: false, status: 403, reason: 'JWT payload is not an object' };
    claims = decoded as VonageClaims;
  } catch (err) {
    return { ok: false, status: 403, reason: `JWT refused: ${(err as Error).message}` };
  }
  if (typeof claims.iat !== 'number') return { ok: false, status: 403, reason: 'JWT has no iat' };
  if (claims.iat > nowMs / 1000 + CLOCK_SKEW_S) return { ok: false, status: 403, reason: 'JWT issued in the future' };
  if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 200) return { ok: false, status: 403, reason: 'JWT has no jti' };
  const hasBody = body !== null && body.length > 0;
  if (hasBody || claims.payload_hash !== undefined) {
    if (typeof claims.payload_hash !== 'string') return { ok: false, status: 403, reason: 'JWT has no payload_hash for a request with a body' };
    if (claims.payload_hash.toLowerCase() !== sha256Hex(body ?? new Uint8Array(0))) return { ok: false, status: 403, reason: 'payload_hash does not match the body' };
  }
  if (!replay.claim(claims.jti, replayWindowEnd(claims))) return { ok: false, status: 403, reason: 'JWT replayed (jti already used)' };
  return { ok: true, bypassed: false, claims };
}
