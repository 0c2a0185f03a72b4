/**
 * Twilio Media Streams at scale: N concurrent Twilio-protocol calls held for a
 * measurement window (consent and recording taps off, see below), beside a
 * bare `ws` server under the same N in the same run.
 *
 * Processes (2 CPUs on the reference machine — everything below shares them):
 *   gateway   bench/twilio/gateway-child.ts: what `switchboard start` runs
 *             (profile production, fsync always, TWILIO_AUTH_TOKEN set, so every
 *             webhook and WS upgrade signature is checked; log level info to a
 *             file; SWITCHBOARD_STT=BENCH_TWILIO_STT (none), SWITCHBOARD_TTS=espeak),
 *             plus a read-only probe for figures the gateway does not expose
 *             (see that file). Number seeded offline before the start.
 *   bare      bench/twilio/bare-server.ts: JSON.parse every message, base64-decode
 *             media; outbound the same clip lengths and marks from one shared
 *             20 ms timer.
 *   load      BENCH_TWILIO_WORKERS (2) × bench/twilio/load-worker.ts: sign and POST
 *             /twilio/voice, signed WS upgrade, connected/start, 20 ms µ-law
 *             silence frames, DTMF every BENCH_TWILIO_DTMF_MS after the greeting
 *             (so the agent keeps talking: the outbound load), marks echoed.
 *
 * One phase = start server → 3 warm-up calls, hung up → ramp N calls at BENCH_TWILIO_RAMP calls/s → settle
 * 5 s (greetings of the last calls end) → measurement window → stop. CPU is
 * utime+stime from /proc/<pid>/stat over the window; RSS is VmRSS at the end of
 * the window minus VmRSS of the idle server before the first call.
 *
 * Figures (cN = N calls):
 *   late_frames          client-observed outbound frames > 40 ms behind their play's
 *                        20 ms schedule (target 0); baseline = bare, same client
 *   gateway_late_frames  the pacer's own count (PacedStream.stats.lateFrames: tick
 *                        start − slot > 40 ms; not in /metrics, read by the probe)
 *                        (target 0); baseline = the bare server's after-send count
 *   added_latency_p50/p99_ms  gateway-added outbound latency, measured inside the
 *                        server: slot time → the frame's ws.send() has returned
 *                        (timer lateness + everything a tick does before this
 *                        frame). p99 target ≤ 5 ms; baseline = bare, same definition
 *   jitter_p50/p99_ms    client-observed |inter-arrival − 20 ms| within a play
 *   arrival_lateness_p99_ms  client-observed lateness vs the play's schedule
 *   turn_p50/p99_ms      DTMF sent → first frame of the reply (store commits + TTS
 *                        cache + pacing); baseline = bare (next slot only)
 *   webhook_p50/p99_ms   POST /twilio/voice → TwiML, during the ramp
 *   loop_delay_p99_ms    server event-loop delay (monitorEventLoopDelay)
 *   cpu_pct              server CPU, % of one core; baseline = bare
 *   cpu_ratio            gateway / bare CPU (target ≤ 1.25; no verdict when either
 *                        side is saturated or they carried different call counts)
 *   cpu_ms_per_call_s    CPU ms per streaming call per second
 *   rss_mb_per_call      (RSS end − RSS idle) / N
 *   rss_ratio            gateway / bare memory per call (target ≤ 2)
 *   late_frames_over_bare  client-observed late frames, gateway minus bare (target ≤ 0)
 *   loadgen_cpu_pct      the load workers' CPU (they compete for the same cores)
 *
 * When N fails the late-frame target, smaller N from 100/250/500/1000 are run
 * upwards (gateway, BENCH_TWILIO_SEARCH_SECONDS window) until one fails; the
 * largest that met it is reported as twilio.max_calls_late_target and gets the
 * full figure set, with a bare run at the same N for its CPU ratio. "Meets"
 * = no frame left the gateway > 40 ms after its slot (pacer count and the
 * probe's after-send clock) and every call streamed; the client-observed count
 * is reported but not used, as it includes the generator's own stalls.
 *
 * Targets first: unless BENCH_TWILIO_TAPS=on already, a pair of phases at
 * BENCH_TWILIO_TARGET_CALLS (300; 0 = skip) runs with recording on (the caller
 * grants consent; figures twilio.taps.cN.*) — the issue's CPU target is
 * measured there. The bare server's capacity is searched like the gateway's
 * (twilio.bare_max_calls_late_target) and twilio.max_calls_ratio = gateway /
 * bare (target ≥ 0.8).
 *
 * Consent/recording taps are off: the number's consent policy is opt-in with
 * on_decline continue-unrecorded and the client declines at the prompt, so
 * the consent stage runs at call setup (before the window) and no recorder or
 * transcriber tap is ever attached; the gateway runs with SWITCHBOARD_STT=none
 * (DTMF consent; BENCH_TWILIO_STT=auto includes the per-call recogniser).
 *
 * Env: BENCH_TWILIO_CALLS (1000), BENCH_TWILIO_SECONDS (60), BENCH_TWILIO_RAMP
 * (50 calls/s), BENCH_TWILIO_TARGET_CALLS (300), BENCH_TWILIO_DTMF_MS (4000, 0 = never), BENCH_TWILIO_WORKERS (2),
 * BENCH_TWILIO_SEARCH (1), BENCH_TWILIO_SEARCH_SECONDS (15), BENCH_TWILIO_PROBE (1),
 * BENCH_TWILIO_STT (none), BENCH_TWILIO_DEADLINE_S (1500, hard stop),
 * BENCH_TWILIO_CPU_PROF=DIR (write V8 CPU profiles of the gateway to DIR),
 * BENCH_TWILIO_MAX_CALLS / BENCH_TWILIO_MAX_LOOP_LAG_MS (the gateway's admission
 * limits, off by default: calls past them get <Reject reason="busy">, counted as
 * twilio.cN.refused_busy; the other figures are then those of the calls carried).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { digitWord, GREETING } from '../agents/default-agent.ts';
import { schema } from '../schema/index.ts';
import { EspeakTts } from '../speech/espeak.ts';
import { resolveDurability, Store, type ArgsOf } from '../store/index.ts';
import { freePort, gatewayEnv, TWILIO_TOKEN } from '../test/helpers/gateway.ts';
import { fmt, log, now, sleep, wanted } from './lib.ts';
import {
  cpuMs,
  DTMF_DIGIT,
  Hist,
  machineCpuMs,
  rssMb,
  setClockTicks,
  type ProbeEvent,
  type WorkerCommand,
  type WorkerEvent,
  TAPS_ON,
} from './twilio/shared.ts';

import { BARE_RAMP, CALLS, CPU_PROF, DTMF_MS, MAX_CALLS, MAX_LOOP_LAG_MS, RAMP, SECONDS, STT, WORKERS } from './twilio/config.ts';
import { ask, fdLimit, killChildren, nextMessage, spawnChild, stopChild } from './twilio/children.ts';
import { describe, reportPhase, type Phase } from './twilio/report.ts';
import { mergeClients } from './twilio/clients.ts';
import { runTargets, searchCapacity } from './twilio/targets.ts';
import { consent_policy_created, number_added, tenant_created } from '../schema/reducers.ts';
/** Calls placed and hung up before the ramp (JIT, lazily loaded modules, TTS cache), not counted anywhere. */
const WARMUP_CALLS = 3;
const SETTLE_MS = 5000;
const NUMBER = '+15557654321';
/** Hard stop for the whole file, so a wedged child can never hang the bench. */
const DEADLINE_MS = Number(process.env.BENCH_TWILIO_DEADLINE_S ?? 1500) * 1000;

const deadline = setTimeout(() => {
  process.stderr.write(`twilio bench: deadline of ${DEADLINE_MS / 1000} s passed, killing children\n`);
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

try {
  setClockTicks(Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()));
} catch {
  // 100 is the Linux default
}

/**
 * The number the load calls, routed to the default agent, with its own consent policy: opt-in, short
 * disclosure, declined → continue unrecorded. The client declines (CONSENT_DIGIT), so the calls run with
 * the consent stage at setup but no recorder or transcriber tap ("consent/recording taps off here").
 * Returns what was seeded, for the log.
 */
async function seed(dataDir: string): Promise<string> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'bench' };
  try {
    const t = await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' });
    if (!t.outcome.ok) throw new Error(`tenant_created: ${JSON.stringify(t.outcome)}`);
    let policyId: string | null = null;
    if (schema.reducers.some((r) => r.name === 'consent_policy_created')) {
      const policy: ArgsOf<typeof consent_policy_created> = {
        name: 'bench-unrecorded',
        mode: 'opt-in',
        disclosure_text: 'This call may be recorded.',
        retries: 0,
        timeout_ms: 1000,
        on_decline: 'continue-unrecorded',
      };
      const r = await store.submit(consent_policy_created, policy, who);
      if (!r.outcome.ok) throw new Error(`consent_policy_created: ${JSON.stringify(r.outcome)}`);
      policyId = r.outcome.result.policy_id;
    }
    const n = await store.submit(number_added, { number: NUMBER, agent: 'default', ...(policyId ? { consent_policy_id: policyId } : {}) }, who);
    if (!n.outcome.ok) throw new Error(`number_added: ${JSON.stringify(n.outcome)}`);
    if (policyId && TAPS_ON()) return `number ${NUMBER} → agent default, opt-in policy; the caller GRANTS (BENCH_TWILIO_TAPS=on): recorder tap on every call`;
    return policyId ? `number ${NUMBER} → agent default, consent policy bench-unrecorded (opt-in; the caller declines)` : `number ${NUMBER} → agent default (this build has no consent policies)`;
  } finally {
    store.close();
  }
}

/** Frames (20 ms, last one padded) of the default agent's greeting and of its DTMF reply, from espeak-ng as the gateway makes them. */
async function clipFrames(): Promise<{ greeting: number; reply: number; texts: string[] }> {
  // What the default agent says: its greeting, then its answer to the DTMF digit.
  const texts: string[] = [GREETING, `You pressed ${digitWord(DTMF_DIGIT)}.`];
  const greetingTexts = 1;
  const tts = new EspeakTts();
  const frames = async (list: string[]): Promise<number> => {
    let n = 0;
    for (const t of list) n += Math.ceil((await tts.synthesize(t, 8000)).length / 160);
    return n;
  };
  return { greeting: await frames(texts.slice(0, greetingTexts)), reply: await frames(texts.slice(greetingTexts)), texts };
}

// ─────────────────────────────── one phase ───────────────────────────────


async function runPhase(kind: 'gateway' | 'bare', calls: number, seconds: number, clips: { greeting: number; reply: number }): Promise<Phase> {
  const tag = `${kind} c${calls}`;
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sb-bench-twilio-${kind}-`));
  const workers: ChildProcess[] = [];
  let server: ChildProcess | null = null;
  let logFd: number | null = null;
  try {
    if (kind === 'gateway') {
      const seeded = await seed(dataDir);
      if (calls === CALLS) log(`  ${tag}: seeded ${seeded}`);
      logFd = fs.openSync(path.join(dataDir, 'gateway.log'), 'w');
      // Taps off: no speech recogniser (consent by DTMF, no caller transcripts); local TTS, as the bare clip lengths assume.
      const limits = { ...(MAX_CALLS > 0 ? { SWITCHBOARD_MAX_CALLS: String(MAX_CALLS) } : {}), ...(MAX_LOOP_LAG_MS > 0 ? { SWITCHBOARD_MAX_LOOP_LAG_MS: String(MAX_LOOP_LAG_MS) } : {}) };
      const env = gatewayEnv({ logLevel: 'info', env: { SWITCHBOARD_STT: STT, SWITCHBOARD_TTS: 'espeak', ...limits } }, port, dataDir);
      delete env.DEEPGRAM_API_KEY;
      // One file per thread (main + tsx's loader thread), named CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile.
      const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROF)}`] : [];
      server = spawnChild('gateway-child.ts', env, logFd, prof);
    } else {
      const env: NodeJS.ProcessEnv = { ...process.env, BARE_PORT: String(port), BARE_GREETING_FRAMES: String(clips.greeting), BARE_REPLY_FRAMES: String(clips.reply) };
      server = spawnChild('bare-server.ts', env, 'inherit');
    }
    const srv = server;
    const pid = srv.pid ?? 0;
    await nextMessage<ProbeEvent>(srv, (m) => m.type === 'listening', 60_000, `${tag}: listening`);
    await sleep(1000);
    const rssIdleMb = rssMb(pid) ?? Number.NaN;

    // ── ramp ──
    const rate = kind === 'bare' ? BARE_RAMP : RAMP;
    const gap = 1000 / rate;
    const runId = randomBytes(12).toString('hex');
    // ── warm-up: a few calls through the whole setup (webhook, upgrade, consent, greeting TTS), then hung up ──
    {
      const warm = spawnChild('load-worker.ts', { ...process.env }, 'inherit');
      try {
        const cmd: WorkerCommand = {
          type: 'start',
          calls: Array.from({ length: WARMUP_CALLS }, (_, i) => 0xfffff00 + i),
          intervalMs: 100,
          startDelayMs: 0,
          baseUrl: `http://127.0.0.1:${port}`,
          authToken: TWILIO_TOKEN,
          to: NUMBER,
          dtmfMs: 0,
          runId: randomBytes(12).toString('hex'),
        };
        warm.send(cmd);
        await nextMessage<WorkerEvent>(warm, (m) => m.type === 'ready', 60_000, `${tag}: warm-up`);
        await sleep(2500);
      } finally {
        await stopChild(warm, { type: 'stop' }, 10_000);
      }
    }
    const setupStart = now();
    for (let w = 0; w < WORKERS; w++) {
      const worker = spawnChild('load-worker.ts', { ...process.env }, 'inherit');
      workers.push(worker);
      const mine = Array.from({ length: calls }, (_, i) => i).filter((i) => i % WORKERS === w);
      const cmd: WorkerCommand = {
        type: 'start',
        calls: mine,
        intervalMs: gap * WORKERS,
        startDelayMs: gap * w,
        baseUrl: `http://127.0.0.1:${port}`,
        authToken: TWILIO_TOKEN,
        to: NUMBER,
        dtmfMs: DTMF_MS,
        runId,
      };
      worker.send(cmd);
    }
    const progress: Array<{ streaming: number; failed: number }> = workers.map(() => ({ streaming: 0, failed: 0 }));
    workers.forEach((w, i) =>
      w.on('message', (m: WorkerEvent) => {
        if (m.type === 'progress' || m.type === 'ready') progress[i] = { streaming: m.streaming, failed: m.failed };
      }),
    );
    const ticker = setInterval(() => {
      const s = progress.reduce((a, p) => a + p.streaming, 0);
      const f = progress.reduce((a, p) => a + p.failed, 0);
      log(`  ${tag}: ramp ${s}/${calls} streaming, ${f} failed, server CPU ${fmt(((cpuMs(pid) ?? 0) / 1000))} s total`);
    }, 5000);
    try {
      await Promise.all(workers.map((w) => nextMessage<WorkerEvent>(w, (m) => m.type === 'ready', (calls / rate) * 1000 + 90_000, `${tag}: ramp`)));
    } finally {
      clearInterval(ticker);
    }
    const setupSeconds = (now() - setupStart) / 1000;
    await sleep(SETTLE_MS);

    // ── window ──
    const resets = await Promise.all([...workers.map((w) => ask<WorkerEvent>(w, { type: 'reset' }, 'stats')), ask<ProbeEvent>(srv, { type: 'reset' }, 'stats')]);
    void resets;
    const c0 = cpuMs(pid) ?? Number.NaN;
    const w0 = workers.reduce((a, w) => a + (cpuMs(w.pid ?? 0) ?? 0), 0);
    const m0 = machineCpuMs();
    const t0 = now();
    const end = t0 + seconds * 1000;
    while (now() < end) {
      await sleep(Math.min(10_000, end - now()));
      const el = (now() - t0) / 1000;
      if (now() < end - 100) {
        log(`  ${tag}: window ${fmt(el)}/${seconds} s, server CPU ${fmt((((cpuMs(pid) ?? 0) - c0) / (now() - t0)) * 100)} %, RSS ${fmt(rssMb(pid) ?? Number.NaN)} MiB`);
      }
    }
    const c1 = cpuMs(pid) ?? Number.NaN;
    const w1 = workers.reduce((a, w) => a + (cpuMs(w.pid ?? 0) ?? 0), 0);
    const m1 = machineCpuMs();
    const t1 = now();
    const rssEndMb = rssMb(pid) ?? Number.NaN;
    const [srvStats, ...clientStats] = await Promise.all([
      ask<Extract<ProbeEvent, { type: 'stats' }>>(srv, { type: 'snapshot' }, 'stats'),
      ...workers.map((w) => ask<Extract<WorkerEvent, { type: 'stats' }>>(w, { type: 'snapshot' }, 'stats')),
    ]);
    const elapsed = t1 - t0;
    const busyPct = m0 && m1 ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 * os.cpus().length : Number.NaN;
    const client = mergeClients(clientStats.map((s) => s.stats));
    const serverStats = (srvStats as Extract<ProbeEvent, { type: 'stats' }>).stats;

    await Promise.all(workers.map((w) => stopChild(w, { type: 'stop' }, 15_000)));
    await stopChild(srv, { type: 'stop' }, 20_000);

    let logWarnings = 0;
    if (kind === 'gateway') {
      const text = fs.readFileSync(path.join(dataDir, 'gateway.log'), 'utf8');
      const levels = new Map<number, number>();
      for (const m of text.matchAll(/"level":(\d+)/g)) levels.set(Number(m[1]), (levels.get(Number(m[1])) ?? 0) + 1);
      logWarnings = [...levels].filter(([l]) => l >= 40).reduce((a, [, n]) => a + n, 0);
      const samples = text.split('\n').filter((l) => /"level":(4|5|6)\d/.test(l)).slice(0, 3);
      if (samples.length) log(`  ${tag}: gateway warnings/errors (${logWarnings}), e.g.\n    ${samples.map((s) => s.slice(0, 300)).join('\n    ')}`);
      // Taps off? Every consent should be declined and no recording should have begun.
      const outcomes: Record<string, number> = {};
      for (const m of text.matchAll(/"outcome":"(\w+)"[^\n]*"msg":"consent decided"/g)) outcomes[m[1] ?? '?'] = (outcomes[m[1] ?? '?'] ?? 0) + 1;
      const recordings = [...text.matchAll(/"msg":"recording"/g)].length;
      log(`  ${tag}: consent decisions ${JSON.stringify(outcomes)}, recordings begun ${recordings}`);
    }

    return {
      kind,
      calls,
      seconds,
      streamingAtEnd: client.streaming,
      setupFailed: client.failed,
      setupBusy: client.busy,
      failures: client.failures,
      droppedByServer: client.dropped,
      server: serverStats,
      client,
      sendLateness: Hist.from([serverStats.sendLateness]),
      cpuPct: ((c1 - c0) / elapsed) * 100,
      rssIdleMb,
      rssEndMb,
      loadgenCpuPct: ((w1 - w0) / elapsed) * 100,
      machineBusyPct: busyPct,
      otherBusyPct: busyPct - ((c1 - c0) / elapsed) * 100 - ((w1 - w0) / elapsed) * 100,
      setupSeconds,
      logWarnings,
    };
  } finally {
    for (const w of workers) await stopChild(w, { type: 'stop' }, 2000);
    if (server) await stopChild(server, { type: 'stop' }, 5000);
    if (logFd !== null) fs.closeSync(logFd);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!wanted([`twilio.c${CALLS}.late_frames`, 'twilio.max_calls_late_target'])) return;
  const limit = fdLimit();
  const need = CALLS + 256;
  log(
    `twilio media: ${CALLS} calls, ${SECONDS} s window, ramp ${RAMP}/s (bare ${BARE_RAMP}/s), DTMF every ${DTMF_MS} ms, ${WORKERS} load worker(s), gateway STT ${STT}, ` +
      `${os.cpus().length} CPU(s); fd limit ${limit ?? '?'} (each server needs ~N+64, each worker ~N/${WORKERS}+64)`,
  );
  if (limit !== null && limit < need) {
    log(`  WARNING: RLIMIT_NOFILE ${limit} < ${need}: run under \`bash -c 'ulimit -n 65536 && npm run bench -- twilio'\``);
  }
  const clips = await clipFrames();
  log(`  clips: greeting ${clips.greeting} frames, DTMF reply ${clips.reply} frames (${clips.texts.map((t) => JSON.stringify(t)).join(', ')})`);

  await runTargets(runPhase, clips);
  const g = await runPhase('gateway', CALLS, SECONDS, clips);
  describe(g);
  const b = await runPhase('bare', CALLS, SECONDS, clips);
  describe(b);
  reportPhase(g, b);
  await searchCapacity(runPhase, g, b, clips);
}

try {
  await main();
} finally {
  killChildren();
}
