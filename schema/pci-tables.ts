/**
 * The tables of PCI pauses and PII redaction (reducers in schema/pci.ts), in their own file so the main table list
 * (tables.ts) only names them:
 *
 *   recording_pauses      one row per pause of a call's recording and transcription (PCI capture): why, who (an
 *                         agent or a user), from when to when on the recording clock and the wall clock, how long
 *   redaction_policies    per consent policy (by name, so every version of it): which kinds of personal data are
 *                         redacted from transcripts before they are stored, and what the agent's turns see
 *   transcript_redactions one row per redacted transcript segment: counts per kind, never the values
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const tsOrNull = ts.nullable();

/** The recognisers built in (speech/redact.ts); a registered plugin may add its own kind names. */
export const BUILTIN_REDACTION_KINDS = ['card', 'ssn', 'iban', 'email', 'phone'] as const;
export const RedactionKind = z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'a redaction kind: lowercase letters, digits, - and _');

export const recording_pauses = defineTable({
  name: 'recording_pauses',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    /** The recording paused with it (null: none was running yet; one started meanwhile starts paused). */
    recording_id: id.nullable(),
    reason: z.string().min(1).max(200),
    /** `agent` (ctx.secure / ctx.pauseRecording) or `user` (the API, the console). */
    by_kind: z.enum(['agent', 'user', 'system']),
    paused_by: z.string().min(1).max(200),
    mode: z.enum(['silence', 'skip']),
    /** On the recording clock (ms since answer). */
    start_ms: z.number().int().nonnegative(),
    end_ms: z.number().int().nonnegative().nullable(),
    paused_at: ts,
    resumed_at: tsOrNull,
    resumed_by: z.string().max(200).nullable(),
    /** Wall-clock length of the pause, set when it ends. */
    duration_ms: z.number().int().nonnegative().nullable(),
  }),
});

export const redaction_policies = defineTable({
  name: 'redaction_policies',
  primaryKey: 'id',
  tenantScoped: true,
  row: z.object({
    /** `<tenant>:<consent policy name>`. */
    id: z.string().min(1).max(320),
    tenant: id,
    policy_name: z.string().min(1).max(100),
    kinds: z.array(RedactionKind),
    /** What the agent's turns (and so an LLM) get as the caller's words: the redacted text, or what was said. */
    agent_sees: z.enum(['redacted', 'raw']),
    set_by: z.string().min(1).max(200),
    set_at: ts,
  }),
});

export const transcript_redactions = defineTable({
  name: 'transcript_redactions',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    segment_id: id.nullable(),
    channel: z.enum(['caller', 'agent']),
    start_ms: z.number().int().nonnegative(),
    /** Kind → how many were redacted in the segment. */
    counts: z.record(z.string(), z.number().int().positive()),
    created_at: ts,
  }),
});
