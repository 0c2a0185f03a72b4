/**
 * Pieces shared by the agent swap benchmark's processes (bench/agents.bench.ts
 * orchestrates; gateway-child.ts and load-worker.ts are its children): one
 * clock for all of them, event-loop delay slices, and the IPC shapes.
 *
 * Clock: `abs()` = performance.timeOrigin + performance.now(), i.e. wall-clock
 * milliseconds with sub-millisecond resolution, comparable across processes
 * on one machine (each process's timeOrigin is taken from the same system
 * clock). Windows, DTMF send times and say-request times all use it.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export const abs = (): number => performance.timeOrigin + performance.now();

/** The digit every call presses; the concierge answers any digit but 0, 8 and 9 with "<version> key <n>.". */
export const PRESS_DIGIT = '5';
/** The answer to the opt-in consent prompt: 2 = decline, so the call goes on unrecorded (no recorder/transcriber taps). */
export const CONSENT_DIGIT = '2';
/** A press is sent only when the call has heard nothing for this long (the previous turn has finished). */
export const IDLE_MS = 300;
/** A gap above this between two frames of one play is a stall the caller hears (the threshold). */
export const GAP_MS = 40;

export type Window = [start: number, end: number];

/**
 * Event-loop delay (perf_hooks.monitorEventLoopDelay, 10 ms resolution) cut
 * into slices of `sliceMs`: the max of each slice, minus the 10 ms sampling
 * interval the histogram includes. A window's max is the max over the slices
 * that overlap it (so its edges are fuzzy by one slice).
 */
export class LoopSlices {
  private readonly eld = monitorEventLoopDelay({ resolution: 10 });
  private readonly ends: number[] = [];
  private readonly maxes: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sliceMs = 100) {
    this.eld.enable();
    this.timer = setInterval(() => this.cut(), sliceMs);
    this.timer.unref();
  }

  private cut(): void {
    this.ends.push(abs());
    this.maxes.push(this.eld.count > 0 ? Math.max(0, this.eld.max / 1e6 - 10) : 0);
    this.eld.reset();
  }

  /** Max delay (ms) over each window. */
  maxIn(windows: Window[]): number[] {
    return windows.map(([a, b]) => {
      let m = 0;
      for (let i = 0; i < this.ends.length; i++) {
        const end = this.ends[i] as number;
        if (end > a && end - this.sliceMs < b) m = Math.max(m, this.maxes[i] as number);
      }
      return m;
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.eld.disable();
  }
}

/** Orchestrator → load worker. */
export type LoadCommand =
  | {
      type: 'start';
      /** Global call indices this worker places (0..total-1). */
      calls: number[];
      total: number;
      intervalMs: number;
      startDelayMs: number;
      baseUrl: string;
      authToken: string;
      to: string;
      runId: string;
    }
  /** Start pressing PRESS_DIGIT: call i at startAt + (i / total) * periodMs, then every periodMs (skipped while it hears a play). */
  | { type: 'press'; startAt: number; periodMs: number }
  | { type: 'halt' }
  | { type: 'snapshot'; windows: Window[] }
  | { type: 'stop' };

export interface LoadSnapshot {
  streaming: number;
  failed: number;
  failures: Record<string, number>;
  droppedByServer: number;
  /** callSid by global call index. */
  sids: Record<number, string>;
  /** [call index, abs time the DTMF was handed to ws.send]. */
  presses: Array<[number, number]>;
  skippedPresses: number;
  plays: number;
  clears: number;
  /** Per window: every gap (ms) between consecutive frames of one play whose later frame arrived in the window. */
  gaps: number[][];
  /** Gaps > 30 ms anywhere: [abs arrival, gap ms, call index]. */
  bigGaps: Array<[number, number, number]>;
  /** This worker's own event-loop delay max per window (generator stalls show up as client-side gaps too). */
  loopMax: number[];
}

export type LoadEvent =
  | { type: 'progress'; streaming: number; failed: number }
  | { type: 'ready'; streaming: number; failed: number }
  | { type: 'snapshot'; snap: LoadSnapshot }
  | { type: 'stopped' };

/** Orchestrator → gateway child. */
export type GatewayCommand = { type: 'greeted' } | { type: 'report'; windows: Window[] } | { type: 'stop' };

export type GatewayEvent =
  | { type: 'listening'; port: number }
  | { type: 'greeted'; calls: number }
  /** says: [provider call sid, text, abs time the bridge submitted agent_action_requested]; loopMax per window; gcs: [abs end, ms]. */
  | { type: 'report'; says: Array<[string, string, number]>; loopMax: number[]; gcs: Array<[number, number]>; clockSkipped: number };

export function send(msg: unknown): void {
  if (process.send) process.send(msg);
}
