/**
 * The WebRTC session token (`X-Switchboard-Resume`): what an anonymous browser
 * holds to come back to its call and to read that one call's live transcript.
 *
 *   sbw_<base64url(JSON {v, t: tenant, c: call id, s: session, e: expiry ms})>.<base64url(HMAC-SHA256)>
 *
 * Stateless on purpose: a gateway restarted after `kill -9` (or another node)
 * checks it without any memory of issuing it. The HMAC key is derived (HKDF)
 * from the data dir's master key, so it is as durable and as protected as the
 * recordings' key, and separate from it in use. Nothing secret is in the
 * token: the session id is already the capability in the `Location` URL.
 *
 * What it grants, and only while it is unexpired: re-attaching a new peer
 * connection to *that* call while the call is not ended, and a read-only
 * subscription to that call's row, its consent and its transcript segments
 * (see api/subscribe.ts scoped grants). Never any other call, never the API.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const TOKEN_PREFIX = 'sbw_';
/** How long a session token is honoured after it was issued. */
export const TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

const Claims = z.object({
  v: z.literal(1),
  t: z.string().min(1).max(100),
  c: z.string().min(1).max(200),
  s: z.string().min(1).max(256),
  e: z.number().int().positive(),
});

export interface SessionClaims {
  tenant: string;
  callId: string;
  session: string;
  expiresAt: number;
}

export class SessionTokens {
  private readonly key: Buffer;

  constructor(
    masterKey: Buffer,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = TOKEN_TTL_MS,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', masterKey, 'switchboard', 'webrtc-session-token/v1', 32));
  }

  issue(c: Omit<SessionClaims, 'expiresAt'>): string {
    const body = Buffer.from(JSON.stringify({ v: 1, t: c.tenant, c: c.callId, s: c.session, e: this.now() + this.ttlMs })).toString('base64url');
    return `${TOKEN_PREFIX}${body}.${this.sign(body)}`;
  }

  /** The claims of a genuine, unexpired token; null otherwise. */
  verify(token: string | null | undefined): SessionClaims | null {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 2048) return null;
    const [body, sig, extra] = token.slice(TOKEN_PREFIX.length).split('.');
    if (!body || !sig || extra !== undefined) return null;
    const want = Buffer.from(this.sign(body));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const parsed = Claims.safeParse(raw);
    if (!parsed.success || parsed.data.e < this.now()) return null;
    return { tenant: parsed.data.t, callId: parsed.data.c, session: parsed.data.s, expiresAt: parsed.data.e };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
