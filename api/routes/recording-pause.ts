/**
 * PCI pause of a live call's recording and transcription, and PII redaction policies (schema/pci.ts):
 *
 *   POST /v1/calls/:id/recording/pause  {reason?}        recording:pause → the pause row (201; 200 if one was on)
 *   POST /v1/calls/:id/recording/resume                  recording:pause → the closed pause row
 *   GET  /v1/calls/:id/recording/pauses                  calls:read      → every pause of the call (who, why, how long)
 *   GET  /v1/calls/:id/redactions                        calls:read      → per stored segment, counts per kind
 *   PUT  /v1/consent-policies/:name/redaction  {kinds, agent_sees?}  policies:write → the redaction policy
 *   GET  /v1/redaction-policies                          policies:read   → every consent policy's redaction
 *
 * The API writes the row; the node carrying the call's media sees it (bridge/pci-pause.ts, a subscription) and
 * pauses its recorder and transcript, so the route answers on any node.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RecordingPauseRow } from '../../schema/pci.ts';
import { RedactionKind } from '../../schema/pci-tables.ts';
import { recording_pause_ended, recording_pause_started, redaction_policy_set } from '../../schema/reducers.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { iso } from './time.ts';

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const NameParam = z.strictObject({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase policy name: letters, digits, - and _') });
const PauseBody = z.strictObject({ reason: z.string().min(1).max(200).optional() }).optional();
const RedactionBody = z.strictObject({ kinds: z.array(RedactionKind).max(20), agent_sees: z.enum(['redacted', 'raw']).optional() });

/** A pause row as the API shows it. */
export function recordingPauseView(p: RecordingPauseRow): Record<string, unknown> {
  return {
    id: p.id,
    call_id: p.call_id,
    recording_id: p.recording_id,
    reason: p.reason,
    by: p.by_kind,
    paused_by: p.paused_by,
    mode: p.mode,
    start_ms: p.start_ms,
    end_ms: p.end_ms,
    paused_at: iso(p.paused_at),
    resumed_at: p.resumed_at === null ? null : iso(p.resumed_at),
    resumed_by: p.resumed_by,
    duration_ms: p.duration_ms,
  };
}

export function mountRecordingPauseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** Ms since the call was answered (the recording clock), as the API node sees it. */
  const clockMs = (tenant: string, callId: string): number => {
    const call = ctx.store.read(tenant).calls.get(callId);
    if (!call) throw new HttpError(404, 'call_not_found', `no call ${callId}`);
    return Math.max(0, Date.now() - (call.answered_at ?? call.received_at));
  };

  app.post('/v1/calls/:id/recording/pause', async (req, reply) => {
    const p = authorize(ctx, req, 'recording:pause');
    const { id } = parse(IdParam, req.params);
    const body = parse(PauseBody, req.body ?? undefined);
    const r = await submitAs(ctx, p, recording_pause_started, { call_id: id, reason: body?.reason ?? 'pci', start_ms: clockMs(p.tenant, id) });
    return reply.code(r.existing ? 200 : 201).send(recordingPauseView(ctx.store.read(p.tenant).recording_pauses.get(r.pause_id)!));
  });

  app.post('/v1/calls/:id/recording/resume', async (req) => {
    const p = authorize(ctx, req, 'recording:pause');
    const { id } = parse(IdParam, req.params);
    const r = await submitAs(ctx, p, recording_pause_ended, { call_id: id, end_ms: clockMs(p.tenant, id) });
    return recordingPauseView(ctx.store.read(p.tenant).recording_pauses.get(r.pause_id)!);
  });

  app.get('/v1/calls/:id/recording/pauses', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const { id } = parse(IdParam, req.params);
    const view = ctx.store.read(p.tenant);
    if (!view.calls.get(id)) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    return { pauses: view.recording_pauses.find({ call_id: id }, { orderBy: 'paused_at' }).map(recordingPauseView) };
  });

  app.get('/v1/calls/:id/redactions', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const { id } = parse(IdParam, req.params);
    const view = ctx.store.read(p.tenant);
    if (!view.calls.get(id)) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    const rows = view.transcript_redactions.find({ call_id: id }, { orderBy: 'start_ms' });
    return { redactions: rows.map((r) => ({ segment_id: r.segment_id, channel: r.channel, start_ms: r.start_ms, counts: r.counts, at: iso(r.created_at) })) };
  });

  app.put('/v1/consent-policies/:name/redaction', async (req) => {
    const p = authorize(ctx, req, 'policies:write');
    const { name } = parse(NameParam, req.params);
    const body = parse(RedactionBody, req.body);
    return submitAs(ctx, p, redaction_policy_set, { policy_name: name, kinds: body.kinds, agent_sees: body.agent_sees ?? 'redacted' });
  });

  app.get('/v1/redaction-policies', async (req) => {
    const p = authorize(ctx, req, 'policies:read');
    const rows = ctx.store.read(p.tenant).redaction_policies.find({});
    return { policies: rows.map((r) => ({ policy_name: r.policy_name, kinds: r.kinds, agent_sees: r.agent_sees, set_by: r.set_by, set_at: iso(r.set_at) })) };
  });
}
