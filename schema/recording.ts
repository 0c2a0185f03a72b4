/**
 * Recording and transcript facts. `recording_started` and `transcript_appended`
 * refuse with `consent_required` unless the call's
 * current consent is `granted` — enforced here, in the store, whatever the
 * call flow does. Purges keep the row and its sha256; legal hold blocks them.
 *
 *   recording ─► paused ⇄ recording ─► finalizing ─► finalized ─► purged
 *        └──────────────┴──────────────────► failed
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { loadCall } from './calls/lifecycle.ts';
import { requireConsent } from './consent.ts';
import { logLevel } from './log-level.ts';
import { defineReducer, type Ctx } from './reducer.ts';

const id = z.string().min(1).max(200);
const json = z.record(z.string(), z.unknown());
const DAY_MS = 86_400_000;

function loadRecording(ctx: Ctx, recordingId: string) {
  const rec = ctx.db.recordings.get(recordingId);
  if (!rec) return ctx.fail('recording_not_found', `no recording ${recordingId}`);
  return rec;
}

export const recording_started = defineReducer(
  'recording_started',
  z.object({ call_id: id, channels: z.number().int().min(1).max(2).default(2), format: z.enum(['wav', 'ogg', 'mp3']).nullable().default(null) }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    requireConsent(ctx, call, 'recording');
    const live = ctx.db.recordings.find({ call_id: call.id, status: ['recording', 'paused'] });
    if (live.length > 0) return { recording_id: live[0]!.id, existing: true };
    const consent = ctx.db.consents.get(call.consent_id ?? '');
    const policy = consent ? ctx.db.consent_policies.get(consent.policy_id) : undefined;
    const recordingId = ctx.newId('rec');
    ctx.db.recordings.insert({
      id: recordingId,
      tenant: ctx.tenant,
      call_id: call.id,
      consent_id: call.consent_id ?? '',
      status: 'recording',
      channels: a.channels,
      format: a.format ?? policy?.recording_format ?? 'wav',
      uri: null,
      bytes: null,
      sha256: null,
      key_id: null,
      duration_ms: null,
      failure: null,
      segments: [],
      gaps: [],
      pauses: [],
      started_at: ctx.now,
      finalized_at: null,
      retention_until: ctx.now + (policy?.retention_days ?? 2555) * DAY_MS,
      legal_hold: false,
      purged_at: null,
    });
    return { recording_id: recordingId, existing: false };
  },
);

/**
 * A resumed call (new media after a crash or drop) writes a new segment; the hole is a gap. After a failover the
 * gap names the node whose media was lost (`node`; optional: older logs have none and replay unchanged; kept from log
 * level 2 on, schema/log-level.ts).
 */
export const recording_segment_started = defineReducer(
  'recording_segment_started',
  z.object({
    recording_id: id,
    index: z.number().int().nonnegative(),
    gap: z.object({ start_ms: z.number().int().nonnegative(), end_ms: z.number().int().nonnegative(), node: z.string().min(1).max(200).optional() }).nullable().default(null),
  }),
  (ctx, a) => {
    const rec = loadRecording(ctx, a.recording_id);
    if (rec.status !== 'recording' && rec.status !== 'paused') ctx.fail('recording_closed', `recording ${rec.id} is ${rec.status}`);
    // Level 2 (schema/log-level.ts): before it, a build that did not know `node` dropped it, so every node does.
    const gap = a.gap && logLevel(ctx) < 2 ? { start_ms: a.gap.start_ms, end_ms: a.gap.end_ms } : a.gap;
    const gaps = gap && gap.end_ms > gap.start_ms ? [...rec.gaps, gap] : rec.gaps;
    ctx.db.recordings.update(rec.id, { gaps, segments: [...rec.segments, { index: a.index, started_at: ctx.now }] });
  },
);

export const recording_paused = defineReducer(
  'recording_paused',
  z.object({ recording_id: id, at_ms: z.number().int().nonnegative(), reason: z.string().min(1).max(200), mode: z.enum(['silence', 'skip']) }),
  (ctx, a) => {
    const rec = loadRecording(ctx, a.recording_id);
    if (rec.status !== 'recording') ctx.fail('not_recording', `recording ${rec.id} is ${rec.status}`);
    ctx.db.recordings.update(rec.id, { status: 'paused', pauses: [...rec.pauses, { start_ms: a.at_ms, end_ms: null, reason: a.reason, mode: a.mode }] });
  },
);

export const recording_finalized = defineReducer(
  'recording_finalized',
  z.object({
    recording_id: id,
    uri: z.string().min(1).max(1024),
    bytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    key_id: z.string().min(1).max(200),
    format: z.enum(['wav', 'ogg', 'mp3']),
    duration_ms: z.number().int().nonnegative(),
    segments: z.array(json),
    gaps: z.array(json),
    pauses: z.array(json),
  }),
  (ctx, a) => {
    const rec = loadRecording(ctx, a.recording_id);
    if (!['recording', 'paused', 'finalizing'].includes(rec.status)) ctx.fail('recording_closed', `recording ${rec.id} is ${rec.status}`);
    ctx.db.recordings.update(rec.id, {
      status: 'finalized',
      uri: a.uri,
      bytes: a.bytes,
      sha256: a.sha256,
      key_id: a.key_id,
      format: a.format,
      duration_ms: a.duration_ms,
      segments: a.segments,
      gaps: a.gaps,
      pauses: a.pauses,
      finalized_at: ctx.now,
    });
  },
);

export const recording_failed = defineReducer('recording_failed', z.object({ recording_id: id, reason: z.string().min(1).max(1000) }), (ctx, a) => {
  const rec = loadRecording(ctx, a.recording_id);
  if (rec.status === 'finalized' || rec.status === 'purged') ctx.fail('recording_closed', `recording ${rec.id} is ${rec.status}`);
  ctx.db.recordings.update(rec.id, { status: 'failed', failure: a.reason });
});

export const recording_hold_set = defineReducer('recording_hold_set', z.object({ recording_id: id, hold: z.boolean() }), (ctx, a) => {
  requireCaller(ctx, 'holds:write');
  const rec = loadRecording(ctx, a.recording_id);
  if (rec.status === 'purged' && a.hold) ctx.fail('recording_purged', `recording ${rec.id} was purged`);
  ctx.db.recordings.update(rec.id, { legal_hold: a.hold });
  return { legal_hold: a.hold };
});

/** Media deleted past retention; the row, its sha256 and every event about it stay. */
export const recording_purged = defineReducer('recording_purged', z.object({ recording_id: id }), (ctx, a) => {
  const rec = loadRecording(ctx, a.recording_id);
  if (rec.legal_hold) ctx.fail('legal_hold', `recording ${rec.id} is under legal hold`);
  if (rec.status === 'purged') ctx.fail('recording_purged', `recording ${rec.id} was purged already`);
  if (rec.retention_until !== null && rec.retention_until > ctx.now) ctx.fail('retention_not_reached', `recording ${rec.id} is retained until ${rec.retention_until}`);
  ctx.db.recordings.update(rec.id, { status: 'purged', uri: null, purged_at: ctx.now });
});

export const transcript_appended = defineReducer(
  'transcript_appended',
  z.object({
    call_id: id,
    channel: z.enum(['caller', 'agent']),
    start_ms: z.number().int().nonnegative(),
    end_ms: z.number().int().nonnegative(),
    /** Sealed (schema/content.ts): the ciphertext of up to ~10,000 characters of text. */
    text: z.string().min(1).max(64_000),
    confidence: z.number().min(0).max(1).nullable().default(null),
    provider: z.string().min(1).max(64),
  }),
  (ctx, a) => {
    if (a.end_ms < a.start_ms) ctx.fail('invalid_segment', 'end_ms before start_ms');
    const call = loadCall(ctx, a.call_id);
    requireConsent(ctx, call, 'transcript');
    const recording = ctx.db.recordings.find({ call_id: call.id }, { orderBy: 'started_at', desc: true, limit: 1 })[0];
    const segmentId = ctx.newId('seg');
    ctx.db.transcript_segments.insert({
      id: segmentId,
      tenant: ctx.tenant,
      call_id: call.id,
      recording_id: recording?.id ?? null,
      channel: a.channel,
      start_ms: a.start_ms,
      end_ms: a.end_ms,
      text: a.text,
      confidence: a.confidence,
      provider: a.provider,
      created_at: ctx.now,
    });
    return { segment_id: segmentId };
  },
);

export const recordingReducers = [
  recording_started,
  recording_segment_started,
  recording_paused,
  recording_finalized,
  recording_failed,
  recording_hold_set,
  recording_purged,
  transcript_appended,
];
