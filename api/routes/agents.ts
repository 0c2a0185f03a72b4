/**
 * Agent deployments over the API: `GET /v1/agents` (versions, rollout, live
 * calls), `POST /v1/agents/:name/deploy` (body: the bundled ESM code as
 * `application/javascript`, `?rollout=P&migrate=true`; or JSON
 * `{ code, rollout, migrate }`), `POST /v1/agents/:name/rollback`. Each agent
 * in the list carries `paused` (its open pause, or null); pausing itself is
 * in agent-pause.ts.
 *
 * A deploy answers once the version's init ran: 201 with the live version, or
 * 422 `deploy_failed` carrying the agent's error — the previous version keeps
 * serving either way until the new one is live.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DeployError } from '../../agents/registry.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, type ApiContext } from '../context.ts';
import { iso } from './time.ts';
import { pauseView } from './agent-pause.ts';
import { openPause } from '../../schema/agent-pause.ts';

const MAX_BUNDLE = 5 * 1024 * 1024;
/** Body types a deploy takes besides JSON (the request guard lets them through on this route only). */
const BUNDLE_TYPES = ['application/javascript', 'text/javascript'] as const;
const NameParam = z.strictObject({ name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase agent name: letters, digits, - and _') });
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const DeployQuery = z.strictObject({ rollout: z.coerce.number().min(0).max(100).optional(), migrate: flag.optional() });
const DeployJson = z.strictObject({
  code: z.string().min(1).max(MAX_BUNDLE),
  rollout: z.number().min(0).max(100).optional(),
  migrate: z.boolean().optional(),
});

function deployError(err: unknown): never {
  if (err instanceof DeployError) {
    const status = err.code === 'deploy_failed' ? 422 : err.code.endsWith('_not_found') ? 404 : err.code === 'forbidden' ? 403 : 409;
    throw new HttpError(status, err.code, err.message);
  }
  throw err;
}

export function mountAgentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.addContentTypeParser([...BUNDLE_TYPES], { parseAs: 'string', bodyLimit: MAX_BUNDLE }, (_req, body, done) => done(null, body));

  app.get('/v1/agents', async (req) => {
    const p = authorize(ctx, req, 'agents:read');
    const view = ctx.store.read(p.tenant);
    const versions = view.agent_versions.find({}, { orderBy: 'created_at' });
    const live = view.calls.find({ state: ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming'] });
    const names = new Set([...versions.map((v) => v.name), ...view.numbers.find({}).map((n) => n.agent)]);
    return {
      agents: [...names].sort().map((name) => ({
        name,
        versions: versions
          .filter((v) => v.name === name)
          .map((v) => ({
            version: v.version,
            status: v.status,
            rollout: v.rollout,
            migrate: v.migrate,
            sha256: v.sha256,
            error: v.error,
            live_calls: live.filter((c) => c.agent === name && c.agent_version === v.version).length,
            created_at: iso(v.created_at),
          })),
        numbers: view.numbers.find({ agent: name }).map((n) => n.number),
        live_calls: live.filter((c) => c.agent === name).length,
        paused: ((pause) => (pause ? pauseView(pause) : null))(openPause(view, name)),
      })),
    };
  });

  app.post('/v1/agents/:name/deploy', { config: { bodyTypes: BUNDLE_TYPES } }, async (req, reply) => {
    const p = authorize(ctx, req, 'agents:deploy');
    const { name } = parse(NameParam, req.params);
    const query = parse(DeployQuery, req.query);
    let code: string;
    let rollout = query.rollout;
    let migrate = query.migrate;
    if (typeof req.body === 'string') code = req.body;
    else {
      const body = parse(DeployJson, req.body);
      code = body.code;
      rollout = body.rollout ?? rollout;
      migrate = body.migrate ?? migrate;
    }
    if (code.trim() === '') throw new HttpError(400, 'invalid_request', 'the bundle is empty');
    try {
      const v = await ctx.agents.deploy(p.tenant, p.caller, name, code, { rollout: rollout ?? 100, migrate: migrate ?? false });
      return reply.code(201).send({ name: v.name, version: v.version, status: v.status, rollout: v.rollout, migrate: v.migrate, sha256: v.sha256 });
    } catch (err) {
      deployError(err);
    }
  });

  app.post('/v1/agents/:name/rollback', async (req) => {
    const p = authorize(ctx, req, 'agents:deploy');
    const { name } = parse(NameParam, req.params);
    try {
      return { name, ...(await ctx.agents.rollback(p.tenant, p.caller, name)) };
    } catch (err) {
      deployError(err);
    }
  });
}
