/**
 * Turn dispatch overhead: `runTurn` of a trivial hook on a WorkerAgent (the
 * deployed-agent runtime: postMessage + zod parse both ways per turn and per
 * action) against the same definition on a LocalAgent (in-thread), in this
 * process, before any child runs.
 *
 * The agent is one esbuild bundle (`onStart` does one `ctx.say('hi')`); the
 * WorkerAgent runs the bundle file, the LocalAgent the definition imported
 * from the same file. The fake actions resolve `say` at once. A turn is timed
 * from the `runTurn` call to its promise settling (performance.now()).
 *
 * Sequential: one turn at a time. Concurrent: 50 lanes each running turns
 * back to back (50 turns always in flight, each lane its own callId); every
 * turn's latency is kept, and turns/s over the phase. Local and worker phases
 * alternate in ROUNDS rounds after a warm-up, so drift hits both alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleAgent } from '../../agents/bundle.ts';
import { WorkerAgent } from '../../agents/host/worker-agent.ts';
import { LocalAgent } from '../../agents/local.ts';
import type { AgentDefinition, SayResult } from '../../agents/sdk.ts';
import type { Agent, TurnActions, TurnInput } from '../../agents/types.ts';
import { collectGarbage, fmt, log, now, report, Samples } from '../lib.ts';

const TURNS = Math.max(2000, Number(process.env.BENCH_AGENT_TURNS ?? 2000));
const WARMUP = 500;
const CONCURRENCY = 50;
const ROUNDS = 4;

const SOURCE = `import { defineAgent } from 'switchboard/agent';
export default defineAgent({ name: 'dispatch', async onStart(ctx) { await ctx.say('hi'); } });
`;

const SAID: SayResult = { durationMs: 0, heardMs: 0, interrupted: false };
const refuse = (): Promise<never> => Promise.reject(new Error('not used by the bench'));
const ACTIONS: TurnActions = {
  say: () => Promise.resolve(SAID),
  play: () => Promise.resolve(SAID),
  gather: refuse,
  transfer: refuse,
  hangup: refuse,
  tool: refuse,
  note: () => Promise.resolve(),
  pauseRecording: refuse,
  resumeRecording: refuse,
  filler: () => Promise.resolve(),
};

const input = (callId: string, turn: number): TurnInput => ({ hook: 'onStart', callId, turn, call: { from: '+15550001', to: '+15550002' }, state: {} });

async function sequential(agent: Agent, n: number, into: Samples | null): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await agent.runTurn(input('seq', i + 1), ACTIONS);
    into?.push((now() - t0) * 1000);
  }
}

/** Returns the phase's wall time (ms). */
async function concurrent(agent: Agent, n: number, into: Samples | null): Promise<number> {
  let started = 0;
  const t0 = now();
  const lane = async (id: number): Promise<void> => {
    for (let turn = 1; started < n; turn++) {
      started++;
      const s = now();
      await agent.runTurn(input(`lane-${id}`, turn), ACTIONS);
      into?.push((now() - s) * 1000);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => lane(i)));
  return now() - t0;
}

export async function dispatchBench(work: string): Promise<void> {
  const src = path.join(work, 'dispatch.ts');
  fs.writeFileSync(src, SOURCE);
  const file = path.join(work, 'dispatch.mjs');
  fs.writeFileSync(file, (await bundleAgent(src)).code);
  const def = ((await import(pathToFileURL(file).href)) as { default: AgentDefinition }).default;
  const local = new LocalAgent(def, 'v1');
  const worker = await WorkerAgent.start({ name: 'dispatch', version: 'v1', bundlePath: file });
  try {
    log(`turn dispatch: ${TURNS} sequential and ${TURNS} concurrent (${CONCURRENCY} in flight) turns per runtime, ${ROUNDS} alternating rounds after ${WARMUP} warm-up turns each`);
    for (const a of [local, worker]) {
      await sequential(a, WARMUP, null);
      await concurrent(a, WARMUP, null);
    }
    const seq = { local: new Samples(), worker: new Samples() };
    const conc = { local: new Samples(), worker: new Samples() };
    const wall = { local: 0, worker: 0 };
    const per = Math.ceil(TURNS / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [kind, a] of [['local', local], ['worker', worker]] as const) {
        collectGarbage();
        await sequential(a, per, seq[kind]);
        collectGarbage();
        wall[kind] += await concurrent(a, per, conc[kind]);
      }
    }
    const s = { local: seq.local.summary(), worker: seq.worker.summary() };
    const c = { local: conc.local.summary(), worker: conc.worker.summary() };
    const rate = { local: (conc.local.length / wall.local) * 1000, worker: (conc.worker.length / wall.worker) * 1000 };
    log(`  sequential µs  local p50 ${fmt(s.local.p50)} p99 ${fmt(s.local.p99)} max ${fmt(s.local.max)}   worker p50 ${fmt(s.worker.p50)} p99 ${fmt(s.worker.p99)} max ${fmt(s.worker.max)} (n=${s.worker.n})`);
    log(`  ${CONCURRENCY} in flight µs local p50 ${fmt(c.local.p50)} p99 ${fmt(c.local.p99)}   worker p50 ${fmt(c.worker.p50)} p99 ${fmt(c.worker.p99)}; turns/s local ${fmt(rate.local)} worker ${fmt(rate.worker)}`);
    log(`  worker overhead per turn (p50 difference): sequential ${fmt(s.worker.p50 - s.local.p50)} µs, ${CONCURRENCY} in flight ${fmt(c.worker.p50 - c.local.p50)} µs; worker restarts ${worker.stats.restarts}`);
    const note = 'runTurn of a one-say hook (fake actions resolve at once); value = WorkerAgent, baseline = LocalAgent, same bundle, same process';
    report({ figure: 'agents.turn_p50_us', value: s.worker.p50, unit: 'us', baseline: s.local.p50, note });
    report({ figure: 'agents.turn_p99_us', value: s.worker.p99, unit: 'us', baseline: s.local.p99 });
    report({ figure: `agents.turn_c${CONCURRENCY}_p50_us`, value: c.worker.p50, unit: 'us', baseline: c.local.p50, note: `${CONCURRENCY} turns in flight (closed loop); per-turn latency` });
    report({ figure: `agents.turn_c${CONCURRENCY}_p99_us`, value: c.worker.p99, unit: 'us', baseline: c.local.p99 });
    report({ figure: `agents.turn_c${CONCURRENCY}_turns_per_s`, value: rate.worker, unit: 'turns/s', baseline: rate.local });
  } finally {
    await worker.close();
  }
}

export const DISPATCH_FIGURES = ['agents.turn_p50_us', 'agents.turn_p99_us', `agents.turn_c${CONCURRENCY}_p50_us`, `agents.turn_c${CONCURRENCY}_p99_us`, `agents.turn_c${CONCURRENCY}_turns_per_s`];
