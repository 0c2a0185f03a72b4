/**
 * Liveness, readiness and Prometheus metrics.
 *
 * `/healthz` is liveness: it answers 200 while the process serves, with
 * `status: "ok"`, or `status: "degraded"` and the reason when the store cannot
 * commit (disk full, I/O error; cluster mode: the replicated log has no quorum) — a restart would not free the disk and would
 * drop the live calls, so the node stays up and recovers by itself.
 * `/readyz` is readiness: 503 `not_ready` with the same reason while the store
 * cannot commit (new calls get the busy answer meanwhile), 503 `starting`
 * before the gateway listens, 503 `draining` while the node drains (bridge/drain.ts: a balancer checking it,
 * deploy/haproxy, stops sending it new calls; its live calls go on), else 200 `ready`.
 */
import type { FastifyInstance } from 'fastify';
import type { Store, Tables } from '../store/index.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface HealthDeps {
  store: Store<Tables>;
  /** True once the store is open, its apply loop running and the server listening. */
  ready: () => boolean;
  /** True while the node drains: it takes no new calls. */
  draining?: () => boolean;
  node: string;
  metrics: GatewayMetrics;
  /** Log lines dropped because the log could not be written (cli/logger.ts). */
  logLinesDropped?: () => number;
}

/** The store's fault as operators read it, or null while it commits normally. */
function storeProblem(store: Store<Tables>): { reason: string; store: { fault: string; detail: string; since: string; waiting: number } } | null {
  const f = store.health;
  if (!f) return null;
  if (f.kind === 'log_unavailable') {
    return {
      reason: `store unavailable: cluster log unavailable (${f.reason}); new calls are refused, writes are refused until the log has a quorum again`,
      store: { fault: f.kind, detail: f.reason, since: new Date(f.since).toISOString(), waiting: f.waiting },
    };
  }
  const what = f.kind === 'disk_full' ? 'disk full' : f.kind === 'io_error' ? 'storage I/O error' : 'storage busy';
  return {
    reason: `store unavailable: ${what} (${f.reason}); new calls are refused, live calls continue unrecorded, writes wait and are retried`,
    store: { fault: f.kind, detail: f.reason, since: new Date(f.since).toISOString(), waiting: f.waiting },
  };
}

export function mountHealth(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', async () => {
    const problem = storeProblem(deps.store);
    const dropped = deps.logLinesDropped?.() ?? 0;
    return { status: problem ? 'degraded' : 'ok', node: deps.node, ...(problem ?? {}), ...(dropped > 0 ? { log_lines_dropped: dropped } : {}) };
  });
  app.get('/readyz', async (_req, reply) => {
    const problem = storeProblem(deps.store);
    if (problem) return reply.code(503).send({ status: 'not_ready', node: deps.node, ...problem });
    if (deps.draining?.() === true) return reply.code(503).send({ status: 'draining', node: deps.node });
    return deps.ready() ? { status: 'ready', seq: deps.store.head.seq } : reply.code(503).send({ status: 'starting' });
  });
  app.get('/metrics', async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));
}
