/**
 * Stateless signed tokens, the one format behind the media stream tokens (ingress/stream-tokens.ts) and the WebRTC
 * session tokens (ingress/webrtc/session-token.ts):
 *
 *   <prefix><base64url(JSON claims, with `e`: expiry ms)>.<base64url(HMAC-SHA256 of the body)>
 *
 * The HMAC key is derived (HKDF-SHA256, salt `switchboard`, the use's own `info`) from the data dir's master key,
 * so any node with that key (every node of a cluster; the same node after a restart) checks a token it never issued,
 * and each use has its own key. Nothing secret is in a token. `verify` answers the claims of a genuine, well-formed
 * (the use's zod schema), unexpired token, and null for anything else — without saying which check failed.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';

/** Longer than any token issued here: refused before any work. */
const MAX_TOKEN_LENGTH = 2048;

export class SignedTokens<S extends z.ZodType<{ e: number }>> {
  private readonly key: Buffer;

  /** `info`: the use's HKDF label (e.g. `media-stream-token/v1`); `schema`: its claims, `e` the expiry in ms. */
  constructor(
    masterKey: Buffer,
    info: string,
    readonly prefix: string,
    private readonly schema: S,
    private readonly now: () => number = Date.now,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', masterKey, 'switchboard', info, 32));
  }

  /** The token of `claims` (checked against the schema first: a bug here must not mint an unreadable token). */
  sign(claims: z.infer<S>): string {
    const body = Buffer.from(JSON.stringify(this.schema.parse(claims))).toString('base64url');
    return `${this.prefix}${body}.${this.mac(body)}`;
  }

  /** The claims of a genuine, well-formed, unexpired token; null otherwise. */
  verify(token: string | null | undefined): z.infer<S> | null {
    if (typeof token !== 'string' || !token.startsWith(this.prefix) || token.length > MAX_TOKEN_LENGTH) return null;
    const [body, sig, extra] = token.slice(this.prefix.length).split('.');
    if (!body || !sig || extra !== undefined) return null;
    const want = Buffer.from(this.mac(body));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const parsed = this.schema.safeParse(raw);
    if (!parsed.success || parsed.data.e < this.now()) return null;
    return parsed.data;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
