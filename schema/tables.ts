/**
 * The whole data model (ARCHITECTURE §4) in one place. Every table except
 * `tenants` is tenant-scoped: reducers and the read layer only ever see the
 * rows of the command's / session's tenant. Optional values are `.nullable()`
 * so rows round-trip exactly. Times are ms since epoch, taken from `ctx.now`.
 */
import { z } from 'zod';
import { amd_requests } from './amd-requests.ts';
import { defineTable } from '../store/index.ts';
import { agent_pauses, number_fallbacks } from './pause-tables.ts';
import { tool_approvals, tool_policies } from './tool-approval-tables.ts';
import { content_erasures } from './content-tables.ts';
import { recording_pauses, redaction_policies, transcript_redactions } from './pci-tables.ts';
import { answered_by } from './answered-by.ts';
import { turn_decisions } from './turn-taking.ts';
import { provider_accounts } from './provider-account-tables.ts';
import { call_matrices } from './call-matrix.ts';
import { campaign_attempts, campaign_numbers, campaign_pacing, campaigns, dnc_numbers } from './campaign-tables.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const tsOrNull = ts.nullable();
const text = z.string().max(10_000);

export const CALL_STATES = ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming', 'ended'] as const;
export type CallState = (typeof CALL_STATES)[number];
export const ROLES = ['admin', 'compliance', 'auditor', 'developer'] as const;
/** The built-in ingress adapters (ingress/adapters.ts), as data: the default set the API accepts for a number. */
export const PROVIDERS = ['twilio', 'vonage', 'sip', 'webrtc'] as const;
/**
 * A call's (or a number's) provider: the name of the ingress adapter it came through. Any name of the adapters'
 * pattern (ingress/port.ts ADAPTER_NAME) is valid data, not only the built-in four: a new adapter needs no schema
 * edit. A pattern rather than a list registered at start keeps reducers a function of the log alone: a replay
 * on a node that does not mount some adapter still accepts its calls. Which names a user may give a number is
 * the API's check, against the adapters this gateway mounts.
 */
export const ProviderName = z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, 'a provider (ingress adapter) name: a lowercase letter, then letters, digits or -');

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

export const calls = defineTable({
  name: 'calls',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'state'], ['tenant', 'received_at']],
  unique: [['provider', 'provider_call_id']],
  row: z.object({
    id,
    tenant: id,
    provider: ProviderName,
    provider_call_id: z.string().min(1).max(256),
    number_id: id.nullable(),
    from_uri: z.string().max(512),
    to_uri: z.string().max(512),
    direction: z.enum(['inbound', 'outbound']),
    state: z.enum(CALL_STATES),
    /** The live state a `resuming` call returns to. */
    resume_state: z.enum(CALL_STATES).nullable(),
    owner_node: z.string().nullable(),
    agent: z.string().nullable(),
    agent_version: z.string().nullable(),
    consent_id: id.nullable(),
    /** Count of media connections (a resume opens a new one). */
    media_epoch: z.number().int().nonnegative(),
    received_at: ts,
    answered_at: tsOrNull,
    active_at: tsOrNull,
    ended_at: tsOrNull,
    end_reason: z.string().max(200).nullable(),
    /** Where a blind transfer sends the caller (set on `transferring`). */
    transfer_target: z.string().max(512).nullable(),
    /** SIP: the signalling transport the call used (`call_security_recorded`); null = not SIP, or before it was recorded. */
    transport: z.enum(['udp', 'tcp', 'tls']).nullable(),
    /** The media encryption the call used (`call_security_recorded`); null = not recorded. */
    media_encryption: z.enum(['none', 'srtp']).nullable(),
    updated_at: ts,
  }),
});

export const legs = defineTable({
  name: 'legs',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    kind: z.enum(['caller', 'agent', 'human', 'supervisor']),
    provider: ProviderName,
    media_session: z.string().max(256).nullable(),
    codec: z.string().max(32).nullable(),
    sample_rate: z.number().int().positive().nullable(),
    state: z.enum(['connected', 'disconnected']),
    /** Provider-neutral resume data (e.g. SIP dialog: Call-ID, tags, CSeq, route set, RTP port). */
    resume: z.record(z.string(), z.unknown()).nullable(),
    connected_at: ts,
    disconnected_at: tsOrNull,
    disconnect_reason: z.string().max(200).nullable(),
  }),
});

export const consents = defineTable({
  name: 'consents',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    policy_id: id,
    policy_version: z.number().int().positive(),
    disclosure_sha256: z.string().length(64).nullable(),
    mode: z.enum(['opt-in', 'opt-out', 'notify']),
    method: z.enum(['dtmf', 'speech', 'implied']).nullable(),
    outcome: z.enum(['pending', 'granted', 'declined', 'no_response', 'withdrawn']),
    evidence: z.record(z.string(), z.unknown()).nullable(),
    started_at: ts,
    decided_at: tsOrNull,
  }),
});

export const recordings = defineTable({
  name: 'recordings',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id'], ['status', 'retention_until']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    consent_id: id,
    status: z.enum(['recording', 'paused', 'finalizing', 'finalized', 'failed', 'purged']),
    channels: z.number().int().min(1).max(2),
    format: z.string().max(32),
    uri: z.string().max(1024).nullable(),
    bytes: z.number().int().nonnegative().nullable(),
    sha256: z.string().length(64).nullable(),
    key_id: z.string().max(200).nullable(),
    duration_ms: z.number().int().nonnegative().nullable(),
    failure: z.string().max(1000).nullable(),
    segments: z.array(z.record(z.string(), z.unknown())),
    gaps: z.array(z.record(z.string(), z.unknown())),
    pauses: z.array(z.record(z.string(), z.unknown())),
    started_at: ts,
    finalized_at: tsOrNull,
    retention_until: tsOrNull,
    legal_hold: z.boolean(),
    purged_at: tsOrNull,
  }),
});

export const transcript_segments = defineTable({
  name: 'transcript_segments',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id', 'start_ms']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    recording_id: id.nullable(),
    channel: z.enum(['caller', 'agent']),
    start_ms: z.number().int().nonnegative(),
    end_ms: z.number().int().nonnegative(),
    /** Sealed with the call's content key (schema/content.ts); '' once erased. */
    text: z.string().max(64_000),
    confidence: z.number().min(0).max(1).nullable(),
    provider: z.string().max(64),
    created_at: ts,
  }),
});

export const agent_actions = defineTable({
  name: 'agent_actions',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  unique: [['call_id', 'request_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    kind: z.enum(['say', 'tool', 'transfer', 'hangup', 'note']),
    request_id: z.string().min(1).max(200),
    status: z.enum(['requested', 'succeeded', 'failed']),
    args: z.unknown().nullable(),
    result: z.unknown().nullable(),
    created_at: ts,
    completed_at: tsOrNull,
  }),
});

export const agent_state = defineTable({
  name: 'agent_state',
  primaryKey: 'call_id',
  tenantScoped: true,
  row: z.object({
    call_id: id,
    tenant: id,
    agent: z.string().max(100),
    version: z.string().max(100),
    turn: z.number().int().nonnegative(),
    state: z.record(z.string(), z.unknown()),
    updated_at: ts,
  }),
});

/**
 * Deployed agent code, content-addressed (sha256 of the bundle). Per name, the
 * newest `live` version takes `rollout` % of new calls and the previous `live`
 * one the rest; `retired` versions serve only the calls pinned to them.
 */
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
};
export type SwitchboardTables = typeof tables;
