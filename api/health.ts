/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance } from 'fastify';
import type { Store, Tables } from '../store/index.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface HealthDeps {
  store: Store<Tables>;
  /** True once the store is open, its apply loop running and the server listening. */
  ready: () => boolean;
  node: string;
  metrics: GatewayMetrics;
}

export function mountHealth(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', async () => ({ status: 'ok', node: deps.node }));
  app.get('/readyz', async (_req, reply) =>
    deps.ready() ? { status: 'ready', seq: deps.store.head.seq } : reply.code(503).send({ status: 'starting' }),
  );
  app.get('/metrics', async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.text()));
}
