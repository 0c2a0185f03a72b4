/**
 * Pieces shared by the Twilio media benchmark's processes (bench/twilio.bench.ts
 * orchestrates; gateway-child.ts, bare-server.ts and load-worker.ts are its
 * children): a fixed-bin latency histogram that merges across processes, the
 * IPC message shapes, /proc readers, and the wire constants.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import fs from 'node:fs';

/** 160 bytes of µ-law silence (0xFF), base64: every inbound frame carries this. */
export const SILENCE_B64 = Buffer.alloc(160, 0xff).toString('base64');
export const FRAME_MS = 20;
/** A frame arriving more than this behind its schedule is late (the threshold; = media/paced-stream LATE_FRAME_MS). */
export const LATE_MS = 40;
/** The digit the load client presses; always the same so the reply is one cached TTS clip. */
export const DTMF_DIGIT = '5';
/**
 * The caller's answer to the consent prompt, pressed on the first outbound frame of a call: 2 = decline.
 * With the bench's opt-in policy (on_decline continue-unrecorded) the call goes on with no recorder and no
 * transcriber tap. The bare server ignores it.
 */
export const CONSENT_DIGIT = TAPS_ON() ? '1' : '2';

/**
 * BENCH_TWILIO_TAPS=on: the caller grants consent (1), so every call runs the recorder tap (dual-channel
 * segments, finalized + encrypted at hang-up) — the consent + recording variant; STT stays off ("null STT").
 */
export function TAPS_ON(): boolean {
  return process.env.BENCH_TWILIO_TAPS === 'on';
}

// ─────────────────────────────── histogram ───────────────────────────────

/** Latency histogram: 10 µs bins up to 2 s, one overflow bin; exact max. Sparse-serialisable. */
export class Hist {
  static readonly BIN_MS = 0.01;
  static readonly BINS = 200_000;
  private bins = new Uint32Array(Hist.BINS + 1);
  count = 0;
  max = 0;
  sum = 0;

  add(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    const i = Math.min(Hist.BINS, Math.floor(v / Hist.BIN_MS));
    this.bins[i] = (this.bins[i] as number) + 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.bins.fill(0);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }

  /** Value at percentile p (0..100), nearest rank; upper edge of the bin (the max for the top bin). NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)));
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i] as number;
      if (seen >= rank) return Math.min(this.max, (i + 1) * Hist.BIN_MS);
    }
    return this.max;
  }

  /** Count of values strictly above `ms` (bin resolution). */
  above(ms: number): number {
    let n = 0;
    for (let i = Math.floor(ms / Hist.BIN_MS) + 1; i < this.bins.length; i++) n += this.bins[i] as number;
    return n;
  }

  toJSON(): SerialHist {
    const sparse: Array<[number, number]> = [];
    for (let i = 0; i < this.bins.length; i++) if (this.bins[i]) sparse.push([i, this.bins[i] as number]);
    return { sparse, count: this.count, max: this.max, sum: this.sum };
  }

  merge(h: SerialHist): void {
    for (const [i, c] of h.sparse) this.bins[i] = (this.bins[i] as number) + c;
    this.count += h.count;
    this.sum += h.sum;
    if (h.max > this.max) this.max = h.max;
  }

  static from(parts: SerialHist[]): Hist {
    const h = new Hist();
    for (const p of parts) h.merge(p);
    return h;
  }

  summary(): { n: number; p50: number; p99: number; max: number; mean: number } {
    return { n: this.count, p50: this.percentile(50), p99: this.percentile(99), max: this.max, mean: this.count ? this.sum / this.count : Number.NaN };
  }
}

export interface SerialHist {
  sparse: Array<[number, number]>;
  count: number;
  max: number;
  sum: number;
}

// ─────────────────────────────── /proc ───────────────────────────────

let clkTck = 100;
export function setClockTicks(n: number): void {
  if (Number.isFinite(n) && n > 0) clkTck = n;
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat; null when gone. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return ((utime + stime) * 1000) / clkTck;
  } catch {
    return null;
  }
}

/** Resident set size in MiB from /proc/<pid>/status (VmRSS); null when gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Whole-machine busy and total CPU time in ms (all CPUs), from /proc/stat. */
export function machineCpuMs(): { busy: number; total: number } | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: ((total - idle) * 1000) / clkTck, total: (total * 1000) / clkTck };
  } catch {
    return null;
  }
}

// ─────────────────────────────── IPC ───────────────────────────────

/** Orchestrator → load worker. */
export type WorkerCommand =
  | {
      type: 'start';
      /** Call indices this worker places (CallSid derives from the index). */
      calls: number[];
      /** Milliseconds between this worker's call setups, and before its first. */
      intervalMs: number;
      startDelayMs: number;
      baseUrl: string;
      authToken: string;
      to: string;
      /** Per call: press DTMF_DIGIT every dtmfMs after the greeting ended (0 = never). */
      dtmfMs: number;
      runId: string;
    }
  | { type: 'reset' }
  | { type: 'snapshot' }
  | { type: 'stop' };

export interface ClientStats {
  /** Calls streaming (start sent, socket open) now. */
  streaming: number;
  failed: number;
  /** Calls the gateway refused with <Reject reason="busy"> (admission control, BENCH_TWILIO_MAX_CALLS). */
  busy: number;
  failures: Record<string, number>;
  /** Sockets the server closed while the call was streaming. */
  droppedByServer: number;
  // Counters since the last reset:
  framesSent: number;
  framesReceived: number;
  marksReceived: number;
  clears: number;
  unexpected: number;
  plays: number;
  lateFrames: number;
  maxLatenessMs: number;
  dtmfSent: number;
  /** Outbound frame lateness against its play's schedule (first frame + k·20 ms); negative → 0. */
  lateness: SerialHist;
  /** |inter-arrival − 20 ms| between consecutive frames of a play. */
  jitter: SerialHist;
  /** DTMF sent → first frame of the reply. */
  turn: SerialHist;
  /** POST /twilio/voice → full TwiML body (all calls, not reset). */
  webhook: SerialHist;
  /** WS upgrade request → open (all calls, not reset). */
  upgrade: SerialHist;
  /** This worker's own event-loop delay (since reset), ms. */
  loopDelay: { p50: number; p99: number; max: number };
  /** Frames per play, by the play's first-frame count (for the bare server's matching clip lengths). */
  playFrames: Record<string, number>;
}

export type WorkerEvent =
  | { type: 'ready'; streaming: number; failed: number }
  | { type: 'progress'; streaming: number; failed: number }
  | { type: 'stats'; stats: ClientStats }
  | { type: 'stopped' };

/** Orchestrator → server probe (gateway-child / bare-server). */
export type ProbeCommand = { type: 'reset' } | { type: 'snapshot' } | { type: 'stop' };

export interface ServerStats {
  /** Slot time → frame handed to ws.send (after the send returned). */
  sendLateness: SerialHist;
  /** Process event-loop delay beyond the 10 ms sampling interval (perf_hooks monitorEventLoopDelay), ms. */
  loopDelay: { p50: number; p99: number; max: number; mean: number };
  framesSent: number;
  /** Frames sent more than 40 ms after their slot, by the server's own accounting. */
  lateFrames: number;
  maxLatenessMs: number;
  /** Gateway only: MediaClock skipped slots (stalls > 200 ms). */
  skippedSlots: number;
  /** Inbound media messages processed. */
  mediaIn: number;
  /** Inbound media dropped (malformed / out of order / unknown), gateway only. */
  droppedIn: number;
  streams: number;
  heapUsedMb: number;
  /** Main-thread blocking by kind (gateway: storeDrain, clockTick, gc; bare: clockTick, gc): n, totalMs, p50, p99, max. */
  blocking: Record<string, Record<string, number>>;
  extra: Record<string, number>;
}

export type ProbeEvent = { type: 'listening'; port: number } | { type: 'stats'; stats: ServerStats } | { type: 'error'; message: string };

export function send(msg: unknown): void {
  if (process.send) process.send(msg);
}

/** Calls `onPause(ms)` for every garbage-collection pause of this process. */
export function observeGc(onPause: (ms: number) => void): void {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) onPause(e.duration);
  }).observe({ entryTypes: ['gc'] });
}
