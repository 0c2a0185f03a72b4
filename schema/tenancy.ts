/** Tenants and numbers: which tenant, agent and consent policy a number reaches. */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer } from './reducer.ts';
import { DEFAULT_POLICY } from './consent.ts';
import { ProviderName } from './tables.ts';

/** E.164 or a SIP URI / user part. */
export const NumberSchema = z
  .string()
  .regex(/^(\+[1-9]\d{1,14}|sips?:[^\s]{1,250}|[A-Za-z0-9._~-]{1,64})$/, 'expected an E.164 number (+15551234567) or a SIP URI');

/**
 * What a newcomer most often gets wrong when routing a number, checked at the edges (API and CLI) rather than in
 * the reducer so that stored logs replay unchanged: a bare digit string is a valid SIP user part, but as a phone
 * number it is never matched (Twilio and Vonage deliver E.164, `+` and country code). Refused unless the route is
 * explicitly SIP. Returns the problem in words, or null.
 */
export function numberRouteProblem(number: string, provider: string | null | undefined): string | null {
  if (/^\d+$/.test(number) && provider !== 'sip') {
    return `${number} is not an E.164 number: write it with + and the country code (e.g. +${number}), or route it as a SIP user part with provider sip`;
  }
  return null;
}

/**
 * Whether `agent` names something a call can reach in this tenant: a built-in agent or one with a version that is not
 * failed. A number routed elsewhere still answers (with the fallback agent), so this is a warning, not a refusal.
 */
export function agentRouteWarning(agent: string, builtins: readonly string[], versions: readonly { status: string }[]): string | null {
  if (builtins.includes(agent) || versions.some((v) => v.status !== 'failed')) return null;
  return `agent ${agent} is not deployed in this tenant: calls to this number get the default agent until it is (switchboard agents deploy FILE)`;
}

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
    provider: ProviderName.nullable().default(null),
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
