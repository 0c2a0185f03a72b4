/**
 * Media stream tokens: a webhook answer names the stream URL and hands the
 * provider a token (Twilio `<Parameter>`, Vonage header); the media connection
 * must present it once, before it expires. Stateless, so that ANY node can
 * check it: a provider's media connection may reach another node than the one
 * that answered its webhook (HAProxy balances by `leastconn`, and after a
 * node's death the webhook and the media land wherever the balancer sends them).
 *
 *   sbm_<base64url(JSON {v, t: tenant, c: call id, p: provider call id, m: media epoch, n: nonce, e: expiry ms})>.<base64url(HMAC-SHA256)>
 *
 * The HMAC key is derived (HKDF, info `media-stream-token/v1`; the format is ingress/signed-token.ts's) from the
 * recording master key, which `switchboard cluster up` (or the operator) gives
 * every node: a token issued on one node verifies on every other, and after a
 * restart. Nothing secret is in the token.
 *
 *   issue ─► token (epoch = the call's media_epoch now)
 *   consume ─► signature + expiry ─► claim the nonce in the log ─► the call's media_epoch still the token's ─► grant
 *              (refused: forged, expired, used,       (webhook_nonce_claimed,     (a connection was accepted since:
 *               superseded on this node)               one-time on every node)     every older token is void)
 *
 * One-time use holds across nodes and restarts: the token's nonce is claimed
 * through the store (ingress/webhook-nonces.ts, table `webhook_nonces`), so a
 * second use — here, on another node, after a restart — is refused. The claim
 * is also what makes the epoch check sound on a node whose replica lags: once
 * this node's own claim is applied, so is every command committed before it
 * (read-your-writes), among them the answering node's `call_received`.
 *
 * One outstanding token per call, where it still makes sense:
 *  - on the issuing node, asked again for a call whose token was handed out a
 *    moment ago and not used yet (a provider's retry of the same webhook),
 *    `issue()` answers the same token; later, a new token revokes the call's
 *    unused one (in this node's memory);
 *  - on every node, a token is valid only for the call's next media
 *    connection: it carries the call's `media_epoch` at issue, and once any
 *    connection was accepted (`call_media_connected` raises the epoch) every
 *    token issued before is void. Two nodes answering one webhook's retries
 *    may each hand out a token; whichever connection is accepted first voids
 *    the other, and the log's ownership rules (schema/nodes.ts) settle a race.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { loadOrCreateMasterKey } from '../recording/master-key.ts';
import type { IngressHost } from './port.ts';
import { SignedTokens } from './signed-token.ts';
import { WebhookNonces, type NonceVerdict } from './webhook-nonces.ts';

export const STREAM_TOKEN_PREFIX = 'sbm_';

export interface StreamGrant {
  tenant: string;
  callId: string;
  /** The provider's id of the call (Twilio CallSid, Vonage uuid): the stream must name the same call. */
  providerCallId: string;
  /** The provider's session the media joins, when the media connection does not name it (Vonage's conversation). */
  session?: string;
  expiresAt: number;
}

/** How long a just-issued unused token is answered again instead of a new one: the provider connects within a second or two. */
export const PENDING_MS = 5_000;
/** How long a token is honoured after it was issued. */
export const STREAM_TOKEN_TTL_MS = 60_000;

export interface StreamTokenDeps {
  /** The recording master key's bytes (cluster-wide: every node has the same). */
  masterKey: Buffer;
  /** Claims a token's nonce in the log (ingress/webhook-nonces.ts): one use, on every node. */
  nonces: { claim(nonce: string, expiresAtMs: number): Promise<NonceVerdict> };
  /** The call's row as this node has applied it (media_epoch, state), or undefined. */
  call(callId: string): { media_epoch: number; state: string } | undefined;
  ttlMs?: number;
  now?: () => number;
}

export type ConsumeVerdict = { ok: true; grant: StreamGrant } | { ok: false; reason: string; /** the store could not be asked: a retry may pass */ unavailable: boolean };

const Claims = z.object({
  v: z.literal(1),
  t: z.string().min(1).max(100),
  c: z.string().min(1).max(200),
  p: z.string().min(1).max(200),
  m: z.number().int().nonnegative(),
  n: z.string().min(1).max(64),
  e: z.number().int().positive(),
  s: z.string().min(1).max(200).optional(),
});
type TokenClaims = z.infer<typeof Claims>;

interface Issued {
  token: string;
  tenant: string;
  providerCallId: string;
  epoch: number;
  issuedAt: number;
  expiresAt: number;
}

export class StreamTokens {
  private readonly tokens: SignedTokens<typeof Claims>;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** callId → its one outstanding token issued here. */
  private readonly byCall = new Map<string, Issued>();
  /** Tokens issued here and revoked by a newer one for the same call (until they expire anyway). */
  private readonly revoked = new Map<string, number>();

  constructor(private readonly deps: StreamTokenDeps) {
    this.ttlMs = deps.ttlMs ?? STREAM_TOKEN_TTL_MS;
    this.now = deps.now ?? Date.now;
    this.tokens = new SignedTokens(deps.masterKey, 'media-stream-token/v1', STREAM_TOKEN_PREFIX, Claims, this.now);
  }

  /** The call's token: the unused one issued here less than `PENDING_MS` ago, else a fresh one (revoking any older). */
  issue(grant: Omit<StreamGrant, 'expiresAt'>): string {
    this.sweep();
    const now = this.now();
    const epoch = this.deps.call(grant.callId)?.media_epoch ?? 0;
    const current = this.byCall.get(grant.callId);
    if (current && current.providerCallId === grant.providerCallId && current.tenant === grant.tenant && current.epoch === epoch && now - current.issuedAt < PENDING_MS) return current.token;
    if (current) this.revoked.set(current.token, current.expiresAt);
    const expiresAt = now + this.ttlMs;
    const claims: TokenClaims = { v: 1, t: grant.tenant, c: grant.callId, p: grant.providerCallId, m: epoch, n: crypto.randomBytes(16).toString('base64url'), e: expiresAt, ...(grant.session ? { s: grant.session } : {}) };
    const token = this.tokens.sign(claims);
    this.byCall.set(grant.callId, { token, tenant: grant.tenant, providerCallId: grant.providerCallId, epoch, issuedAt: now, expiresAt });
    return token;
  }

  /** The claims of a genuine, unexpired token (nothing claimed, nothing read); null otherwise. */
  verify(token: string | null | undefined): TokenClaims | null {
    return this.tokens.verify(token);
  }

  /** Checks and uses up `token` (see the header): the grant, or why it is refused. */
  async consume(token: string | undefined): Promise<ConsumeVerdict> {
    const refuse = (reason: string, unavailable = false): ConsumeVerdict => ({ ok: false, reason, unavailable });
    const c = this.verify(token);
    if (!c) return refuse('invalid or expired token');
    if (this.revoked.has(token!)) return refuse('token superseded by a newer one for the call');
    const mine = this.byCall.get(c.c);
    if (mine?.token === token) this.byCall.delete(c.c);
    const claimed = await this.deps.nonces.claim(`stream:${c.n}`, c.e);
    if (!claimed.ok) return refuse(claimed.status === 503 ? claimed.reason : 'token already used', claimed.status === 503);
    const call = this.deps.call(c.c);
    if (!call || call.state === 'ended') return refuse('the call is not live');
    if (call.media_epoch !== c.m) return refuse(`the call's media moved on since the token was issued (epoch ${c.m}, now ${call.media_epoch})`);
    return { ok: true, grant: { tenant: c.t, callId: c.c, providerCallId: c.p, expiresAt: c.e, ...(c.s ? { session: c.s } : {}) } };
  }

  private sweep(): void {
    const now = this.now();
    for (const [callId, g] of this.byCall) if (g.expiresAt < now) this.byCall.delete(callId);
    for (const [token, exp] of this.revoked) if (exp < now) this.revoked.delete(token);
  }
}

/** An adapter's tokens: keyed from the data dir's master key, nonces claimed under `provider`, calls read from the host's store. */
export function streamTokensFor(host: IngressHost, provider: string): StreamTokens {
  return new StreamTokens({
    masterKey: loadOrCreateMasterKey(host.dataDir).key,
    nonces: new WebhookNonces(host.records, provider),
    call: (callId) => host.store.read(null).calls.get(callId),
  });
}
