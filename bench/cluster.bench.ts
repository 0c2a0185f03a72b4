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
import { cpuPerCallSecond, runScale, type ScalePhase } from './cluster/scaling.ts';
import { setGroupClockTicks } from './cluster/local.ts';
import { killChildren } from './twilio/children.ts';
import { setClockTicks } from './twilio/shared.ts';

const KILLS = Number(process.env.BENCH_FAILOVER_KILLS ?? 20);
const LEASE_MS = Number(process.env.BENCH_FAILOVER_LEASE_MS ?? 2000);
const CALLS = Number(process.env.BENCH_CLUSTER_CALLS ?? 100);
const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS ?? 30);

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

/** Reports a finite figure; a NaN one (no call streamed) is logged instead: the runner takes numbers only. */
function figure(name: string, value: number, unit: string, baseline: number | null, note: string): void {
  if (Number.isFinite(value)) report({ figure: name, value, unit, baseline: baseline !== null && Number.isFinite(baseline) ? baseline : null, note });
  else log(`  ${name}: no value (${value})`);
}

async function scaling(): Promise<void> {
  const names = ['cpu_ms_per_call_s', 'late_frames', 'haproxy_cpu_pct', 'nats_cpu_pct', 'loadgen_cpu_pct'];
  if (process.env.BENCH_CLUSTER_SCALING === '0' || !wanted(['n1', 'n2'].flatMap((n) => names.map((f) => `cluster.scale.${n}.${f}`)))) return;
  log(`cluster scaling: ${CALLS} Twilio calls for ${SECONDS} s on 1 node, then on 2 nodes, behind HAProxy; ${loadNote()}`);
  const one = await runScale(1, CALLS, SECONDS);
  const two = await runScale(2, CALLS, SECONDS);
  const note = (p: ScalePhase): string =>
    `${p.nodes} node(s) behind HAProxy (leastconn), ${p.streaming}/${p.calls} calls streaming (${p.failed} failed), ${(p.windowMs / 1000).toFixed(0)} s window, ` +
    `${p.client.framesReceived} frames received; node CPU ${p.nodeCpuMs.map((ms) => `${((ms / p.windowMs) * 100).toFixed(0)} %`).join(' + ')} of one core. ` +
    `One machine (${os.cpus().length} CPUs) shared by the nodes, NATS, HAProxy and the load generator: the absolute figures say little, the 2/1-node ratio (baseline column = the 1-node figure) is what matters; ${loadNote()}`;
  const pct = (p: ScalePhase, ms: number): number => (ms / p.windowMs) * 100;
  for (const [p, base] of [[one, null], [two, one]] as const) {
    const n = `cluster.scale.n${p.nodes}`;
    figure(`${n}.cpu_ms_per_call_s`, cpuPerCallSecond(p), 'ms/call-s', base ? cpuPerCallSecond(base) : null, `node CPU (every node process group summed, /proc) per streaming call-second; ${note(p)}`);
    figure(`${n}.late_frames`, p.client.lateFrames, 'frames', base ? base.client.lateFrames : null, `client-observed outbound frames > 40 ms behind their play's 20 ms schedule (as twilio.bench); ${note(p)}`);
    figure(`${n}.haproxy_cpu_pct`, pct(p, p.haproxyCpuMs), '% core', base ? pct(base, base.haproxyCpuMs) : null, `HAProxy's CPU over the window; ${note(p)}`);
    figure(`${n}.nats_cpu_pct`, pct(p, p.natsCpuMs), '% core', base ? pct(base, base.natsCpuMs) : null, `the 3 nats-server processes' CPU summed; ${note(p)}`);
    figure(`${n}.loadgen_cpu_pct`, pct(p, p.loadgenCpuMs), '% core', base ? pct(base, base.loadgenCpuMs) : null, `the load workers' CPU (they share the cores); ${note(p)}`);
  }
}

try {
  await failover();
  await scaling();
} finally {
  killChildren();
}
process.exit(0);
