/**
 * Agents: turn dispatch overhead and the hot swap under live calls.
 *
 * 1. Turn dispatch (bench/agents/dispatch.ts, in this process): `runTurn` of a
 *    one-`say` hook on a WorkerAgent vs the same bundle on a LocalAgent, one at
 *    a time and with 50 in flight.
 * 1b. Worker start (bench/agents/worker-start.ts, in this process): a WorkerAgent's start + init on the built
 *    worker vs the same through tsx — the part of a deploy that competes with the media loop for a core.
 * 2. Swap under live calls (bench/agents/swap.ts: a gateway child and load
 *    workers): N live Twilio calls on the `concierge` agent v1, then v2 deployed
 *    with migrate. Deploy-to-live latency, per-call switch latency (key pressed
 *    after the deploy → v2 say requested) vs the v1 turn before, worst frame gap
 *    within an utterance, late frames (/metrics) and the gateway's event-loop
 *    delay in the deploy window vs a same-length window before it.
 *    Issue targets: per-call switch ≤ 50 ms, no gap > 40 ms, with 500 calls —
 *    the default here is 100 (what a 2-CPU machine carries in real time).
 *
 * Env: BENCH_AGENT_CALLS (100), BENCH_AGENT_RAMP (25 calls/s), BENCH_AGENT_PERIOD_MS
 * (3000: each call presses a key this often), BENCH_AGENT_WINDOW_MS (max(6000,
 * 2·period)), BENCH_AGENT_WORKERS (1, 2 above 150 calls), BENCH_AGENT_TURNS (2000),
 * BENCH_AGENT_DEADLINE_S (300, hard stop).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, wanted } from './lib.ts';
import { DISPATCH_FIGURES, dispatchBench } from './agents/dispatch.ts';
import { SWAP_FIGURES, swapBench } from './agents/swap.ts';
import { WORKER_START_FIGURES, workerStartBench } from './agents/worker-start.ts';
import { killChildren } from './twilio/children.ts';

const DEADLINE_MS = Number(process.env.BENCH_AGENT_DEADLINE_S ?? 300) * 1000;
const deadline = setTimeout(() => {
  process.stderr.write(`agents bench: deadline of ${DEADLINE_MS / 1000} s passed, killing children\n`);
  killChildren();
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-agents-dispatch-'));
try {
  if (wanted(DISPATCH_FIGURES)) await dispatchBench(work);
  if (wanted(WORKER_START_FIGURES)) await workerStartBench(work);
  if (wanted(SWAP_FIGURES)) await swapBench();
  else log('swap under live calls: skipped (filter)');
} finally {
  killChildren();
  fs.rmSync(work, { recursive: true, force: true });
}
