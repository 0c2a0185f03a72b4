/** Liveness, readiness and Prometheus metrics. */
import type { Store, Tables } from '../store/index.ts';
import { json, type Router } from './http.ts';

export interface HealthDeps {
  store: Store<Tables>;
  ready: () => boolean;
  node: string;
}

export function mountHealth(router: Router, deps: HealthDeps): void {
  router.on('GET', '/healthz', () => json(200, { status: 'ok', node: deps.node }));
  router.on('GET', '/readyz', () =>
    deps.ready() ? json(200, { status: 'ready', seq: deps.store.head.seq }) : json(503, { status: 'starting' }),
  );
  router.on('GET', '/metrics', () => {
    const mem = process.memoryUsage();
    const lines = [
      '# HELP switchboard_store_head_seq Sequence number of the newest committed event.',
      '# TYPE switchboard_store_head_seq gauge',
      `switchboard_store_head_seq ${deps.store.head.seq}`,
      '# HELP switchboard_store_subscribers Live table subscriptions.',
      '# TYPE switchboard_store_subscribers gauge',
      `switchboard_store_subscribers ${deps.store.subscriberCount}`,
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${mem.rss}`,
      '# HELP process_heap_used_bytes V8 heap in use.',
      '# TYPE process_heap_used_bytes gauge',
      `process_heap_used_bytes ${mem.heapUsed}`,
    ];
    return { status: 200, headers: { 'content-type': 'text/plain; version=0.0.4' }, body: lines.join('\n') + '\n' };
  });
}
