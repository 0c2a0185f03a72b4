/**
 * Replay protection for signed provider webhooks that carry a nonce (Vonage's
 * JWT `jti`), durable across restarts: the edge claims `provider:nonce` through
 * the store before it acts on a webhook, and a second claim of a nonce whose
 * token could still pass the signature's age check is refused (→ 403).
 *
 * The table is not tenant-scoped (a webhook is authenticated before its tenant
 * is known); commands are submitted under the operator tenant. Expired rows
 * are purged opportunistically by every claim — at most PURGE_BATCH of the
 * oldest, only those already expired at `ctx.now` — so the table stays about
 * as large as the number of tokens still inside their validity window, with
 * no timer and nothing non-deterministic.
 */
import { z } from 'zod';
import { defineReducer } from './reducer.ts';
import { ProviderName } from './tables.ts';

/** Expired rows deleted by one claim, at most (bounded work per command). */
export const NONCE_PURGE_BATCH = 32;

export const webhook_nonce_claimed = defineReducer(
  'webhook_nonce_claimed',
  z.object({
    provider: ProviderName,
    /** The provider's one-time value (Vonage: the JWT `jti`). */
    nonce: z.string().min(1).max(200),
    /** ms since epoch after which the signed request could no longer pass verification anyway. */
    expires_at: z.number().int().nonnegative(),
  }),
  (ctx, a) => {
    // Purge first: a re-used nonce whose row has expired is then simply claimed again.
    let purged = 0;
    for (const row of ctx.db.webhook_nonces.find({}, { orderBy: 'expires_at', limit: NONCE_PURGE_BATCH })) {
      if (row.expires_at > ctx.now) break;
      if (ctx.db.webhook_nonces.delete(row.id)) purged++;
    }
    if (a.expires_at <= ctx.now) return ctx.fail('nonce_expired', `${a.provider} nonce already expired`);
    const id = `${a.provider}:${a.nonce}`;
    const prev = ctx.db.webhook_nonces.get(id);
    if (prev && prev.expires_at > ctx.now) return ctx.fail('nonce_replayed', `${a.provider} nonce ${a.nonce} was already used`);
    if (prev) ctx.db.webhook_nonces.update(id, { expires_at: a.expires_at, claimed_at: ctx.now });
    else ctx.db.webhook_nonces.insert({ id, provider: a.provider, expires_at: a.expires_at, claimed_at: ctx.now });
    return { id, purged };
  },
);

export const webhookNonceReducers = [webhook_nonce_claimed];
