/**
 * Erasure of call content (issue 17; bridge/content-erase.ts does the work):
 *
 *   POST /v1/calls/:id/erase  { reason, reference? }            one call          → 200 { call_id, erased_at, keys }
 *   POST /v1/erasures         { subject, reason, reference? }   every ended call of a caller number
 *                                                               → 200 { subject, erased: [...], refused: [...] }
 *
 * Permission `content:erase` (admin, compliance). Refusals: 409 `legal_hold` (a recording of the call is on hold),
 * 409 `call_active` (not ended yet), 409 `content_erased` (already), 404 `call_not_found`.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, statusForRejection, type ApiContext } from '../context.ts';

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const Why = { reason: z.string().trim().min(1).max(1000), reference: z.string().trim().min(1).max(200).nullable().default(null) };
const EraseBody = z.strictObject(Why);
const SubjectBody = z.strictObject({ subject: z.string().trim().min(2).max(512), ...Why });

export function mountEraseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const eraser = (): NonNullable<ApiContext['eraser']> => {
    if (!ctx.eraser) throw new HttpError(503, 'erasure_unavailable', 'content erasure is not configured on this node');
    return ctx.eraser;
  };

  app.post('/v1/calls/:id/erase', async (req) => {
    const p = authorize(ctx, req, 'content:erase');
    const { id } = parse(IdParam, req.params);
    const body = parse(EraseBody, req.body);
    const r = await eraser().erase(p.tenant, id, { kind: 'request', reason: body.reason, reference: body.reference, caller: p.caller });
    if (!r.ok) throw new HttpError(statusForRejection(r.code), r.code, r.message);
    const row = ctx.store.read(p.tenant).content_erasures.get(id);
    return { call_id: id, erased_at: row?.erased_at ?? null, erased_by: row?.erased_by ?? p.caller, keys: r.keys };
  });

  app.post('/v1/erasures', async (req) => {
    const p = authorize(ctx, req, 'content:erase');
    const body = parse(SubjectBody, req.body);
    const e = eraser();
    const erased: string[] = [];
    const refused: Array<{ call_id: string; code: string; message: string }> = [];
    for (const callId of e.callsOf(p.tenant, body.subject)) {
      if (ctx.store.read(p.tenant).content_erasures.get(callId)) continue;
      const r = await e.erase(p.tenant, callId, { kind: 'request', reason: body.reason, reference: body.reference, caller: p.caller });
      if (r.ok) erased.push(callId);
      else refused.push({ call_id: callId, code: r.code, message: r.message });
    }
    return { subject: body.subject, erased, refused };
  });
}
