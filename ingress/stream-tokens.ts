/**
 * One-time media tokens: a webhook answer names the stream URL and hands the
 * provider a token (Twilio `<Parameter>`, Vonage header, WebRTC resume header);
 * the media connection must present it once, before it expires. In memory on
 * purpose: after a restart the provider's resume fetches a fresh one.
 */
import crypto from 'node:crypto';

export interface StreamGrant {
  tenant: string;
  callId: string;
  providerCallId: string;
  expiresAt: number;
}

export class StreamTokens {
  private readonly grants = new Map<string, StreamGrant>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  issue(grant: Omit<StreamGrant, 'expiresAt'>): string {
    this.sweep();
    const token = crypto.randomBytes(24).toString('base64url');
    this.grants.set(token, { ...grant, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** Returns the grant and forgets the token; null if unknown, used or expired. */
  consume(token: string | undefined): StreamGrant | null {
    if (!token) return null;
    const grant = this.grants.get(token);
    if (!grant) return null;
    this.grants.delete(token);
    return grant.expiresAt >= this.now() ? grant : null;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, g] of this.grants) if (g.expiresAt < now) this.grants.delete(token);
  }
}
