/**
 * The whole data model (ARCHITECTURE §4) in one place. Every table except
 * `tenants` is tenant-scoped: reducers and the read layer only ever see the
 * rows of the command's / session's tenant. Optional values are `.nullable()`
 * so rows round-trip exactly. Times are ms since epoch, taken from `ctx.now`.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { ProviderName, ROLES, id, text, ts, tsOrNull } from './columns.ts';
import { agent_actions, agent_state, calls, consents, legs, recordings, transcript_segments } from './call-tables.ts';
import { amd_requests } from './amd-requests.ts';
import { agent_pauses, number_fallbacks } from './pause-tables.ts';
import { tool_approvals, tool_policies } from './tool-approval-tables.ts';
import { content_erasures } from './content-tables.ts';
import { recording_pauses, redaction_policies, transcript_redactions } from './pci-tables.ts';
import { answered_by } from './answered-by.ts';
import { turn_decisions } from './turn-taking.ts';
import { provider_accounts } from './provider-account-tables.ts';
import { call_matrices } from './call-matrix.ts';
import { call_supervisions, call_supervision_steps } from './supervision.ts';
import { campaign_attempts, campaign_numbers, campaign_pacing, campaigns, dnc_numbers } from './campaign-tables.ts';

export { CALL_STATES, PROVIDERS, ProviderName, ROLES, type CallState } from './columns.ts';
export { agent_actions, agent_state, calls, consents, legs, recordings, transcript_segments } from './call-tables.ts';

export const tenants = defineTable({
  name: 'tenants',
  primaryKey: 'id',
  tenantScoped: false,
  row: z.object({ id, name: text, created_at: ts }),
});

export const users = defineTable({
  name: 'users',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'email']],
  row: z.object({
    id,
    tenant: id,
    email: z.string().email().max(320),
    role: z.enum(ROLES),
    password_hash: z.string().nullable(),
    disabled: z.boolean(),
    created_at: ts,
  }),
});

export const api_tokens = defineTable({
  name: 'api_tokens',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['token_hash']],
  row: z.object({
    id,
    tenant: id,
    user_id: id,
    name: text,
    token_hash: z.string().length(64),
    created_at: ts,
    expires_at: tsOrNull,
    revoked_at: tsOrNull,
  }),
});

export const numbers = defineTable({
  name: 'numbers',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['number']],
  row: z.object({
    id,
    tenant: id,
    /** E.164 (+15551234567) or a SIP URI user part / URI. */
    number: z.string().min(2).max(256),
    provider: ProviderName.nullable(),
    agent: z.string().min(1).max(100),
    consent_policy_id: id.nullable(),
    created_at: ts,
  }),
});

export const consent_policies = defineTable({
  name: 'consent_policies',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'name', 'version']],
  row: z.object({
    id,
    tenant: id,
    name: z.string().min(1).max(100),
    version: z.number().int().positive(),
    mode: z.enum(['opt-in', 'opt-out', 'notify']),
    disclosure_text: text,
    disclosure_sha256: z.string().length(64).nullable(),
    timeout_ms: z.number().int().positive(),
    retries: z.number().int().nonnegative(),
    on_decline: z.enum(['continue-unrecorded', 'transfer', 'hangup']),
    /** Where `transfer` sends a declining caller (SIP URI or E.164). */
    transfer_target: z.string().max(512).nullable(),
    /** Pause behaviour while recording is paused (PCI, withdrawal). */
    pause_mode: z.enum(['silence', 'skip']),
    /** How long recordings made under this policy are kept. */
    retention_days: z.number().int().nonnegative(),
    /** Stored format: µ-law WAV (cheap at scale), or Ogg/Opus / MP3 through ffmpeg. */
    recording_format: z.enum(['wav', 'ogg', 'mp3']),
    created_at: ts,
  }),
});

export const agent_versions = defineTable({
  name: 'agent_versions',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'name', 'version']],
  indexes: [['tenant', 'name', 'status']],
  row: z.object({
    id,
    tenant: id,
    name: z.string().min(1).max(100),
    /** v1, v2, … per name, assigned by the reducer. */
    version: z.string().min(1).max(100),
    sha256: z.string().length(64),
    rollout: z.number().min(0).max(100),
    /** Move in-flight calls to this version at their next turn boundary. */
    migrate: z.boolean(),
    status: z.enum(['deploying', 'live', 'failed', 'retired', 'rolled_back']),
    error: z.string().max(2000).nullable(),
    created_at: ts,
    updated_at: ts,
  }),
});

export const access_log = defineTable({
  name: 'access_log',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'at'], ['call_id']],
  row: z.object({
    id,
    tenant: id,
    user_id: id,
    action: z.enum(['recording_accessed', 'transcript_accessed', 'evidence_exported']),
    call_id: id,
    target_id: id,
    /** What was served: a format (wav, ogg, vtt …) and, for recordings, the byte range. */
    detail: z.string().max(200).nullable(),
    /** The purpose the user gave (X-Switchboard-Purpose header or ?purpose=). */
    reason: z.string().max(1000).nullable(),
    remote: z.string().max(200).nullable(),
    at: ts,
  }),
});

/** Failed logins per user; a user is locked out for a while after too many. */
export const login_lockouts = defineTable({
  name: 'login_lockouts',
  primaryKey: 'user_id',
  tenantScoped: true,
  row: z.object({
    user_id: id,
    tenant: id,
    failures: z.number().int().nonnegative(),
    last_failure_at: tsOrNull,
    locked_until: tsOrNull,
  }),
});

/**
 * Nonces of signed provider webhooks already accepted (Vonage JWT `jti`), kept
 * until the request could no longer pass verification: a replay is refused
 * even across a restart. Not tenant-scoped (see schema/webhook-nonces.ts).
 */
export const webhook_nonces = defineTable({
  name: 'webhook_nonces',
  primaryKey: 'id',
  tenantScoped: false,
  indexes: [['expires_at']],
  row: z.object({
    /** `provider:nonce`. */
    id: z.string().min(1).max(220),
    provider: ProviderName,
    expires_at: ts,
    claimed_at: ts,
  }),
});

/**
 * The gateway nodes sharing the log (cluster mode; one row in embedded mode), and the lease each holds on the
 * calls it owns (schema/nodes.ts). A call's owner is `calls.owner_node`; its lease is its owner's `lease_until`,
 * so one heartbeat per node renews every lease it holds. Not tenant-scoped: a node serves every tenant.
 */
export const NODE_STATES = ['alive', 'draining', 'lost', 'stopped'] as const;
export type NodeState = (typeof NODE_STATES)[number];
export const nodes = defineTable({
  name: 'nodes',
  primaryKey: 'id',
  tenantScoped: false,
  row: z.object({
    /** The node's name (SWITCHBOARD_NODE / SWITCHBOARD_NODE_ID), as on its commands. */
    id: z.string().min(1).max(200),
    state: z.enum(NODE_STATES),
    /** The gateway's version (package.json) that last renewed. */
    version: z.string().max(100),
    /** The command time of this process's first heartbeat. */
    started_at: ts,
    last_heartbeat_at: ts,
    lease_ms: z.number().int().positive().nullable(),
    /** Its calls' lease: until then no other node may take them; null = no expiry (embedded: the only node). */
    lease_until: tsOrNull,
    /** Set while draining: after it, its live calls are left to be taken over. */
    drain_until: tsOrNull,
    /** When (and why) it was last marked lost or stopped. */
    down_at: tsOrNull,
    down_reason: z.string().max(200).nullable(),
  }),
});

/**
 * The cluster's log level (schema/log-level.ts): one row, id 'cluster', written only by `log_level_raised`; absent
 * (an older log, or before the first raise) means level 1. Not tenant-scoped: one level for the whole log.
 */
export const log_levels = defineTable({
  name: 'log_levels',
  primaryKey: 'id',
  tenantScoped: false,
  row: z.object({
    id: z.string().min(1).max(20),
    level: z.number().int().positive(),
    /** The command time, node and seq of the `log_level_raised` that set it. */
    raised_at: ts,
    raised_by: z.string().min(1).max(200),
    raised_seq: z.number().int().positive(),
  }),
});

export { agent_pauses, number_fallbacks } from './pause-tables.ts';
export { answered_by } from './answered-by.ts';
export { turn_decisions } from './turn-taking.ts';
export { call_matrices } from './call-matrix.ts';
export { call_supervisions, call_supervision_steps } from './supervision.ts';

export const tables = {
  tenants,
  users,
  api_tokens,
  numbers,
  consent_policies,
  calls,
  amd_requests,
  legs,
  consents,
  recordings,
  transcript_segments,
  agent_actions,
  agent_state,
  agent_versions,
  access_log,
  login_lockouts,
  webhook_nonces,
  nodes,
  log_levels,
  agent_pauses,
  number_fallbacks,
  tool_policies,
  tool_approvals,
  content_erasures,
  recording_pauses,
  redaction_policies,
  transcript_redactions,
  answered_by,
  campaigns,
  campaign_numbers,
  campaign_attempts,
  campaign_pacing,
  dnc_numbers,
  turn_decisions,
  provider_accounts,
  call_matrices,
  call_supervisions,
  call_supervision_steps,
};
export type SwitchboardTables = typeof tables;
