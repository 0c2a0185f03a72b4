/**
 * `npm run bench -- cluster`: cluster mode (issue 15) on one machine — real nats-server ×3, `switchboard start`
 * nodes and HAProxy, started from cli/cluster's pieces (bench/cluster/local.ts).
 *
 *   failover   bench/cluster/failover.ts   kill -9 of the node carrying a Twilio call → audio again, p50/p99/max over
 *              BENCH_FAILOVER_KILLS (20) kills, lease BENCH_FAILOVER_LEASE_MS (2000: it bounds the survivor's wait
 *              for the dead owner's lease, renewed some time before the kill)
 *   scaling    bench/cluster/scaling.ts    the Twilio load generator (bench/twilio/load-worker.ts) against 1 node, then
 *              2 nodes, behind HAProxy: BENCH_CLUSTER_CALLS (100) calls for BENCH_CLUSTER_SECONDS (30), same run
 *
 * Figures:
 *   cluster.failover_ms.p50 / .p99 / .max   ms, baseline = the lease
 *   cluster.scale.nN.cpu_ms_per_call_s      node CPU (every node process summed) per streaming call-second
 *   cluster.scale.nN.late_frames            client-observed outbound frames > 40 ms behind schedule (twilio.bench's)
 *   cluster.scale.nN.haproxy_cpu_pct, .nats_cpu_pct, .loadgen_cpu_pct   the other processes, % of one core
 *   cluster.scale.n2.* carry the n1 figure as baseline: the runner's ratio column is the 2-node/1-node ratio.
 * BENCH_CLUSTER_FAILOVER=0 / BENCH_CLUSTER_SCALING=0 skip a part.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { log, percentile, report, wanted } from './lib.ts';
import { runFailover } from './cluster/failover.ts';
import { setGroupClockTicks } from './cluster/local.ts';
import { killChildren } from './twilio/children.ts';
import { setClockTicks } from './twilio/shared.ts';

const KILLS = Number(process.env.BENCH_FAILOVER_KILLS ?? 20);
const LEASE_MS = Number(process.env.BENCH_FAILOVER_LEASE_MS ?? 2000);

try {
  const tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  setClockTicks(tck);
  setGroupClockTicks(tck);
} catch {
  // 100 is the Linux default
}

const loadNote = (): string => `load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPU(s)`;

async function failover(): Promise<void> {
  if (process.env.BENCH_CLUSTER_FAILOVER === '0' || !wanted(['cluster.failover_ms.p50', 'cluster.failover_ms.p99', 'cluster.failover_ms.max'])) return;
  log(`cluster failover: ${KILLS} kill(s), lease ${LEASE_MS} ms; ${loadNote()}`);
  const before = loadNote();
  const { samples, victims } = await runFailover(KILLS, LEASE_MS);
  const note = `kill -9 of the node carrying one Twilio call → first non-silent frame on the peer's new stream (its <Redirect> through HAProxy to the other node, which takes the call once the lease ran out); ${samples.length} kills (${[...new Set(victims)].map((v) => `${v} ×${victims.filter((x) => x === v).length}`).join(', ')}); baseline = the lease (the wait for the dead owner's lease is at most that: it was renewed some time before the kill); machine ${before} before, ${loadNote()} after`;
  report({ figure: 'cluster.failover_ms.p50', value: Math.round(percentile(samples, 50)), unit: 'ms', baseline: LEASE_MS, note });
  report({ figure: 'cluster.failover_ms.p99', value: Math.round(percentile(samples, 99)), unit: 'ms', baseline: LEASE_MS, note });
  report({ figure: 'cluster.failover_ms.max', value: Math.round(Math.max(...samples)), unit: 'ms', baseline: LEASE_MS, note });
}

try {
  await failover();
} finally {
  killChildren();
}
process.exit(0);
