/**
 * `GET /v1/calls` (filters, transcript search, cursor pages) and
 * `GET /v1/calls/:id` (one timeline). Reads go through `CallQueries`, bound
 * to the principal's tenant: another tenant's call is a 404.
 *
 * Content rules: searching transcript text (`q`) needs `content:read`; a
 * call's detail includes transcript text and agent action payloads only for
 * roles with `content:read`, and then it is a retrieval like any other — a
 * `transcript_accessed` row is committed before it is sent.
 */
import { openDetail } from '../queries/content-open.ts';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { can } from '../../schema/index.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { CallFilterSchema, CallQueries } from '../queries/calls.ts';
import { transcript_accessed } from '../../schema/reducers.ts';

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const DetailQuery = z.strictObject({ purpose: z.string().min(1).max(1000).optional() });

export function mountCallRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/calls', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const filter = parse(CallFilterSchema, req.query);
    if (filter.q !== undefined && !can(p.role, 'content:read')) throw new HttpError(403, 'forbidden', `role ${p.role} may not search transcript text`);
    return new CallQueries(ctx.store, p.tenant).list(filter, { content: can(p.role, 'content:read') });
  });

  app.get('/v1/calls/:id', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const { id } = parse(IdParam, req.params);
    const q = parse(DetailQuery, req.query);
    const content = can(p.role, 'content:read');
    const detail = new CallQueries(ctx.store, p.tenant).detail(id, { content });
    if (!detail) throw new HttpError(404, 'call_not_found', `no call ${id}`);
    if (content) {
      const header = req.headers['x-switchboard-purpose'];
      await submitAs(ctx, p, transcript_accessed, { call_id: id, detail: 'call detail', purpose: (typeof header === 'string' ? header : q.purpose)?.slice(0, 1000) ?? null, remote: req.ip });
    }
    return openDetail(ctx.content, ctx.store, p.tenant, detail);
  });
}
