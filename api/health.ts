/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance } from 'fastify';
import type { Store, Tables } from '../store/index.ts';

export interface HealthDeps {
  store: Store<Tables>;
  ready: () => boolean;
  node: string;
  /** Extra gauges from other modules (calls active, frames late …). */
  metrics?: () => Array<{ name: string; help: string; value: number; type?: 'gauge' | 'counter' }>;
}

export function mountHealth(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', async () => ({ status: 'ok', node: deps.node }));
  app.get('/readyz', async (_req, reply) =>
    deps.ready() ? { status: 'ready', seq: deps.store.head.seq } : reply.code(503).send({ status: 'starting' }),
  );
  app.get('/metrics', async (_req, reply) => {
    const mem = process.memoryUsage();
    const gauges = [
      { name: 'switchboard_store_head_seq', help: 'Sequence number of the newest committed event.', value: deps.store.head.seq },
      { name: 'switchboard_store_subscribers', help: 'Live table subscriptions.', value: deps.store.subscriberCount },
      ...(deps.metrics?.() ?? []),
      { name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', value: mem.rss },
      { name: 'process_heap_used_bytes', help: 'V8 heap in use.', value: mem.heapUsed },
    ];
    const text = gauges.map((g) => `# HELP ${g.name} ${g.help}\n# TYPE ${g.name} ${'type' in g && g.type ? g.type : 'gauge'}\n${g.name} ${g.value}`).join('\n');
    return reply.type('text/plain; version=0.0.4').send(text + '\n');
  });
}
