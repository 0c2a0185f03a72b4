/** Tenants and numbers: which tenant, agent and consent policy a number reaches. */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer } from './reducer.ts';
import { DEFAULT_POLICY } from './consent.ts';
import { PROVIDERS } from './tables.ts';

/** E.164 or a SIP URI / user part. */
export const NumberSchema = z
  .string()
  .regex(/^(\+[1-9]\d{1,14}|sips?:[^\s]{1,250}|[A-Za-z0-9._~-]{1,64})$/, 'expected an E.164 number (+15551234567) or a SIP URI');

export const tenant_created = defineReducer(
  'tenant_created',
  z.object({ id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/), name: z.string().min(1).max(200) }),
  (ctx, a) => {
    if (a.id !== ctx.tenant) ctx.fail('tenant_mismatch', `tenant_created for ${a.id} must be submitted as tenant ${a.id}`);
    if (ctx.db.tenants.get(a.id)) ctx.fail('tenant_exists', `tenant ${a.id} exists`);
    ctx.db.tenants.insert({ id: a.id, name: a.name, created_at: ctx.now });
    // Every tenant starts with the default consent policy, so no call is ever without one.
    const policyId = ctx.newId('pol');
    ctx.db.consent_policies.insert({ id: policyId, tenant: a.id, version: 1, disclosure_sha256: null, created_at: ctx.now, ...DEFAULT_POLICY });
    return { tenant: a.id, default_policy_id: policyId };
  },
);

export const number_added = defineReducer(
  'number_added',
  z.object({
    number: NumberSchema,
    agent: z.string().min(1).max(100),
    provider: z.enum(PROVIDERS).nullable().default(null),
    consent_policy_id: z.string().max(200).nullable().default(null),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'numbers:write');
    if (!ctx.db.tenants.get(ctx.tenant)) ctx.fail('tenant_not_found', `tenant ${ctx.tenant} does not exist`);
    if (ctx.db.numbers.findOne({ number: a.number })) ctx.fail('number_exists', `${a.number} is already routed`);
    if (a.consent_policy_id !== null && !ctx.db.consent_policies.get(a.consent_policy_id)) {
      ctx.fail('consent_policy_not_found', `no consent policy ${a.consent_policy_id}`);
    }
    const id = ctx.newId('num');
    ctx.db.numbers.insert({ id, tenant: ctx.tenant, number: a.number, provider: a.provider, agent: a.agent, consent_policy_id: a.consent_policy_id, created_at: ctx.now });
    return { number_id: id };
  },
);

export const number_removed = defineReducer('number_removed', z.object({ number_id: z.string().min(1).max(200) }), (ctx, a) => {
  requireCaller(ctx, 'numbers:write');
  if (!ctx.db.numbers.delete(a.number_id)) ctx.fail('number_not_found', `no number ${a.number_id}`);
});

export const tenancyReducers = [tenant_created, number_added, number_removed];
