/**
 * PCI pause and PII redaction facts (tables in schema/pci-tables.ts). What is *kept out* of the store is decided in
 * the bridge (bridge/pci-pause.ts, speech/redact.ts); these rows say that it was, never what:
 *
 *   recording_pause_started  (agent: ctx.secure / ctx.pauseRecording; user: POST …/recording/pause, console)
 *     a `recording_pauses` row; the call's live recording row → `paused` with the interval opened
 *       └─► recording_pause_ended   the row closed (who, when, how long); the recording back to `recording`
 *           unless the consent is no longer granted (a withdrawal's pause outlives it)
 *   redaction_policy_set     which kinds a consent policy's transcripts are redacted of (policies:write)
 *   transcript_redacted      counts per kind for one stored segment (never the values)
 *
 * A user pausing needs `recording:pause` (schema/permissions.ts); an agent acts for its own call.
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { loadCall } from './calls/lifecycle.ts';
import { RedactionKind } from './pci-tables.ts';
import { defineReducer, type Ctx } from './reducer.ts';

const id = z.string().min(1).max(200);
const ms = z.number().int().nonnegative();

export type RecordingPauseRow = NonNullable<ReturnType<Ctx['db']['recording_pauses']['get']>>;

function openPause(ctx: Ctx, callId: string): RecordingPauseRow | undefined {
  return ctx.db.recording_pauses.find({ call_id: callId, resumed_at: null }, { limit: 1 })[0];
}

function pauseMode(ctx: Ctx, consentId: string | null): 'silence' | 'skip' {
  const consent = consentId ? ctx.db.consents.get(consentId) : undefined;
  return (consent ? ctx.db.consent_policies.get(consent.policy_id)?.pause_mode : undefined) ?? 'silence';
}

export const recording_pause_started = defineReducer(
  'recording_pause_started',
  z.object({ call_id: id, reason: z.string().min(1).max(200).default('pci'), start_ms: ms }),
  (ctx, a) => {
    requireCaller(ctx, 'recording:pause');
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const open = openPause(ctx, call.id);
    if (open) return { pause_id: open.id, existing: true };
    const mode = pauseMode(ctx, call.consent_id);
    const rec = ctx.db.recordings.find({ call_id: call.id, status: ['recording', 'paused'] })[0];
    if (rec?.status === 'recording') {
      ctx.db.recordings.update(rec.id, { status: 'paused', pauses: [...rec.pauses, { start_ms: a.start_ms, end_ms: null, reason: a.reason, mode }] });
    }
    const pauseId = ctx.newId('rpause');
    const byKind = ctx.caller.startsWith('agent:') ? 'agent' : ctx.caller.startsWith('user:') ? 'user' : 'system';
    ctx.db.recording_pauses.insert({
      id: pauseId,
      tenant: ctx.tenant,
      call_id: call.id,
      recording_id: rec?.id ?? null,
      reason: a.reason,
      by_kind: byKind,
      paused_by: ctx.caller,
      mode,
      start_ms: a.start_ms,
      end_ms: null,
      paused_at: ctx.now,
      resumed_at: null,
      resumed_by: null,
      duration_ms: null,
    });
    return { pause_id: pauseId, existing: false };
  },
);

export const recording_pause_ended = defineReducer('recording_pause_ended', z.object({ call_id: id, end_ms: ms }), (ctx, a) => {
  requireCaller(ctx, 'recording:pause');
  const call = loadCall(ctx, a.call_id);
  const open = openPause(ctx, call.id);
  if (!open) return ctx.fail('not_paused', `call ${call.id} has no open recording pause`);
  const endMs = Math.max(open.start_ms, a.end_ms);
  ctx.db.recording_pauses.update(open.id, { end_ms: endMs, resumed_at: ctx.now, resumed_by: ctx.caller, duration_ms: Math.max(0, ctx.now - open.paused_at) });
  const rec = ctx.db.recordings.find({ call_id: call.id, status: ['recording', 'paused'] })[0];
  const consent = call.consent_id ? ctx.db.consents.get(call.consent_id) : undefined;
  if (rec?.status === 'paused' && consent?.outcome === 'granted') {
    const pauses = rec.pauses.map((p) => (p['end_ms'] === null && p['reason'] === open.reason ? { ...p, end_ms: endMs } : p));
    ctx.db.recordings.update(rec.id, { status: 'recording', pauses });
  }
  return { pause_id: open.id, duration_ms: Math.max(0, ctx.now - open.paused_at) };
});

export const redaction_policy_set = defineReducer(
  'redaction_policy_set',
  z.object({ policy_name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/), kinds: z.array(RedactionKind).max(20), agent_sees: z.enum(['redacted', 'raw']).default('redacted') }),
  (ctx, a) => {
    requireCaller(ctx, 'policies:write');
    const key = `${ctx.tenant}:${a.policy_name}`;
    const row = { tenant: ctx.tenant, policy_name: a.policy_name, kinds: [...new Set(a.kinds)].sort(), agent_sees: a.agent_sees, set_by: ctx.caller, set_at: ctx.now };
    if (ctx.db.redaction_policies.get(key)) ctx.db.redaction_policies.update(key, row);
    else ctx.db.redaction_policies.insert({ id: key, ...row });
    return { policy_name: a.policy_name, kinds: row.kinds, agent_sees: a.agent_sees };
  },
);

export const transcript_redacted = defineReducer(
  'transcript_redacted',
  z.object({ call_id: id, segment_id: id.nullable(), channel: z.enum(['caller', 'agent']), start_ms: ms, counts: z.record(RedactionKind, z.number().int().positive()) }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const rowId = ctx.newId('redact');
    ctx.db.transcript_redactions.insert({ id: rowId, tenant: ctx.tenant, call_id: call.id, segment_id: a.segment_id, channel: a.channel, start_ms: a.start_ms, counts: a.counts, created_at: ctx.now });
    return { redaction_id: rowId };
  },
);

export const pciReducers = [recording_pause_started, recording_pause_ended, redaction_policy_set, transcript_redacted];
