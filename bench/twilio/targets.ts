/**
 * The Twilio bench's targets and capacity search (bench/twilio.bench.ts runs the phases; this decides which):
 *
 *  - runTargets: unless BENCH_TWILIO_TAPS=on already, a gateway/bare pair at BENCH_TWILIO_TARGET_CALLS (300) with
 *    recording on (the caller grants consent): the CPU target is measured there (figures twilio.taps.cN.*).
 *  - searchCapacity: when the main N fails the late-frame target, smaller N (100/250/500/1000) are run upwards until
 *    one fails; the largest that met it gets the full figure set beside a bare run at the same N. The bare server's
 *    own capacity is searched the same way, and twilio.max_calls_ratio = gateway / bare.
 */
import os from 'node:os';
import { log } from '../lib.ts';
import { CALLS, SEARCH, SEARCH_SECONDS, SECONDS, TARGET_CALLS } from './config.ts';
import { briefFigures, describe, MAX_CALLS_RATIO_TARGET, meetsLate, report, reportPhase, type Phase } from './report.ts';
import { TAPS_ON } from './shared.ts';

/** Runs one phase: the gateway or the bare server under `calls` calls for a `seconds` window. */
export type RunPhase = (kind: 'gateway' | 'bare', calls: number, seconds: number, clips: { greeting: number; reply: number }) => Promise<Phase>;

const STEPS = [1000, 500, 250, 100];

/** The recording-on pair at TARGET_CALLS (see the header). */
export async function runTargets(runPhase: RunPhase, clips: { greeting: number; reply: number }): Promise<void> {
  if (TARGET_CALLS > 0 && !TAPS_ON()) {
    // The CPU target: TARGET_CALLS calls with consent granted and the recorder on, beside the bare server.
    log(`targets: c${TARGET_CALLS} with recording on (the caller grants consent), gateway then bare`);
    process.env.BENCH_TWILIO_TAPS = 'on';
    try {
      const tg = await runPhase('gateway', TARGET_CALLS, SECONDS, clips);
      describe(tg);
      const tb = await runPhase('bare', TARGET_CALLS, SECONDS, clips);
      describe(tb);
      reportPhase(tg, tb);
    } finally {
      delete process.env.BENCH_TWILIO_TAPS;
    }
  }
}

/** The capacity search after the main pair `g` (gateway) and `b` (bare) at CALLS (see the header). */
export async function searchCapacity(runPhase: RunPhase, g: Phase, b: Phase, clips: { greeting: number; reply: number }): Promise<void> {
  let best: number | null = meetsLate(g) ? CALLS : null;
  const tried = [CALLS];
  if (best === null && SEARCH) {
    // Upwards from the smallest step, stopping at the first N that fails: cheapest when capacity is low.
    let passed: Phase | null = null;
    for (const n of STEPS.filter((x) => x < CALLS).sort((a, z) => a - z)) {
      tried.push(n);
      log(`searching: c${n} (gateway, ${SEARCH_SECONDS} s window)`);
      const p = await runPhase('gateway', n, SEARCH_SECONDS, clips);
      describe(p);
      if (!meetsLate(p)) {
        briefFigures(p);
        break;
      }
      if (passed) briefFigures(passed);
      passed = p;
      best = n;
    }
    if (passed) {
      log(`  c${passed.calls} is the largest N meeting the late-frame target; bare server at c${passed.calls} for the CPU ratio`);
      const pb = await runPhase('bare', passed.calls, SEARCH_SECONDS, clips);
      describe(pb);
      reportPhase(passed, pb);
    }
  }
  // The bare server's own capacity on this machine, searched the same way (same steps, same criterion).
  let bareBest: number | null = meetsLate(b) ? CALLS : null;
  if (bareBest === null && SEARCH) {
    for (const n of STEPS.filter((x) => x < CALLS).sort((a, z) => a - z)) {
      log(`searching: c${n} (bare, ${SEARCH_SECONDS} s window)`);
      const p = await runPhase('bare', n, SEARCH_SECONDS, clips);
      describe(p);
      if (!meetsLate(p)) break;
      bareBest = n;
    }
  }
  report({
    figure: `twilio${TAPS_ON() ? '.taps' : ''}.bare_max_calls_late_target`,
    value: bareBest ?? 0,
    unit: 'calls',
    note: 'the bare server, searched like the gateway (no frame sent > 40 ms after its slot, every call streaming)',
  });
  if (bareBest) {
    report({
      figure: `twilio${TAPS_ON() ? '.taps' : ''}.max_calls_ratio`,
      value: (best ?? 0) / bareBest,
      unit: 'x',
      target: { op: '>=', value: MAX_CALLS_RATIO_TARGET },
      note: `gateway ${best ?? 0} / bare ${bareBest}: the largest N with 0 late frames, same machine, same steps`,
    });
  }
  report({
    figure: `twilio${TAPS_ON() ? '.taps' : ''}.max_calls_late_target`,
    value: best ?? 0,
    unit: 'calls',
    target: { op: '>=', value: 1000 },
    note:
      `largest N tried (${tried.join(', ')}) with no frame sent > 40 ms after its slot (in-gateway: pacer stats and the probe's after-send clock) and every call streaming; ` +
      `search runs use a ${SEARCH_SECONDS} s window; the load generator shares the same ${os.cpus().length} CPUs`,
  });
}
