/**
 * The redaction policy of one call (schema/pci-tables.ts `redaction_policies`, keyed by the name of the consent
 * policy the call's consent was taken under), and applying it to a transcript segment before it is stored:
 *
 *   call ─► consent ─► consent policy name ─► redaction_policies[tenant:name] ─► kinds, agent_sees   (none: no
 *   redaction, as before this existed)
 *   text ─► speech/redact.ts redact(kinds) ─► transcript_appended {redacted text} ─► transcript_redacted {counts}
 */
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { CallRef } from './call-context.ts';

export interface RedactionPolicy {
  kinds: readonly string[];
  agentSees: 'redacted' | 'raw';
}

export function redactionPolicy(store: Store<SwitchboardTables>, ref: CallRef): RedactionPolicy | null {
  const view = store.read(ref.tenant);
  const consentId = view.calls.get(ref.callId)?.consent_id;
  const consent = consentId ? view.consents.get(consentId) : undefined;
  const name = consent ? view.consent_policies.get(consent.policy_id)?.name : undefined;
  const row = name ? view.redaction_policies.get(`${ref.tenant}:${name}`) : undefined;
  return row && row.kinds.length > 0 ? { kinds: row.kinds, agentSees: row.agent_sees } : null;
}
