/**
 * Every reducer's typed handle, for callers: `store.submit(call_ended, { call_id, reason }, who)`.
 * The handle carries the reducer's args and result types (store/reducer.ts); its name is only the wire form.
 * Every handle here is submitted by application code (test/unit/project/typed-reducers.test.ts checks it); the
 * retired reducers that only older logs hold (`retired` in schema/index.ts) have no handle here.
 */
export { evidence_exported, recording_accessed, token_created, token_revoked, transcript_accessed, user_created, user_disabled } from './access.ts';
export { agent_deploy_failed, agent_rolled_back, agent_version_deployed, agent_version_live } from './agent-versions.ts';
export { agent_paused, agent_resumed, number_fallback_set } from './agent-pause.ts';
export { agent_action_completed, agent_action_requested, agent_state_saved, agent_turn_started } from './agents.ts';
export { call_dialed } from './calls/outbound.ts';
export { call_amd_requested } from './amd-requests.ts';
export { call_answered, call_ended, call_held, call_media_connected, call_media_lost, call_media_updated, call_received, call_rejected, call_rejections_aggregated, call_resume_requested, call_security_recorded, call_transfer_started, call_unheld } from './calls/reducers.ts';
export { consent_decided, consent_policy_created, consent_started, consent_withdrawn } from './consent.ts';
export { recording_failed, recording_finalized, recording_hold_set, recording_paused, recording_purged, recording_segment_started, recording_started, transcript_appended } from './recording.ts';
export { number_added, number_removed, tenant_created } from './tenancy.ts';
export { webhook_nonce_claimed } from './webhook-nonces.ts';
export { node_drain_started, node_heartbeat, node_stopped } from './nodes.ts';
export { log_level_raised } from './log-level.ts';
export { recording_pause_ended, recording_pause_started, redaction_policy_set, transcript_redacted } from './pci.ts';
export { tool_approval_cancelled, tool_approval_decided, tool_approval_expired, tool_approval_requested, tool_authorized, tool_policy_set } from './tool-approvals.ts';
export { call_content_erased } from './content.ts';
export { call_answered_by } from './answered-by.ts';
export { campaign_attempt_decided, campaign_attempt_dialed, campaign_attempt_finished, campaign_attempt_reconciled, campaign_created, campaign_state_set } from './campaigns.ts';
export { dnc_added, dnc_removed } from './dnc.ts';
export { call_turn_decided } from './turn-taking.ts';
export { provider_account_removed, provider_account_set } from './provider-accounts.ts';
export { call_matrix_set } from './call-matrix.ts';
export { call_supervisor_joined, call_supervisor_mode_set, call_supervisor_left } from './supervision.ts';
