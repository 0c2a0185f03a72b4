/**
 * Consent on a call answered by a machine (bridge/amd-stage.ts): a voicemail box can neither hear a disclosure
 * nor agree to one, so no consent phase runs. The call's consent is recorded as what it is — nobody answered the
 * question — so nothing of the call is recorded or transcribed, while the agent may still leave its message:
 *
 *   consent_started (the number's policy, no disclosure played) ─► consent_decided no_response, implied,
 *                                                                  evidence { answered_by: 'machine', … }
 *
 * The policy's decline action is not applied (its hang-up or transfer is for a person who did not answer; the
 * machine gets the agent's voicemail). A call that already has a decision keeps it.
 */
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { consent_decided, consent_started } from '../schema/reducers.ts';
import { currentDecision, policyFor } from './phase.ts';

export async function recordMachineConsent(store: Store<SwitchboardTables>, tenant: string, callId: string, evidence: Record<string, unknown>): Promise<void> {
  const who = { tenant, caller: 'consent' };
  const current = currentDecision(store, tenant, callId);
  if (current && current.outcome !== 'pending') return;
  let consentId = current?.pendingId ?? null;
  if (!consentId) {
    const policy = policyFor(store, tenant, callId);
    if (!policy) throw new Error(`tenant ${tenant} has no consent policy`);
    const started = await store.submit(consent_started, { call_id: callId, policy_id: policy.id, disclosure_sha256: null }, who);
    if (!started.outcome.ok) throw new Error(`consent_started refused: ${started.outcome.error.code}: ${started.outcome.error.message}`);
    consentId = started.outcome.result.consent_id;
  }
  const decided = await store.submit(consent_decided, { consent_id: consentId, outcome: 'no_response', method: 'implied', evidence: { ...evidence, answered_by: 'machine' } }, who);
  if (!decided.outcome.ok) throw new Error(`consent_decided refused: ${decided.outcome.error.code}: ${decided.outcome.error.message}`);
}
