/**
 * Pausing agents and the fallbacks their calls get meanwhile (schema/agent-pause.ts, bridge/fallback.ts):
 *
 *   POST /v1/agents/:name/pause   {reason?, keep_live?}   agents:deploy   → the pause row
 *   POST /v1/agents/:name/resume                          agents:deploy   → the closed pause row
 *   GET  /v1/agents/pauses                                agents:read     → every pause, open or closed (audit)
 *   GET  /v1/fallbacks                                    numbers:read    → the tenant default and per-number ones
 *   PUT  /v1/numbers/:id/fallback  {kind, target?, message?}  numbers:write
 *   PUT  /v1/fallback              {kind, target?, message?}  numbers:write  (the tenant's default)
 *
 * A fallback is `agent` (target: another agent), `transfer` (target: SIP URI or E.164; legs that cannot redirect
 * hear the message) or `message` (spoken, then a hang-up; without a message, the default one).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEFAULT_FALLBACK_MESSAGE, FALLBACK_KINDS, type PauseRow } from '../../schema/agent-pause.ts';
import { agent_paused, agent_resumed, number_fallback_set } from '../../schema/reducers.ts';
import { authorize } from '../auth/principal.ts';
import { parse, submitAs, type ApiContext } from '../context.ts';
import { iso } from './time.ts';

const NameParam = z.strictObject({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase agent name: letters, digits, - and _') });
const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const PauseBody = z.strictObject({ reason: z.string().max(500).optional(), keep_live: z.boolean().optional() });
const FallbackBody = z.strictObject({
  kind: z.enum(FALLBACK_KINDS),
  target: z.string().min(1).max(512).optional(),
  message: z.string().min(1).max(1000).optional(),
});

/** A pause row as the API shows it. */
export function pauseView(p: PauseRow): Record<string, unknown> {
  return {
    id: p.id,
    agent: p.agent,
    reason: p.reason,
    keep_live: p.keep_live,
    paused_by: p.paused_by,
    paused_at: iso(p.paused_at),
    resumed_by: p.resumed_by,
    resumed_at: p.resumed_at === null ? null : iso(p.resumed_at),
  };
}

export function mountAgentPauseRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/agents/:name/pause', async (req) => {
    const p = authorize(ctx, req, 'agents:deploy');
    const { name } = parse(NameParam, req.params);
    const body = parse(PauseBody, req.body);
    const r = await submitAs(ctx, p, agent_paused, { agent: name, reason: body.reason ?? '', keep_live: body.keep_live ?? false });
    return pauseView(ctx.store.read(p.tenant).agent_pauses.get(r.pause_id)!);
  });

  app.post('/v1/agents/:name/resume', async (req) => {
    const p = authorize(ctx, req, 'agents:deploy');
    const { name } = parse(NameParam, req.params);
    const r = await submitAs(ctx, p, agent_resumed, { agent: name });
    return pauseView(ctx.store.read(p.tenant).agent_pauses.get(r.pause_id)!);
  });

  app.get('/v1/agents/pauses', async (req) => {
    const p = authorize(ctx, req, 'agents:read');
    return { pauses: ctx.store.read(p.tenant).agent_pauses.find({}, { orderBy: 'paused_at' }).map(pauseView) };
  });

  app.get('/v1/fallbacks', async (req) => {
    const p = authorize(ctx, req, 'numbers:read');
    const view = ctx.store.read(p.tenant);
    return {
      default_message: DEFAULT_FALLBACK_MESSAGE,
      fallbacks: view.number_fallbacks.find({}).map((f) => ({
        number_id: f.number_id,
        number: f.number_id ? (view.numbers.get(f.number_id)?.number ?? null) : null,
        kind: f.kind,
        target: f.target,
        message: f.message,
        set_by: f.set_by,
        set_at: iso(f.set_at),
      })),
    };
  });

  const setFallback = async (p: { tenant: string; caller: string }, numberId: string | null, body: z.output<typeof FallbackBody>): Promise<Record<string, unknown>> => {
    await submitAs(ctx, p, number_fallback_set, { number_id: numberId, kind: body.kind, target: body.target ?? null, message: body.message ?? null });
    return { number_id: numberId, kind: body.kind, target: body.kind === 'message' ? null : (body.target ?? null), message: body.message ?? null };
  };

  app.put('/v1/numbers/:id/fallback', async (req) => {
    const p = authorize(ctx, req, 'numbers:write');
    const { id } = parse(IdParam, req.params);
    return setFallback(p, id, parse(FallbackBody, req.body));
  });

  app.put('/v1/fallback', async (req) => {
    const p = authorize(ctx, req, 'numbers:write');
    return setFallback(p, null, parse(FallbackBody, req.body));
  });
}
