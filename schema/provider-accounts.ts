/**
 * Provider accounts set through the API (`PUT /v1/provider-accounts/:provider`, api/routes/provider-accounts.ts): the
 * credentials a tenant's outbound calls are placed with (table `provider_accounts`, schema/provider-account-tables.ts),
 * one account per tenant and provider, optionally limited to some of its numbers. Preferred over SWITCHBOARD_PROVIDER_ACCOUNTS' entries (ingress/provider-accounts.ts).
 *
 * The secret never enters the log in clear: the API checks the credentials with the provider, then seals them
 * (AES-256-GCM under the master key, ingress/account-seal.ts) before it submits, so events and the table hold the
 * ciphertext (`sealed`), the master key's id and a redacted summary (`summary`: what GET shows) only. Every node of a
 * cluster is given the same master key, so each can open them.
 *
 *   provider_account_set      sets (or replaces) the tenant's account for a provider; needs provider_accounts:write
 *   provider_account_removed  removes it; none set fails with provider_account_not_found
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer } from './reducer.ts';
import { Numbers, Provider } from './provider-account-tables.ts';

export const provider_account_set = defineReducer(
  'provider_account_set',
  z.strictObject({ provider: Provider, numbers: Numbers.default(null), sealed: z.string().min(1).max(65_536), key_id: z.string().max(64), summary: z.record(z.string(), z.string().max(512)) }),
  (ctx, a) => {
    requireCaller(ctx, 'provider_accounts:write');
    const existing = ctx.db.provider_accounts.findOne({ tenant: ctx.tenant, provider: a.provider });
    const row = { numbers: a.numbers, sealed: a.sealed, key_id: a.key_id, summary: a.summary, set_by: ctx.caller, set_at: ctx.now };
    if (existing) {
      ctx.db.provider_accounts.update(existing.id, row);
      return { id: existing.id, replaced: true };
    }
    const id = ctx.newId('pacct');
    ctx.db.provider_accounts.insert({ id, tenant: ctx.tenant, provider: a.provider, ...row });
    return { id, replaced: false };
  },
);

export const provider_account_removed = defineReducer('provider_account_removed', z.strictObject({ provider: Provider }), (ctx, a) => {
  requireCaller(ctx, 'provider_accounts:write');
  const existing = ctx.db.provider_accounts.findOne({ tenant: ctx.tenant, provider: a.provider });
  if (!existing) return ctx.fail('provider_account_not_found', `no ${a.provider} account is set for this tenant`);
  ctx.db.provider_accounts.delete(existing.id);
  return { provider: a.provider };
});

export const providerAccountReducers = [provider_account_set, provider_account_removed];
