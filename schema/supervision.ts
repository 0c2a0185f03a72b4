/**
 * A supervisor in a live call (issue 16): listen, whisper, take over. One `call_supervisions` row per time a user
 * joined a call (its mode now, whether it is still on), and one `call_supervision_steps` row per join, mode change
 * and leave — the audit of who listened to, whispered into or took over which call, and when. Who could then hear
 * whom is the call's matrix row (schema/call-matrix.ts), written beside each step by bridge/supervisor.ts.
 *
 *   call_supervisor_joined {call_id, provider, …media}  (permission `supervisor`)
 *     ─► a `legs` row (kind supervisor), a supervision (mode listen, active), a step `join`
 *     ─► refused: call_not_found · call_ended · call_not_live (still ringing) · supervisor_busy (one at a time)
 *   call_supervisor_mode_set {call_id, supervision_id, mode}   (permission `supervisor`)
 *     ─► the supervision's mode, a step `mode` (the same mode again: no step, `changed: false`)
 *   call_supervisor_left {call_id, supervision_id, reason}     (permission `supervisor`, or the media: the leg closed)
 *   (every command names the call, so each is among the call's events and in its proof: GET /v1/calls/:id/events)
 *     ─► the supervision ends, its leg row is disconnected, a step `leave`; a second leave: supervision_ended
 *
 * A user caller (`user:…`) needs `supervisor` (schema/permissions.ts): a refusal writes nothing. The gateway itself
 * (the supervisor's media closed, the call ended) may end a supervision.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { requireCaller } from './access.ts';
import { ProviderName } from './columns.ts';
import { loadCall } from './calls/lifecycle.ts';
import { defineReducer, type Ctx } from './reducer.ts';

export const SUPERVISOR_MODES = ['listen', 'whisper', 'takeover'] as const;
export type SupervisorMode = (typeof SUPERVISOR_MODES)[number];

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const reason = z.string().min(1).max(200);

export const call_supervisions = defineTable({
  name: 'call_supervisions',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id'], ['call_id', 'state']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    /** The supervisor's `legs` row (kind supervisor). */
    leg_id: id,
    /** Who joined (`user:…`). */
    supervisor: z.string().min(1).max(200),
    mode: z.enum(SUPERVISOR_MODES),
    state: z.enum(['active', 'left']),
    joined_at: ts,
    changed_at: ts,
    left_at: ts.nullable(),
    left_reason: z.string().max(200).nullable(),
  }),
});

export const call_supervision_steps = defineTable({
  name: 'call_supervision_steps',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id'], ['supervision_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    supervision_id: id,
    step: z.enum(['join', 'mode', 'leave']),
    /** The mode from this step on (a leave keeps the mode it left from). */
    mode: z.enum(SUPERVISOR_MODES),
    by: z.string().min(1).max(200),
    at: ts,
    reason: z.string().max(200).nullable(),
  }),
});

export type SupervisionRow = NonNullable<ReturnType<Ctx['db']['call_supervisions']['get']>>;

function step(ctx: Ctx, s: SupervisionRow, kind: 'join' | 'mode' | 'leave', mode: SupervisorMode, why: string | null): void {
  ctx.db.call_supervision_steps.insert({ id: ctx.newId('sst'), tenant: ctx.tenant, call_id: s.call_id, supervision_id: s.id, step: kind, mode, by: ctx.caller, at: ctx.now, reason: why });
}

function loadActive(ctx: Ctx, callId: string, supervisionId: string): SupervisionRow {
  const s = ctx.db.call_supervisions.get(supervisionId);
  if (!s || s.call_id !== callId) return ctx.fail('supervision_not_found', `call ${callId} has no supervision ${supervisionId}`);
  if (s.state !== 'active') return ctx.fail('supervision_ended', `supervision ${s.id} has ended (${s.left_reason ?? 'left'})`);
  return s;
}

export const call_supervisor_joined = defineReducer(
  'call_supervisor_joined',
  z.object({
    call_id: id,
    provider: ProviderName,
    media_session: z.string().max(256).nullable().default(null),
    codec: z.string().max(32).nullable().default(null),
    sample_rate: z.number().int().positive().nullable().default(null),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'supervisor');
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    if (call.state === 'ringing') ctx.fail('call_not_live', `call ${call.id} is not answered yet`);
    const busy = ctx.db.call_supervisions.find({ call_id: call.id, state: 'active' })[0];
    if (busy) ctx.fail('supervisor_busy', `call ${call.id} is supervised already (by ${busy.supervisor})`);
    const legId = ctx.newId('leg');
    ctx.db.legs.insert({
      id: legId,
      tenant: ctx.tenant,
      call_id: call.id,
      kind: 'supervisor',
      provider: a.provider,
      media_session: a.media_session,
      codec: a.codec,
      sample_rate: a.sample_rate,
      state: 'connected',
      resume: null,
      connected_at: ctx.now,
      disconnected_at: null,
      disconnect_reason: null,
    });
    const row: SupervisionRow = {
      id: ctx.newId('sup'),
      tenant: ctx.tenant,
      call_id: call.id,
      leg_id: legId,
      supervisor: ctx.caller,
      mode: 'listen',
      state: 'active',
      joined_at: ctx.now,
      changed_at: ctx.now,
      left_at: null,
      left_reason: null,
    };
    ctx.db.call_supervisions.insert(row);
    step(ctx, row, 'join', 'listen', null);
    return { supervision_id: row.id, leg_id: legId, mode: row.mode };
  },
);

export const call_supervisor_mode_set = defineReducer('call_supervisor_mode_set', z.object({ call_id: id, supervision_id: id, mode: z.enum(SUPERVISOR_MODES) }), (ctx, a) => {
  requireCaller(ctx, 'supervisor');
  const s = loadActive(ctx, a.call_id, a.supervision_id);
  if (s.mode === a.mode) return { supervision_id: s.id, mode: s.mode, changed: false };
  ctx.db.call_supervisions.update(s.id, { mode: a.mode, changed_at: ctx.now });
  step(ctx, s, 'mode', a.mode, null);
  return { supervision_id: s.id, mode: a.mode, changed: true };
});

export const call_supervisor_left = defineReducer('call_supervisor_left', z.object({ call_id: id, supervision_id: id, reason }), (ctx, a) => {
  requireCaller(ctx, 'supervisor');
  const s = loadActive(ctx, a.call_id, a.supervision_id);
  ctx.db.call_supervisions.update(s.id, { state: 'left', left_at: ctx.now, left_reason: a.reason, changed_at: ctx.now });
  const leg = ctx.db.legs.get(s.leg_id);
  if (leg && leg.state === 'connected') ctx.db.legs.update(leg.id, { state: 'disconnected', disconnected_at: ctx.now, disconnect_reason: a.reason });
  step(ctx, s, 'leave', s.mode, a.reason);
  return { supervision_id: s.id, mode: s.mode };
});

export const supervisionReducers = [call_supervisor_joined, call_supervisor_mode_set, call_supervisor_left];
