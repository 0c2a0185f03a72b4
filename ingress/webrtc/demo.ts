/**
 * The newcomer's first call: a built-in number `demo`, routed to the `default`
 * agent under an opt-in consent policy, created once at first start. A WebRTC
 * offer without `?to=` (the softphone's default) dials it, so `npm start` and
 * `/phone` give a complete call — disclosure, "say yes or press 1", recording,
 * transcript, agent — without owning a phone number.
 *
 * Both commands carry fixed ids: a restart does not re-create them, and an
 * operator who removes the number (`DELETE /v1/numbers/:id`) keeps it removed.
 * `SWITCHBOARD_WEBRTC_DEMO=off` skips it on a fresh data dir.
 */
import type { IngressRecords, IngressStore } from '../port.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

export const DEMO_NUMBER = 'demo';
export const DEMO_TENANT = 'default';
export const DEMO_POLICY = {
  name: 'webrtc-demo',
  mode: 'opt-in' as const,
  disclosure_text: 'Welcome to the Switchboard demo. This call is recorded and transcribed. To agree, say yes or press 1. To decline, say no or press 2.',
  timeout_ms: 8000,
  retries: 1,
  on_decline: 'continue-unrecorded' as const,
};

export async function ensureDemoNumber(store: IngressStore, records: IngressRecords): Promise<{ created: boolean; reason?: string }> {
  const read = store.read(DEMO_TENANT);
  if (!read.tenants.get(DEMO_TENANT)) return { created: false, reason: `no tenant ${DEMO_TENANT}` };
  if (store.read(null).numbers.findOne({ number: DEMO_NUMBER })) return { created: false };
  const who = { tenant: DEMO_TENANT, caller: 'system:bootstrap' };
  const policy = await records.submit(consent_policy_created, DEMO_POLICY, { ...who, id: 'bootstrap:webrtc:demo-policy' });
  const existing = read.consent_policies.find({ name: DEMO_POLICY.name }, { orderBy: 'version', desc: true, limit: 1 })[0];
  const policyId = policy.outcome.ok ? policy.outcome.result.policy_id : existing?.id;
  if (!policyId) return { created: false, reason: policy.outcome.ok ? 'no policy' : policy.outcome.error.message };
  const added = await records.submit(number_added, { number: DEMO_NUMBER, agent: 'default', provider: 'webrtc', consent_policy_id: policyId }, { ...who, id: 'bootstrap:webrtc:demo-number' });
  if (!added.outcome.ok) return { created: false, reason: added.outcome.error.message };
  return { created: !added.duplicate };
}
