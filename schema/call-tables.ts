/**
 * The tables of one call (ARCHITECTURE §4): the call, its media legs, its consent, recordings, transcript, the
 * agent's actions and saved state. Tenant-scoped like every table but `tenants`; part of `tables` in
 * schema/tables.ts. Content columns (transcript text, action args/results, agent state, consent evidence) hold
 * values sealed with the call's key (schema/content.ts).
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { CALL_STATES, ProviderName, id, text, ts, tsOrNull } from './columns.ts';

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
