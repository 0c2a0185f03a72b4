/**
 * Table `provider_accounts`: a tenant's provider accounts set through the API, sealed (schema/provider-accounts.ts
 * has the reducers and the design). Not subscribable; read by the ingress adapters and the API only.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

export const Provider = z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, 'an adapter name');
export const Numbers = z.array(z.string().min(2).max(256)).min(1).max(1000).nullable();

export const provider_accounts = defineTable({
  name: 'provider_accounts',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'provider']],
  row: z.object({
    id: z.string().min(1).max(200),
    tenant: z.string().min(1).max(200),
    provider: Provider,
    /** The from-numbers it places calls for; null: every number of the tenant on that provider. */
    numbers: Numbers,
    /** The credentials, sealed under the master key (base64 of iv ‖ tag ‖ ciphertext; ingress/account-seal.ts). */
    sealed: z.string().min(1).max(65_536),
    /** The master key's id it was sealed under. */
    key_id: z.string().max(64),
    /** What may be shown: the non-secret fields (account SID, application id, trunk), secrets as `set`. */
    summary: z.record(z.string(), z.string().max(512)),
    set_by: z.string().max(200),
    set_at: z.number().int().nonnegative(),
  }),
});
