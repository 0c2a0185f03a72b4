/**
 * One-time media tokens: a webhook answer names the stream URL and hands the
 * provider a token (Twilio `<Parameter>`, Vonage header); the media connection
 * must present it once, before it expires. In memory on purpose: after a
 * restart the provider's resume fetches a fresh one.
 *
 * One outstanding token per call. Asked again for a call whose token was
 * handed out a moment ago and not used yet (a provider's retry of the same
 * webhook), `issue()` answers the same token: the retry works, and no rival
 * token exists for a second connection to race the provider's. Later, a new
 * token revokes the call's unused one.
 */
import crypto from 'node:crypto';

export interface StreamGrant {
  tenant: string;
  callId: string;
  /** The provider's id of the call (Twilio CallSid, Vonage uuid): the stream must name the same call. */
  providerCallId: string;
  expiresAt: number;
}

interface Issued extends StreamGrant {
  token: string;
  issuedAt: number;
}

/** How long a just-issued unused token is answered again instead of a new one: the provider connects within a second or two. */
export const PENDING_MS = 5_000;

export class StreamTokens {
  private readonly grants = new Map<string, Issued>();
  /** callId → its one outstanding token. */
  private readonly byCall = new Map<string, string>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The call's token: the unused one issued less than `PENDING_MS` ago, else a fresh one (revoking any older). */
  issue(grant: Omit<StreamGrant, 'expiresAt'>): string {
    this.sweep();
    const current = this.outstanding(grant.callId);
    if (current && current.providerCallId === grant.providerCallId && current.tenant === grant.tenant && this.now() - current.issuedAt < PENDING_MS) return current.token;
    this.revoke(grant.callId);
    const token = crypto.randomBytes(24).toString('base64url');
    const now = this.now();
    this.grants.set(token, { ...grant, token, issuedAt: now, expiresAt: now + this.ttlMs });
    this.byCall.set(grant.callId, token);
    return token;
  }

  private outstanding(callId: string): Issued | undefined {
    const token = this.byCall.get(callId);
    return token === undefined ? undefined : this.grants.get(token);
  }

  /** Returns the grant and forgets the token; null if unknown, used, revoked or expired. */
  consume(token: string | undefined): StreamGrant | null {
    if (!token) return null;
    const g = this.grants.get(token);
    if (!g) return null;
    this.forget(g);
    if (g.expiresAt < this.now()) return null;
    return { tenant: g.tenant, callId: g.callId, providerCallId: g.providerCallId, expiresAt: g.expiresAt };
  }

  /** Revokes the call's outstanding token (if any). */
  revoke(callId: string): void {
    const g = this.outstanding(callId);
    if (g) this.forget(g);
    else this.byCall.delete(callId);
  }

  private forget(g: Issued): void {
    this.grants.delete(g.token);
    if (this.byCall.get(g.callId) === g.token) this.byCall.delete(g.callId);
  }

  private sweep(): void {
    const now = this.now();
    for (const g of [...this.grants.values()]) if (g.expiresAt < now) this.forget(g);
  }
}
