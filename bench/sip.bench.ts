/**
 * SIP trunk at increasing call rate and concurrency with RTP (issue 7): sipp
 * (bench/sip/uac_rtp.xml: INVITE PCMA, ACK, an A-law espeak-ng clip streamed
 * in a loop with rtp_stream — 20 ms packets — for BENCH_SIP_HOLD_MS, BYE)
 * against a gateway child (bench/sip/gateway-child.ts: SIP + RTP on free
 * ports, the number routed to the default agent, which greets: RTP both
 * ways), beside sipp against sipp's own UAS (`-sn uas -rtp_echo`) at the same
 * rate, in the same run.
 *
 * Per rate R (BENCH_SIP_RATES, default 25,50,100 calls/s; each step places
 * R × BENCH_SIP_STEP_S calls, at most R × hold × 2 at once):
 *   sip.rR.calls_per_s      calls created / time to create them (sipp's stats file);
 *                           baseline = sipp UAS. Target ≥ 100 at the top step
 *   sip.rR.failed_calls     sipp FailedCall(C) (target 0); baseline = sipp UAS
 *   sip.rR.concurrent_peak  max sipp CurrentCall (1 s samples); baseline = sipp UAS.
 *                           Target ≥ 500 at the top step
 *   sip.rR.rtp_lost         inside the gateway: jitter-buffer sequence gaps skipped
 *                           + late + duplicate packets dropped (target 0). Kernel
 *                           drops before the gateway reads (UDP RcvbufErrors,
 *                           /proc/net/snmp, system-wide) are in the note
 *   sip.rR.rtp_delay_p99_ms in-gateway RTP delay (socket message event → packet
 *                           decoded and handed to the leg); no baseline (sipp has none)
 *   sip.rR.cpu_pct          gateway CPU over the step, % of one core; baseline = sipp UAS CPU
 * The gateway has no counter for RTP forwarding delay or loss at the socket:
 * those two are measured by the bench's probe (prototype wrap) and the kernel's UDP counters.
 *
 * Env: BENCH_SIP_RATES, BENCH_SIP_STEP_S (10), BENCH_SIP_HOLD_MS (5000), BENCH_SIP_DEADLINE_S (300).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, gatewayEnv } from '../test/helpers/gateway.ts';
import { fmt, log, now, report, sleep } from './lib.ts';
import type { SipGatewayStats } from './sip/gateway-child.ts';
import { ask, forkChild, killChildren, nextMessage, stopChild, track } from './webrtc/children.ts';

const RATES = (process.env.BENCH_SIP_RATES ?? '25,50,100').split(',').map(Number).filter((n) => n > 0);
const STEP_S = Number(process.env.BENCH_SIP_STEP_S ?? 10);
const HOLD_MS = Number(process.env.BENCH_SIP_HOLD_MS ?? 5000);
const DEADLINE_MS = Number(process.env.BENCH_SIP_DEADLINE_S ?? 300) * 1000;
const NUMBER = '+15553330000';
const SERVICE = '15553330000';
const TARGET_RATE = 100;
const TARGET_CONCURRENT = 500;
/**
 * The trunk's admission rate, as an operator sets it for a carrier that sends up to 100 new calls/s from one
 * address (the default, 50 new requests/s per source, fits a smaller trunk; in-dialog requests are never limited).
 */
const TRUNK_RATE = process.env.BENCH_SIP_TRUNK_RATE ?? '200,400';

const deadline = setTimeout(() => {
  process.stderr.write(`sip bench: deadline of ${DEADLINE_MS / 1000} s passed, killing children\n`);
  killChildren();
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-sip-'));
const clip = path.join(work, 'clip.al');
execFileSync('espeak-ng', ['-w', path.join(work, 'clip.wav'), 'thank you for calling, I would like to check the status of my order please']);
execFileSync('sox', [path.join(work, 'clip.wav'), '-r', '8000', '-c', '1', '-t', 'al', clip]);
const scenario = path.join(work, 'uac_rtp.xml');
fs.writeFileSync(scenario, fs.readFileSync(path.join(import.meta.dirname, 'sip', 'uac_rtp.xml'), 'utf8').replace('[field0]', clip));

function udpRcvbufErrors(): number {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const head = (lines[0] ?? '').split(/\s+/);
  const vals = (lines[1] ?? '').split(/\s+/);
  const i = head.indexOf('RcvbufErrors');
  return i >= 0 ? Number(vals[i]) : Number.NaN;
}

function procCpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').slice(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

interface SippResult {
  created: number;
  rate: number;
  successful: number;
  failed: number;
  peak: number;
  code: number | null;
  tail: string;
  /** The most frequent sipp errors of the run (-trace_err), grouped. */
  errors: string;
}

/** Runs the UAC scenario at `rate` for STEP_S seconds of arrivals against 127.0.0.1:`port`; parses its stats file. */
async function runUac(port: number, rate: number, tag: string): Promise<SippResult> {
  const calls = rate * STEP_S;
  const stf = path.join(work, `${tag}.csv`);
  const errf = path.join(work, `${tag}.errors.log`);
  const rtpLow = 40000 + 2 * Math.floor(Math.random() * 4000);
  const args = [
    '-sf', scenario, `127.0.0.1:${port}`, '-s', SERVICE, '-i', '127.0.0.1', '-p', '0',
    '-r', String(rate), '-l', String(Math.ceil((rate * HOLD_MS) / 1000) * 2 + 10), '-m', String(calls), '-d', String(HOLD_MS),
    '-mp', String(rtpLow),
    '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1', '-trace_err', '-error_file', errf, '-timeout', `${STEP_S + HOLD_MS / 1000 + 40}s`, '-timeout_error', '-max_socket', '4096',
  ];
  const child = track(spawn('sipp', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-3000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-3000)));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const rows = fs.existsSync(stf) ? fs.readFileSync(stf, 'utf8').trim().split('\n') : [];
  const head = (rows[0] ?? '').split(';');
  const col = (row: string, name: string): number => {
    const v = Number(row.split(';')[head.indexOf(name)]);
    return Number.isFinite(v) ? v : 0;
  };
  const data = rows.slice(1);
  const last = data[data.length - 1] ?? '';
  const created = col(last, 'TotalCallCreated');
  // Time to create them: first row where every call was created (1 s rows).
  const doneRow = data.find((r) => col(r, 'TotalCallCreated') >= created) ?? last;
  const elapsed = (row: string): number => {
    const e = row.split(';')[head.indexOf('ElapsedTime(C)')] ?? '0:0:0';
    const [h, m, s] = e.split(':').map(Number) as [number, number, number];
    return h * 3600 + m * 60 + s;
  };
  const createSeconds = Math.max(elapsed(doneRow), calls / rate);
  return {
    created,
    rate: created > 0 ? created / createSeconds : 0,
    successful: col(last, 'SuccessfulCall(C)'),
    failed: col(last, 'FailedCall(C)'),
    peak: Math.max(0, ...data.map((r) => col(r, 'CurrentCall'))),
    code,
    tail: out,
    errors: summariseErrors(errf),
  };
}

/** sipp's error log (-trace_err), grouped: each distinct message (numbers and ids blanked) with its count, most frequent first. */
function summariseErrors(file: string): string {
  if (!fs.existsSync(file)) return '';
  const counts = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\d{4}-\d\d-\d\d[\t ]+[\d:.]+[\t ]+[\d.]+:\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    const key = m[1].replace(/\b[0-9a-f-]{6,}\b|\d+/gi, '#').slice(0, 160);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${n}× ${k}`).join(' | ');
}

async function waitIdle(gw: ChildProcess, ms: number): Promise<void> {
  const end = now() + ms;
  while (now() < end) {
    const s = await ask<{ stats: SipGatewayStats }>(gw, { type: 'snapshot' }, 'stats');
    if (s.stats.active === 0) return;
    await sleep(500);
  }
}

const dataDir = path.join(work, 'data');
fs.mkdirSync(dataDir);
let gateway: ChildProcess | null = null;
let uas: ChildProcess | null = null;
try {
  const sipPort = await freePort();
  const low = 20000 + 2 * Math.floor(Math.random() * 4000);
  const env = gatewayEnv(
    { logLevel: 'warn', env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 3999}`, SWITCHBOARD_SIP_RATE: TRUNK_RATE, SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'espeak', BENCH_SIP_NUMBER: NUMBER } },
    await freePort(),
    dataDir,
  );
  delete env.DEEPGRAM_API_KEY;
  gateway = forkChild(path.join(import.meta.dirname, 'sip', 'gateway-child.ts'), env);
  const gw = gateway;
  await nextMessage<{ type: string }>(gw, (m) => m.type === 'listening', 60_000, 'sip gateway: listening');
  const uasPort = await freePort();
  const uasMedia = await freePort();
  uas = track(spawn('sipp', ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(uasMedia), '-rtp_echo', '-nostdin', '-max_socket', '4096'], { cwd: work, stdio: ['ignore', 'ignore', 'ignore'] }));
  const uasPid = uas.pid ?? 0;
  await sleep(500);
  log(`sip: rates ${RATES.join(', ')} calls/s, ${STEP_S} s of arrivals each, hold ${HOLD_MS} ms (≈ rate × ${HOLD_MS / 1000} s concurrent); gateway SIP ${sipPort}, RTP ${low}-${low + 3999}; sipp UAS on ${uasPort}`);
  for (const rate of RATES) {
    // ── gateway ──
    await ask(gw, { type: 'reset' }, 'stats');
    const udp0 = udpRcvbufErrors();
    const t0 = now();
    const g = await runUac(sipPort, rate, `gw-r${rate}`);
    await waitIdle(gw, 10_000);
    const gs = (await ask<{ stats: SipGatewayStats }>(gw, { type: 'snapshot' }, 'stats')).stats;
    const gwSeconds = (now() - t0) / 1000;
    const udpGw = udpRcvbufErrors() - udp0;
    // ── sipp UAS ──
    const u0 = procCpuMs(uasPid);
    const udpU0 = udpRcvbufErrors();
    const t1 = now();
    const b = await runUac(uasPort, rate, `uas-r${rate}`);
    const uasSeconds = (now() - t1) / 1000;
    const udpUas = udpRcvbufErrors() - udpU0;
    const uasCpuPct = ((procCpuMs(uasPid) - u0) / (uasSeconds * 1000)) * 100;
    const gwCpuPct = (gs.cpuMs / (gwSeconds * 1000)) * 100;
    const lost = gs.lost + gs.late + gs.duplicates;
    log(
      `  gateway r${rate}: ${g.created} created at ${fmt(g.rate)}/s, ${g.successful} ok, ${g.failed} failed, peak ${g.peak} concurrent (gateway peak ${gs.activePeak}), sipp exit ${g.code}; ` +
        `RTP in ${gs.packetsIn} (ignored ${gs.ignored}), jitter lost/late/dup ${gs.lost}/${gs.late}/${gs.duplicates}, delay p50 ${fmt(gs.delay.p50)} p99 ${fmt(gs.delay.p99)} max ${fmt(gs.delay.max)} ms (n ${gs.delay.n}), ` +
        `CPU ${fmt(gwCpuPct)} % of a core over ${fmt(gwSeconds)} s, loop p99 ${fmt(gs.loopP99Ms)} max ${fmt(gs.loopMaxMs)} ms, kernel UDP RcvbufErrors +${udpGw}`,
    );
    log(`  sipp-uas r${rate}: ${b.created} created at ${fmt(b.rate)}/s, ${b.successful} ok, ${b.failed} failed, peak ${b.peak}, UAS CPU ${fmt(uasCpuPct)} %, sipp exit ${b.code}`);
    if (g.code !== 0) log(`  gateway r${rate}: sipp said: ${g.tail.split('\n').slice(-6).join(' | ')}`);
    if (g.errors) log(`  gateway r${rate}: sipp errors: ${g.errors}`);
    if (b.errors) log(`  sipp-uas r${rate}: sipp errors: ${b.errors}`);
    const top = rate === RATES[RATES.length - 1];
    report({ figure: `sip.r${rate}.calls_per_s`, value: g.rate * (g.created > 0 ? g.successful / g.created : 0), unit: 'calls/s', baseline: b.rate, ...(top ? { target: { op: '>=' as const, value: TARGET_RATE } } : {}), note: `successful calls / time sipp took to create them (created ${g.created}, failed ${g.failed}); baseline = sipp against sipp -sn uas` });
    report({ figure: `sip.r${rate}.failed_calls`, value: g.failed, unit: 'calls', baseline: b.failed, target: { op: '<=', value: 0 }, note: 'sipp FailedCall(C)' });
    report({ figure: `sip.r${rate}.concurrent_peak`, value: g.failed === 0 ? Math.min(g.peak, gs.activePeak) : 0, unit: 'calls', baseline: b.peak, ...(top ? { target: { op: '>=' as const, value: TARGET_CONCURRENT } } : {}), note: `concurrent calls sustained: min(sipp CurrentCall max ${g.peak}, gateway dialogs peak ${gs.activePeak}); 0 when any call failed (${g.failed} failed)` });
    report({ figure: `sip.r${rate}.rtp_lost`, value: lost, unit: 'packets', target: { op: '<=', value: 0 }, note: `inside the gateway: jitter buffer lost ${gs.lost} + late ${gs.late} + duplicates ${gs.duplicates} of ${gs.received} received; kernel UDP RcvbufErrors +${udpGw} during the gateway step, +${udpUas} during the sipp-UAS step (system-wide: sipp's rtp_stream sockets never read what they are sent; not in the figure)` });
    report({ figure: `sip.r${rate}.rtp_delay_p99_ms`, value: Number.isFinite(gs.delay.p99) ? gs.delay.p99 : 0, unit: 'ms', note: `in-gateway: socket message event → packet decoded (p50 ${fmt(gs.delay.p50)}, max ${fmt(gs.delay.max)} ms); kernel queueing not included: event-loop delay p99 ${fmt(gs.loopP99Ms)} ms, max ${fmt(gs.loopMaxMs)} ms` });
    report({ figure: `sip.r${rate}.cpu_pct`, value: gwCpuPct, unit: '%core', baseline: uasCpuPct, note: 'gateway process CPU over the step / the sipp UAS process CPU over its step' });
  }
} finally {
  if (gateway) await stopChild(gateway, { type: 'stop' }, 10_000);
  if (uas) await stopChild(uas, null, 3000);
  killChildren();
  fs.rmSync(work, { recursive: true, force: true });
}
