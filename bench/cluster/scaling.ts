/**
 * Twilio calls sustained by 1 vs 2 cluster nodes: the Twilio bench's load generator (bench/twilio/load-worker.ts,
 * BENCH_TWILIO_WORKERS processes, its ramp BENCH_TWILIO_RAMP and DTMF period BENCH_TWILIO_DTMF_MS) against HAProxy
 * in front of `nodes` nodes, one phase per cluster size, each on a fresh cluster:
 *
 *   cluster (3 NATS, `nodes` nodes, HAProxy) ─► route the number (opt-in consent, the caller declines: no recorder
 *   tap, as in twilio.bench) ─► warm-up: 3 calls per node, hung up ─► ramp `calls` calls ─► settle 5 s
 *   ─► window of `seconds`: CPU of every process group (/proc) and the workers' client figures ─► stop all
 *
 * The load workers sign every webhook and media upgrade over HAProxy's URL (every node's SWITCHBOARD_PUBLIC_URL).
 * HAProxy balances `leastconn`, so with 2 nodes each carries about half the media sockets.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { TWILIO_TOKEN } from '../../test/helpers/gateway.ts';
import { fmt, log, now, sleep } from '../lib.ts';
import { ask, nextMessage, spawnChild, stopChild } from '../twilio/children.ts';
import { mergeClients, type MergedClients } from '../twilio/clients.ts';
import { DTMF_MS, RAMP, WORKERS } from '../twilio/config.ts';
import { cpuMs, type WorkerCommand, type WorkerEvent } from '../twilio/shared.ts';
import { route, startBenchCluster, type BenchCluster } from './local.ts';

const NUMBER = '+15550109002';
const WARMUP_PER_NODE = 3;
const SETTLE_MS = 5000;
/** twilio.bench's policy: opt-in, declined by the caller (CONSENT_DIGIT) → the call goes on unrecorded. */
const POLICY = { name: 'bench-unrecorded', mode: 'opt-in', disclosure_text: 'This call may be recorded.', retries: 0, timeout_ms: 1000, on_decline: 'continue-unrecorded' };

export interface ScalePhase {
  nodes: number;
  calls: number;
  /** Calls streaming at the end of the window, and calls whose setup failed. */
  streaming: number;
  failed: number;
  client: MergedClients;
  /** CPU ms over the window: each node's process group, HAProxy, the 3 NATS servers summed, the load workers summed. */
  nodeCpuMs: number[];
  haproxyCpuMs: number;
  natsCpuMs: number;
  loadgenCpuMs: number;
  windowMs: number;
}

function startCmd(c: BenchCluster, calls: number[], intervalMs: number, startDelayMs: number, dtmfMs: number): WorkerCommand {
  return { type: 'start', calls, intervalMs, startDelayMs, baseUrl: c.httpUrl, authToken: TWILIO_TOKEN, to: NUMBER, dtmfMs, runId: randomBytes(12).toString('hex') };
}

/** A few calls through the whole setup on every node (JIT, TTS cache), then hung up; not counted. */
async function warmUp(c: BenchCluster, nodes: number): Promise<void> {
  const warm = spawnChild('load-worker.ts', { ...process.env }, 'inherit');
  try {
    warm.send(startCmd(c, Array.from({ length: WARMUP_PER_NODE * nodes }, (_, i) => 0xfffff00 + i), 100, 0, 0));
    await nextMessage<WorkerEvent>(warm, (m) => m.type === 'ready', 60_000, 'cluster warm-up');
    await sleep(2500);
  } finally {
    await stopChild(warm, { type: 'stop' }, 10_000);
  }
}

/** Ramps `calls` calls over WORKERS load workers at RAMP calls/s; resolves with the workers once every call is placed. */
async function ramp(c: BenchCluster, calls: number, tag: string): Promise<ChildProcess[]> {
  const gap = 1000 / RAMP;
  const workers: ChildProcess[] = [];
  const progress = Array.from({ length: WORKERS }, () => ({ streaming: 0, failed: 0 }));
  for (let w = 0; w < WORKERS; w++) {
    const worker = spawnChild('load-worker.ts', { ...process.env }, 'inherit');
    workers.push(worker);
    worker.on('message', (m: WorkerEvent) => {
      if (m.type === 'progress' || m.type === 'ready') progress[w] = { streaming: m.streaming, failed: m.failed };
    });
    worker.send(startCmd(c, Array.from({ length: calls }, (_, i) => i).filter((i) => i % WORKERS === w), gap * WORKERS, gap * w, DTMF_MS));
  }
  const ticker = setInterval(() => log(`  ${tag}: ramp ${progress.reduce((a, p) => a + p.streaming, 0)}/${calls} streaming, ${progress.reduce((a, p) => a + p.failed, 0)} failed`), 5000);
  try {
    await Promise.all(workers.map((w) => nextMessage<WorkerEvent>(w, (m) => m.type === 'ready', (calls / RAMP) * 1000 + 90_000, `${tag}: ramp`)));
  } finally {
    clearInterval(ticker);
  }
  return workers;
}

export async function runScale(nodes: number, calls: number, seconds: number): Promise<ScalePhase> {
  const tag = `${nodes} node(s) c${calls}`;
  const cluster = await startBenchCluster({ nodes, say: (l) => log(`  ${tag}: ${l}`) });
  let workers: ChildProcess[] = [];
  try {
    await route(cluster, NUMBER, POLICY);
    await warmUp(cluster, nodes);
    workers = await ramp(cluster, calls, tag);
    await sleep(SETTLE_MS);
    await Promise.all(workers.map((w) => ask<WorkerEvent>(w, { type: 'reset' }, 'stats')));
    const loadgen = (): number => workers.reduce((a, w) => a + (cpuMs(w.pid ?? 0) ?? 0), 0);
    const c0 = cluster.cpu();
    const w0 = loadgen();
    const t0 = now();
    await sleep(seconds * 1000);
    const c1 = cluster.cpu();
    const w1 = loadgen();
    const windowMs = now() - t0;
    const stats = await Promise.all(workers.map((w) => ask<Extract<WorkerEvent, { type: 'stats' }>>(w, { type: 'snapshot' }, 'stats')));
    const client = mergeClients(stats.map((s) => s.stats));
    const phase: ScalePhase = {
      nodes,
      calls,
      streaming: client.streaming,
      failed: client.failed,
      client,
      nodeCpuMs: c1.nodes.map((v, i) => v - (c0.nodes[i] ?? 0)),
      haproxyCpuMs: c1.haproxy - c0.haproxy,
      natsCpuMs: c1.nats - c0.nats,
      loadgenCpuMs: w1 - w0,
      windowMs,
    };
    const pct = (ms: number): string => `${fmt((ms / windowMs) * 100)} %`;
    log(
      `  ${tag}: ${phase.streaming} streaming, ${phase.failed} failed; CPU nodes ${phase.nodeCpuMs.map(pct).join(' + ')}, HAProxy ${pct(phase.haproxyCpuMs)}, ` +
        `NATS ${pct(phase.natsCpuMs)}, load ${pct(phase.loadgenCpuMs)}; frames received ${client.framesReceived}, late ${client.lateFrames} (max ${fmt(client.maxLatenessMs)} ms)`,
    );
    return phase;
  } finally {
    await Promise.all(workers.map((w) => stopChild(w, { type: 'stop' }, 15_000)));
    await cluster.stop();
  }
}

/** ms of node CPU (every node summed) per streaming call per second of the window. */
export function cpuPerCallSecond(p: ScalePhase): number {
  const total = p.nodeCpuMs.reduce((a, b) => a + b, 0);
  return p.streaming > 0 ? total / (p.streaming * (p.windowMs / 1000)) : Number.NaN;
}
