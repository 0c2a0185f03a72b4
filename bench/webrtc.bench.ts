/**
 * WebRTC at scale (issue 8): N concurrent werift client peers calling the
 * gateway's demo number with Opus both ways on 2 cores, N stepped up until
 * late frames appear, calls drop or the gateway's CPU saturates; beside the
 * same N of bare werift↔werift peer pairs with Opus decode/encode and no
 * gateway, measured in the same run.
 *
 * WebRTC on loopback needs a private network namespace: this file re-runs
 * itself under `unshare -n` (after `ip link set lo up`), as test/helpers/netns.ts
 * does for tests; werift then finds only 127.0.0.1 and never reaches a STUN server.
 *
 * Processes (all on the same 2 cores):
 *   gateway  bench/webrtc/gateway-child.ts: startGateway (profile development,
 *            SWITCHBOARD_WEBRTC_DEMO=on, SWITCHBOARD_STT=none, SWITCHBOARD_TTS=espeak,
 *            fsync always, log level warn), read-only probe (CPU, /metrics, legs' frame counts).
 *   bare     bench/webrtc/bare-server.ts: werift answerer with the gateway's own
 *            peer and Opus wrappers; decodes every packet, encodes and sends a
 *            tone frame per peer every 20 ms (continuously).
 *   load     BENCH_WEBRTC_WORKERS (2) × bench/webrtc/load-worker.ts: werift
 *            offerers sending pre-encoded Opus every 20 ms, DTMF over the data
 *            channel: 2 (decline consent → unrecorded), then 5 every
 *            BENCH_WEBRTC_DTMF_MS so the default agent keeps answering.
 *
 * One phase = fresh server → ramp N calls (BENCH_WEBRTC_RAMP calls/s) → settle
 * 3 s → window of BENCH_WEBRTC_SECONDS → stop. Per step N (gateway, then bare):
 *   webrtc.cN.calls_sustained     peers connected and receiving media at the end of the window (target ≥ N)
 *   webrtc.cN.cpu_pct_per_call    server process.cpuUsage over the window / window / N, % of one core (all threads)
 *   webrtc.cN.main_cpu_us_per_frame  CPU of the server's main thread (the media loop; threads apart) per frame in + out
 *   webrtc.cN.late_frames         gateway: switchboard_media_frames_late_total delta (target 0);
 *                                 bare: frames its 20 ms clock sent > 40 ms after their slot
 *   webrtc.cN.client_gaps         clients: gaps > 40 ms between consecutive packets of a talkspurt
 * and webrtc.max_calls_0_late: the largest N with all calls sustained and 0 late frames.
 *
 * Env: BENCH_WEBRTC_STEPS (5,10,20,40), BENCH_WEBRTC_SECONDS (10), BENCH_WEBRTC_RAMP (10),
 * BENCH_WEBRTC_WORKERS (2), BENCH_WEBRTC_DTMF_MS (3000), BENCH_WEBRTC_DEADLINE_S (300),
 * BENCH_WEBRTC_ALL_STEPS=1 (run every step even after one fails; max_calls_0_late still stops at the first failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, gatewayEnv } from '../test/helpers/gateway.ts';
import { fmt, log, report, sleep } from './lib.ts';
import { ask, forkChild, killChildren, nextMessage, stopChild } from './webrtc/children.ts';
import type { LoadCommand, LoadEvent, LoadStats, ServerEvent, ServerStats } from './webrtc/shared.ts';

const FLAG = 'BENCH_WEBRTC_NETNS';
if (process.env[FLAG] !== '1') {
  // Re-run this file inside a private network namespace; stdout (the @@result lines) passes through.
  const child = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, '--expose-gc', '--import', 'tsx', import.meta.filename], {
    env: { ...process.env, [FLAG]: '1' },
    stdio: 'inherit',
  });
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`webrtc bench: cannot start unshare -n (needs root or user namespaces): ${err.message}\n`);
      resolve(1);
    });
    child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0)));
  });
  process.exit(code);
}

const STEPS = (process.env.BENCH_WEBRTC_STEPS ?? '5,10,20,40').split(',').map(Number).filter((n) => n > 0);
const SECONDS = Number(process.env.BENCH_WEBRTC_SECONDS ?? 10);
const RAMP = Number(process.env.BENCH_WEBRTC_RAMP ?? 10);
const WORKERS = Math.max(1, Number(process.env.BENCH_WEBRTC_WORKERS ?? 2));
const DTMF_MS = Number(process.env.BENCH_WEBRTC_DTMF_MS ?? 3000);
const DEADLINE_MS = Number(process.env.BENCH_WEBRTC_DEADLINE_S ?? 300) * 1000;
const ALL_STEPS = process.env.BENCH_WEBRTC_ALL_STEPS === '1';
const SETTLE_MS = 3000;
const HERE = path.join(import.meta.dirname, 'webrtc');

const deadline = setTimeout(() => {
  process.stderr.write(`webrtc bench: deadline of ${DEADLINE_MS / 1000} s passed, killing children\n`);
  killChildren();
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

interface PhaseResult {
  server: ServerStats;
  load: LoadStats;
  connected: number;
  failures: Record<string, number>;
}

function merge(list: LoadStats[]): LoadStats {
  const sum = (f: (s: LoadStats) => number): number => list.reduce((a, s) => a + f(s), 0);
  const failures: Record<string, number> = {};
  for (const s of list) for (const [k, v] of Object.entries(s.failures)) failures[k] = (failures[k] ?? 0) + v;
  return {
    connected: sum((s) => s.connected),
    failed: sum((s) => s.failed),
    alive: sum((s) => s.alive),
    packetsSent: sum((s) => s.packetsSent),
    packetsReceived: sum((s) => s.packetsReceived),
    gaps: sum((s) => s.gaps),
    maxGapMs: Math.max(0, ...list.map((s) => s.maxGapMs)),
    loopP99Ms: Math.max(0, ...list.map((s) => s.loopP99Ms)),
    cpuMs: sum((s) => s.cpuMs),
    failures,
  };
}

async function phase(kind: 'gateway' | 'bare', calls: number): Promise<PhaseResult> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sb-bench-webrtc-${kind}-`));
  const workers: ChildProcess[] = [];
  let server: ChildProcess | null = null;
  try {
    if (kind === 'gateway') {
      const port = await freePort();
      const env = gatewayEnv(
        { profile: 'development', logLevel: 'warn', env: { SWITCHBOARD_WEBRTC_DEMO: 'on', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_FSYNC_POLICY: 'always' } },
        port,
        dataDir,
      );
      delete env.DEEPGRAM_API_KEY;
      server = forkChild(path.join(HERE, 'gateway-child.ts'), env);
    } else {
      server = forkChild(path.join(HERE, 'bare-server.ts'), { ...process.env });
    }
    const srv = server;
    const { port } = await nextMessage<ServerEvent & { type: 'listening' }>(srv, (m) => m.type === 'listening', 60_000, `${kind}: listening`);
    const url = `http://127.0.0.1:${port}/webrtc/offer`;
    for (let w = 0; w < WORKERS; w++) {
      const mine = Math.floor(calls / WORKERS) + (w < calls % WORKERS ? 1 : 0);
      if (mine === 0) continue;
      const worker = forkChild(path.join(HERE, 'load-worker.ts'), { ...process.env });
      workers.push(worker);
      const cmd: LoadCommand = { type: 'start', url, calls: mine, intervalMs: (1000 / RAMP) * WORKERS, dtmfMs: DTMF_MS };
      worker.send(cmd);
    }
    const ready = await Promise.all(workers.map((w) => nextMessage<LoadEvent>(w, (m) => m.type === 'ready', (calls / RAMP) * 1000 + 60_000, `${kind} c${calls}: ramp`)));
    const connected = merge(ready.map((r) => r.stats)).connected;
    await sleep(SETTLE_MS);
    await Promise.all([ask(srv, { type: 'reset' }, 'stats'), ...workers.map((w) => ask(w, { type: 'reset' }, 'stats'))]);
    await sleep(SECONDS * 1000);
    const [s, ...l] = await Promise.all([
      ask<{ stats: ServerStats }>(srv, { type: 'snapshot' }, 'stats'),
      ...workers.map((w) => ask<{ stats: LoadStats }>(w, { type: 'snapshot' }, 'stats')),
    ]);
    const load = merge(l.map((x) => x.stats));
    return { server: s.stats, load, connected, failures: load.failures };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w, { type: 'stop' }, 5000)));
    if (server) await stopChild(server, { type: 'stop' }, 10_000);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const pctPerCall = (p: PhaseResult, n: number): number => (p.server.cpuMs / (SECONDS * 1000)) * 100 / n;
const describe = (kind: string, n: number, p: PhaseResult): string =>
  `  ${kind.padEnd(7)} c${n}: connected ${p.connected}/${n}, sustained ${p.load.alive}, server CPU ${fmt((p.server.cpuMs / (SECONDS * 1000)) * 100)} % of a core ` +
  `(${fmt(pctPerCall(p, n))} %/call), late ${p.server.late}, frames in/out ${p.server.framesIn}/${p.server.framesOut}, ` +
  `client rx ${p.load.packetsReceived} pkts, gaps>40ms ${p.load.gaps} (max ${fmt(p.load.maxGapMs)} ms), server loop p99 ${fmt(p.server.loopP99Ms)} ms, busy ${fmt(p.server.loopUtil * 100)} %, main thread CPU ${fmt((p.server.mainCpuMs / (SECONDS * 1000)) * 100)} % (${fmt(p.server.mainCpuMs / Math.max(1, p.server.framesIn + p.server.framesOut) * 1000)} µs per frame in+out), ` +
  `load CPU ${fmt((p.load.cpuMs / (SECONDS * 1000)) * 100)} %${Object.keys(p.failures).length ? `, failures ${JSON.stringify(p.failures)}` : ''}`;

log(`webrtc: steps ${STEPS.join(', ')} calls, ${SECONDS} s windows, ${WORKERS} load worker(s), ramp ${RAMP} calls/s, DTMF every ${DTMF_MS} ms; ${os.cpus().length} CPUs`);
let best = 0;
let stopped = false;
let stopReason = `all steps met (the largest step, ${STEPS[STEPS.length - 1] ?? 0}, is not a limit)`;
try {
  for (const n of STEPS) {
    const gw = await phase('gateway', n);
    log(describe('gateway', n, gw));
    const bare = await phase('bare', n);
    log(describe('bare', n, bare));
    report({ figure: `webrtc.c${n}.calls_sustained`, value: gw.load.alive, unit: 'calls', baseline: bare.load.alive, target: { op: '>=', value: n }, note: 'peers connected and receiving media at the end of the window; baseline = bare werift pairs' });
    report({ figure: `webrtc.c${n}.cpu_pct_per_call`, value: pctPerCall(gw, n), unit: '%core', baseline: pctPerCall(bare, n), note: 'server process.cpuUsage over the window / N, % of one core; baseline = bare werift + Opus decode/encode (sends continuously; the gateway only while the agent talks)' });
    report({ figure: `webrtc.c${n}.main_cpu_us_per_frame`, value: (gw.server.mainCpuMs * 1000) / Math.max(1, gw.server.framesIn + gw.server.framesOut), unit: 'us', baseline: (bare.server.mainCpuMs * 1000) / Math.max(1, bare.server.framesIn + bare.server.framesOut), note: 'CPU of the server\'s main thread (the media loop; worker threads, e.g. Opus encoding, apart) per frame in + out over the window (Linux /proc)' });
    report({ figure: `webrtc.c${n}.late_frames`, value: gw.server.late, unit: 'frames', baseline: bare.server.late, target: { op: '<=', value: 0 }, note: 'gateway: switchboard_media_frames_late_total delta over the window; bare: frames sent > 40 ms after their 20 ms slot' });
    report({ figure: `webrtc.c${n}.client_gaps`, value: gw.load.gaps, unit: 'gaps', baseline: bare.load.gaps, note: 'client-observed gaps > 40 ms between consecutive packets of one talkspurt' });
    const cpuPct = (gw.server.cpuMs / (SECONDS * 1000)) * 100;
    const ok = gw.server.late === 0 && gw.load.alive >= n;
    if (stopped) continue; // BENCH_WEBRTC_ALL_STEPS: measured, not counted
    if (ok) best = n;
    if (!ok || cpuPct >= 90) {
      stopped = true;
      stopReason = !ok ? `c${n}: ${gw.server.late} late frames, ${gw.load.alive}/${n} sustained` : `c${n}: gateway CPU ${fmt(cpuPct)} % of a core (saturated)`;
      if (!ALL_STEPS) break;
    }
  }
} finally {
  killChildren();
}
report({ figure: 'webrtc.max_calls_0_late', value: best, unit: 'calls', note: `largest step with every call sustained and 0 late frames; stopped: ${stopReason}` });
