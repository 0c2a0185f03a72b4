/**
 * The load workers' client-side figures (bench/twilio/load-worker.ts `stats`) merged into one: counters summed,
 * histograms merged, loop delays and lateness maxima taken. Used by the Twilio bench and the cluster bench.
 */
import { Hist, type ClientStats } from './shared.ts';
import type { Phase } from './report.ts';

export type MergedClients = Phase['client'] & { streaming: number; failed: number; busy: number; failures: Record<string, number>; dropped: number };

export function mergeClients(list: ClientStats[]): MergedClients {
  const sum = (f: (s: ClientStats) => number): number => list.reduce((a, s) => a + f(s), 0);
  const failures: Record<string, number> = {};
  const playFrames: Record<string, number> = {};
  for (const s of list) {
    for (const [k, v] of Object.entries(s.failures)) failures[k] = (failures[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.playFrames)) playFrames[k] = (playFrames[k] ?? 0) + v;
  }
  return {
    streaming: sum((s) => s.streaming),
    failed: sum((s) => s.failed),
    busy: sum((s) => s.busy),
    failures,
    dropped: sum((s) => s.droppedByServer),
    framesSent: sum((s) => s.framesSent),
    framesReceived: sum((s) => s.framesReceived),
    marksReceived: sum((s) => s.marksReceived),
    plays: sum((s) => s.plays),
    dtmfSent: sum((s) => s.dtmfSent),
    clears: sum((s) => s.clears),
    unexpected: sum((s) => s.unexpected),
    lateFrames: sum((s) => s.lateFrames),
    maxLatenessMs: Math.max(0, ...list.map((s) => s.maxLatenessMs)),
    lateness: Hist.from(list.map((s) => s.lateness)),
    jitter: Hist.from(list.map((s) => s.jitter)),
    turn: Hist.from(list.map((s) => s.turn)),
    webhook: Hist.from(list.map((s) => s.webhook)),
    upgrade: Hist.from(list.map((s) => s.upgrade)),
    loopDelayP99: Math.max(0, ...list.map((s) => s.loopDelay.p99)),
    loopDelayMax: Math.max(0, ...list.map((s) => s.loopDelay.max)),
    playFrames,
  };
}
