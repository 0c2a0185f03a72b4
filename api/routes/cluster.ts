/**
 * The cluster's nodes (issue 15): `GET /v1/cluster/nodes` lists every node recorded in the log's `nodes` table
 * (schema/nodes.ts) — its state (alive, draining, lost, stopped), version, the log level its build supports, start,
 * last heartbeat and lease — which one answered, and the log level the cluster applies commands at
 * (schema/log-level.ts: `log_level`, with when and by whom it was last raised; 1 and nulls before any raise). Deployment-wide, like creating tenants: admins of the operator tenant only. In embedded mode
 * the list is the one local node. `GET /v1/nodes` (the name the external contract gives it) answers the same. The
 * console's nodes panel reads it (console/nodes.js).
 *
 * `POST /v1/cluster/drain` (`switchboard drain`) drains the node that answers (bridge/drain.ts): 202 with the
 * drain's time limit and the live calls it waits for; it takes no new call from now on and exits 0 once its calls
 * have ended (or at the limit). Asked again, it answers the same drain (`started: false`). Same admins only.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OPERATOR_TENANT } from '../../schema/index.ts';
import { CLUSTER_LEVEL_ID, packageVersion, supportedLevel } from '../../schema/log-level.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, type ApiContext } from '../context.ts';
import { iso, isoOrNull } from './time.ts';

/** Admins of the operator tenant only (`what`: the refused act, for the message). */
function operatorAdmin(ctx: ApiContext, req: FastifyRequest, what: string): void {
  const p = authorize(ctx, req, 'tenants:manage');
  if (p.tenant !== OPERATOR_TENANT) throw new HttpError(403, 'forbidden', `only admins of the ${OPERATOR_TENANT} tenant ${what}`);
}

export function mountClusterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/cluster/drain', async (req, reply) => {
    operatorAdmin(ctx, req, 'may drain a node');
    if (!ctx.drain) throw new HttpError(503, 'unavailable', 'this gateway cannot drain (it is not running as a node)');
    const d = await ctx.drain.start();
    return reply.code(202).send({ node: ctx.store.node, draining: true, started: d.started, live_calls: d.liveCalls, timeout_ms: d.timeoutMs, drain_until: isoOrNull(d.drainUntil) });
  });
  const nodes = async (req: FastifyRequest) => {
    operatorAdmin(ctx, req, "see the cluster's nodes");
    const view = ctx.store.read(null);
    const rows = view.nodes.find({}, { orderBy: 'id' });
    const level = view.log_levels.get(CLUSTER_LEVEL_ID);
    return {
      mode: ctx.store.logKind === 'embedded' ? 'embedded' : 'cluster',
      self: ctx.store.node,
      log_level: level?.level ?? 1,
      log_level_raised_at: isoOrNull(level?.raised_at ?? null),
      log_level_raised_by: level?.raised_by ?? null,
      nodes: rows.map((n) => ({
        id: n.id,
        state: n.state,
        self: n.id === ctx.store.node,
        version: packageVersion(n.version),
        log_level: supportedLevel(n.version),
        started_at: iso(n.started_at),
        last_heartbeat_at: iso(n.last_heartbeat_at),
        lease_ms: n.lease_ms,
        lease_until: isoOrNull(n.lease_until),
        drain_until: isoOrNull(n.drain_until),
        down_at: isoOrNull(n.down_at),
        down_reason: n.down_reason,
      })),
    };
  };
  app.get('/v1/cluster/nodes', nodes);
  app.get('/v1/nodes', nodes);
}
