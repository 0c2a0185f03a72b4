/**
 * `npm run bench -- restart`: `kill -9` of a gateway carrying N live Twilio calls → the next process's `/healthz`
 * answers 200, and every call is resumed (its peer, following the TwiML `<Redirect>`, retried every 200 ms while the
 * gateway is down, has a new media stream accepted: the call is `active` again on the new node). Beside it, in the same run, the floor: a bare `node -e` HTTP server's exec → first 200.
 *
 *   seed data dir (tenant, notify policy, number → default agent)
 *   start `node bin/switchboard.mjs start` (the built dist/ when fresh), dial N peers, wait until all hear audio
 *   RUNS × { kill -9 ─► t0: spawn ─► poll /healthz every 5 ms ─► healthy ─► every peer on a new stream ─► resumed }
 *   RUNS × { t0: spawn bare server ─► poll ─► 200 }
 *
 * Figures (ms, p50 and p99 over the runs): restart.healthz_*, restart.resumed_* (target ≤ 1000), and the phases
 * the gateway logs with "listening" (`startupMs`: modules loaded, store open, listening; ms since its process
 * started), which say where start-up goes. On a shared, busy machine wall-clock times mostly measure the queue for
 * a core, so the CPU the new process had used when it was healthy and when every call was resumed is reported too
 * (restart.healthz_cpu_p50_ms, restart.resumed_cpu_p50_ms: utime + stime of /proc/<pid>/stat, all its threads,
 * 10 ms ticks; baseline = the bare server's at its first 200).
 * BENCH_RESTART_CALLS (default 20) and BENCH_RESTART_RUNS (default 7) size it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { schema } from '../schema/index.ts';
import { consent_policy_created, number_added, tenant_created } from '../schema/reducers.ts';
import { resolveDurability, Store } from '../store/index.ts';
import { freePort, gatewayEnv, TWILIO_TOKEN } from '../test/helpers/gateway.ts';
import { resultOf } from '../test/helpers/store.ts';
import { tmpDir } from '../test/helpers/tmp.ts';
import { TwilioPeer } from '../test/helpers/twilio-peer.ts';
import { log, now, percentile, report, sleep } from './lib.ts';

const ROOT = path.join(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin', 'switchboard.mjs');
const NUMBER = '+15557654321';
const CALLS = Number(process.env.BENCH_RESTART_CALLS ?? 20);
const RUNS = Number(process.env.BENCH_RESTART_RUNS ?? 7);

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const who = { tenant: 'default', caller: 'bench' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' }));
    const policy = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
    resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: policy.policy_id }, who));
  } finally {
    store.close();
  }
}

/** CPU ms (user + system, every thread) process `pid` has used so far; NaN where /proc is not readable. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime (fields 14, 15) in USER_HZ = 100 ticks/s
  } catch {
    return Number.NaN;
  }
}

interface Started {
  child: ChildProcess;
  /** ms from spawn to the first 200 of `url`. */
  healthyMs: number;
  /** CPU ms the process had used at its first 200. */
  healthyCpuMs: number;
  /** pino `time` of these log messages, as ms after spawn. */
  phases: Map<string, number>;
}

/** Spawns `args`, polls `url` every 5 ms until it answers 200. */
async function startAndPoll(args: string[], env: NodeJS.ProcessEnv, url: string): Promise<Started> {
  const spawnedAt = Date.now();
  const t0 = now();
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const phases = new Map<string, number>();
  let buf = '';
  let errors = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const j = JSON.parse(line) as { msg?: string; time?: number; startupMs?: Record<string, number> };
        for (const [k, v] of Object.entries(j.startupMs ?? {})) phases.set(`startup.${k}`, v);
        if (typeof j.msg === 'string' && typeof j.time === 'number' && !phases.has(j.msg.split(' on ')[0]!)) phases.set(j.msg.split(' on ')[0]!, j.time - spawnedAt);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => (errors += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${args.join(' ')} exited before it was healthy:\n${errors}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return { child, healthyMs: now() - t0, healthyCpuMs: cpuMs(child.pid), phases };
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await gone;
}

const heard = (p: TwilioPeer): number => p.receivedAudio().length;

async function main(): Promise<void> {
  const port = await freePort();
  const dataDir = tmpDir('sb-bench-restart-');
  await seed(dataDir);
  const env = gatewayEnv({ logLevel: 'info' }, port, dataDir);
  const health = `http://127.0.0.1:${port}/healthz`;
  let gw = await startAndPoll([BIN, 'start'], env, health);
  log(`first start: healthy after ${gw.healthyMs.toFixed(0)} ms; dialing ${CALLS} calls`);
  const peers = Array.from({ length: CALLS }, (_, i) => new TwilioPeer({ publicUrl: `http://127.0.0.1:${port}`, authToken: TWILIO_TOKEN, to: NUMBER, from: `+1555000${String(1000 + i)}`, redirectRetryMs: 60_000 }));
  await Promise.all(peers.map((p) => p.dial()));
  await Promise.all(peers.map((p) => p.waitFor(() => heard(p) > 0, 30_000, 'first audio')));

  const healthy: number[] = [];
  const resumed: number[] = [];
  const healthyCpu: number[] = [];
  const resumedCpu: number[] = [];
  const phase = new Map<string, number[]>();
  try {
    for (let run = 0; run < RUNS; run++) {
      await sleep(500);
      const before = peers.map((p) => ({ streams: p.streams }));
      await kill9(gw.child);
      const t0 = now();
      gw = await startAndPoll([BIN, 'start'], env, health);
      healthy.push(gw.healthyMs);
      await Promise.all(peers.map((p, i) => p.waitFor(() => p.streams > before[i]!.streams && p.streamSid !== null, 30_000, 'resumed')));
      resumed.push(now() - t0);
      healthyCpu.push(gw.healthyCpuMs);
      resumedCpu.push(cpuMs(gw.child.pid));
      for (const [msg, ms] of gw.phases) phase.set(msg, [...(phase.get(msg) ?? []), ms]);
      log(`restart ${run + 1}: healthy ${gw.healthyMs.toFixed(0)} ms, ${CALLS} calls resumed ${(now() - t0).toFixed(0)} ms; ${[...gw.phases].map(([m, t]) => `${m} +${t}`).join(', ')}`);
    }
  } finally {
    await Promise.all(peers.map((p) => p.close().catch(() => undefined)));
    await kill9(gw.child);
  }

  const barePort = await freePort();
  const bare: number[] = [];
  const bareCpu: number[] = [];
  const script = `require('node:http').createServer((q, s) => s.end('ok')).listen(${barePort}, '127.0.0.1')`;
  for (let run = 0; run < RUNS; run++) {
    const b = await startAndPoll(['-e', script], process.env, `http://127.0.0.1:${barePort}/`);
    bare.push(b.healthyMs);
    bareCpu.push(b.healthyCpuMs);
    await kill9(b.child);
  }

  const p = (xs: number[], q: number): number => Math.round(percentile(xs, q));
  const note = `${RUNS} restarts of a gateway with ${CALLS} live Twilio calls; baseline: a bare node -e HTTP server, exec → first 200, same run`;
  report({ figure: 'restart.healthz_p50_ms', value: p(healthy, 50), unit: 'ms', baseline: p(bare, 50), target: { op: '<=', value: 1000, unit: 'ms' }, note });
  report({ figure: 'restart.healthz_p99_ms', value: p(healthy, 99), unit: 'ms', baseline: p(bare, 99), target: { op: '<=', value: 1000, unit: 'ms' }, note });
  report({ figure: 'restart.resumed_p50_ms', value: p(resumed, 50), unit: 'ms', baseline: p(bare, 50), target: { op: '<=', value: 1000, unit: 'ms' }, note: `kill -9 → every call streaming again; ${note}` });
  report({ figure: 'restart.resumed_p99_ms', value: p(resumed, 99), unit: 'ms', baseline: p(bare, 99), target: { op: '<=', value: 1000, unit: 'ms' }, note: `kill -9 → every call streaming again; ${note}` });
  const cpuNote = `CPU (user + system, all threads) the restarted gateway had used; ${note}`;
  report({ figure: 'restart.healthz_cpu_p50_ms', value: p(healthyCpu, 50), unit: 'ms', baseline: p(bareCpu, 50), note: `at its first /healthz 200: ${cpuNote}` });
  report({ figure: 'restart.resumed_cpu_p50_ms', value: p(resumedCpu, 50), unit: 'ms', baseline: p(bareCpu, 50), note: `once every call was streaming again: ${cpuNote}` });
  const what: Record<string, string> = {
    'startup.loaded': 'process start → the gateway module loaded and the configuration parsed (module loading)',
    'startup.storeOpen': 'process start → the store open',
    'startup.listening': 'process start → every listener up (HTTP, SIP, RTP range), ready',
    'call resuming': 'exec → the first call resuming (pino time of that log line)',
  };
  for (const [msg, xs] of phase) {
    const note = what[msg];
    if (note) report({ figure: `restart.phase_${msg.replace(/\W+/g, '_')}_p50_ms`, value: p(xs, 50), unit: 'ms', note });
  }
}

await main();
process.exit(0);
