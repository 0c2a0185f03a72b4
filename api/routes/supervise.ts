/**
 * A supervisor in a live call (issue 16; bridge/supervisor-desk.ts, bridge/supervisor.ts):
 *
 *   POST   /v1/calls/:id/supervise              {sdp}            supervisor → 201 {supervision_id, leg_id, mode, sdp}
 *          the browser's SDP offer (Opus, all candidates, as `POST /webrtc/offer` takes); `sdp` is the answer
 *   POST   /v1/calls/:id/supervise/:sid/mode    {mode}           supervisor → {supervision_id, mode, changed}
 *          mode: listen | whisper | takeover (listen after takeover is the hand-back)
 *   DELETE /v1/calls/:id/supervise/:sid                          supervisor → {supervision_id, mode}
 *   GET    /v1/calls/:id/supervisions                            calls:read → every supervision of the call, with its steps
 *
 * 403 without `supervisor` (nothing is written); 404 call_not_found / supervision_not_found; 409 call_ended,
 * call_not_live_here (the call's media is on another node: join through that node), supervisor_busy,
 * transfer_in_progress, supervision_ended; 400 invalid_sdp; 503 webrtc_unavailable.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DeskError, type SupervisorDesk } from '../../bridge/supervisor-desk.ts';
import { SUPERVISOR_MODES } from '../../schema/supervision.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, type ApiContext } from '../context.ts';
import { iso } from './time.ts';

const CallParam = z.strictObject({ id: z.string().min(1).max(200) });
const SupParam = z.strictObject({ id: z.string().min(1).max(200), sid: z.string().min(1).max(200) });
const JoinBody = z.strictObject({ sdp: z.string().min(1).max(64 * 1024) });
const ModeBody = z.strictObject({ mode: z.enum(SUPERVISOR_MODES) });

async function desk<T>(ctx: ApiContext, run: (d: SupervisorDesk) => Promise<T>): Promise<T> {
  if (!ctx.supervise) throw new HttpError(503, 'supervision_unavailable', 'supervision is not ready on this node');
  try {
    return await run(ctx.supervise);
  } catch (err) {
    if (err instanceof DeskError) throw new HttpError(err.status, err.code, err.message);
    throw err;
  }
}

export function mountSuperviseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/calls/:id/supervise', async (req, reply) => {
    const p = authorize(ctx, req, 'supervisor');
    const { id } = parse(CallParam, req.params);
    const { sdp } = parse(JoinBody, req.body);
    const joined = await desk(ctx, (d) => d.join(p, id, sdp));
    return reply.code(201).header('Cache-Control', 'no-store').send(joined);
  });

  app.post('/v1/calls/:id/supervise/:sid/mode', async (req) => {
    const p = authorize(ctx, req, 'supervisor');
    const { id, sid } = parse(SupParam, req.params);
    const { mode } = parse(ModeBody, req.body);
    return desk(ctx, (d) => d.mode(p, id, sid, mode));
  });

  app.delete('/v1/calls/:id/supervise/:sid', async (req) => {
    const p = authorize(ctx, req, 'supervisor');
    const { id, sid } = parse(SupParam, req.params);
    return desk(ctx, (d) => d.leave(p, id, sid));
  });

  app.get('/v1/calls/:id/supervisions', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const { id } = parse(CallParam, req.params);
    const read = ctx.store.read(p.tenant);
    if (!read.calls.get(id)) throw new HttpError(404, 'call_not_found', 'no such call');
    const steps = read.call_supervision_steps.find({ call_id: id }).sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    const supervisions = read.call_supervisions
      .find({ call_id: id })
      .sort((a, b) => a.joined_at - b.joined_at)
      .map((s) => ({
        id: s.id,
        leg_id: s.leg_id,
        supervisor: s.supervisor,
        mode: s.mode,
        state: s.state,
        joined_at: iso(s.joined_at),
        left_at: s.left_at === null ? null : iso(s.left_at),
        left_reason: s.left_reason,
        steps: steps.filter((x) => x.supervision_id === s.id).map((x) => ({ step: x.step, mode: x.mode, by: x.by, at: iso(x.at), reason: x.reason })),
      }));
    return { supervisions };
  });
}
