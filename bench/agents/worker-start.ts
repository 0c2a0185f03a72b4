/**
 * What a deploy (or a restart with deployed versions) costs before the agent's code runs: a WorkerAgent started
 * and its init answered, the built worker (dist/agent-worker.mjs, what `switchboard start` runs) beside the same
 * worker compiled by tsx in the thread (what ran before the build), same bundle, same process, alternating.
 *
 * Figures (p50 over RUNS starts each): agents.worker_start_ms (wall, start → init_done), agents.worker_start_cpu_ms
 * (the process's CPU over it: the worker thread's compile and load compete with the media loop for a core), and
 * agents.worker_start_loop_delay_ms (this event loop's delay max meanwhile). Skipped when the build is not fresh.
 */
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { bundleAgent } from '../../agents/bundle.ts';
import { tsxWorkerBoot, WorkerAgent, workerBoot, type WorkerBoot } from '../../agents/host/worker-agent.ts';
import { conciergeSource } from '../../test/helpers/agent-source.ts';
import { log, percentile, report, sleep } from '../lib.ts';

export const WORKER_START_FIGURES = ['agents.worker_start_ms', 'agents.worker_start_cpu_ms', 'agents.worker_start_loop_delay_ms'];
const RUNS = 7;

async function once(bundlePath: string, boot: WorkerBoot): Promise<{ ms: number; cpu: number; delay: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const agent = await WorkerAgent.start({ name: 'concierge', version: 'v1', bundlePath, initTimeoutMs: 60_000, boot });
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  h.disable();
  agent.close();
  await sleep(200);
  return { ms, cpu: (c.user + c.system) / 1000, delay: h.max / 1e6 };
}

export async function workerStartBench(work: string): Promise<void> {
  const built = workerBoot();
  if (built.eval) {
    log('worker start: skipped (dist/ is missing or stale: `npm run build`)');
    return;
  }
  const src = path.join(work, 'worker-start-agent.ts');
  fs.writeFileSync(src, conciergeSource('v1', { work }));
  const bundlePath = path.join(work, 'worker-start-agent.mjs');
  fs.writeFileSync(bundlePath, (await bundleAgent(src)).code);
  const tsx = tsxWorkerBoot();
  const b: Array<{ ms: number; cpu: number; delay: number }> = [];
  const t: typeof b = [];
  await once(bundlePath, built); // warm the file cache for both
  for (let i = 0; i < RUNS; i++) {
    b.push(await once(bundlePath, built));
    t.push(await once(bundlePath, tsx));
  }
  const p50 = (xs: typeof b, k: 'ms' | 'cpu' | 'delay'): number => percentile(xs.map((x) => x[k]), 50);
  log(`worker start + init, p50 of ${RUNS}: built ${p50(b, 'ms').toFixed(0)} ms (${p50(b, 'cpu').toFixed(0)} ms CPU), tsx ${p50(t, 'ms').toFixed(0)} ms (${p50(t, 'cpu').toFixed(0)} ms CPU)`);
  const note = `p50 of ${RUNS} WorkerAgent starts (thread up, bundle loaded, init done) on dist/agent-worker.mjs; baseline: the same through tsx in the thread, same run`;
  report({ figure: 'agents.worker_start_ms', value: p50(b, 'ms'), unit: 'ms', baseline: p50(t, 'ms'), note });
  report({ figure: 'agents.worker_start_cpu_ms', value: p50(b, 'cpu'), unit: 'ms', baseline: p50(t, 'cpu'), note: `process CPU over the start; ${note}` });
  report({ figure: 'agents.worker_start_loop_delay_ms', value: p50(b, 'delay'), unit: 'ms', baseline: p50(t, 'delay'), note: `this event loop's delay max over the start; ${note}` });
}
