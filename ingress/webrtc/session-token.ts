/**
 * The WebRTC session token (`X-Switchboard-Resume`): what an anonymous browser
 * holds to come back to its call and to read that one call's live transcript.
 *
 *   sbw_<base64url(JSON {v, t: tenant, c: call id, s: session, e: expiry ms})>.<base64url(HMAC-SHA256)>
 *
 * Stateless on purpose (ingress/signed-token.ts): a gateway restarted after `kill -9` (or another node)
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
import { z } from 'zod';
import { SignedTokens } from '../signed-token.ts';

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
  private readonly tokens: SignedTokens<typeof Claims>;

  constructor(
    masterKey: Buffer,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = TOKEN_TTL_MS,
  ) {
    this.tokens = new SignedTokens(masterKey, 'webrtc-session-token/v1', TOKEN_PREFIX, Claims, now);
  }

  issue(c: Omit<SessionClaims, 'expiresAt'>): string {
    return this.tokens.sign({ v: 1, t: c.tenant, c: c.callId, s: c.session, e: this.now() + this.ttlMs });
  }

  /** The claims of a genuine, unexpired token; null otherwise. */
  verify(token: string | null | undefined): SessionClaims | null {
    const c = this.tokens.verify(token);
    return c ? { tenant: c.t, callId: c.c, session: c.s, expiresAt: c.e } : null;
  }
}
