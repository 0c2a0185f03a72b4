/**
 * The multi-leg mixer's cost per 20 ms slot (media/mixer.ts), beside a plain two-party call in the same run.
 *
 * A plain call moves one frame each way per slot; the baseline is exactly that work (two 20 ms frames copied). The
 * mixer variants run the arrangements of media/mix-matrix.ts on the same audio:
 *   mixer.two_party_ns_per_slot   caller ⇄ agent through the mixer (two copies and the matrix walk)
 *   mixer.listen_ns_per_slot      3 legs: + a supervisor who hears both (one sum of two)
 *   mixer.whisper_ns_per_slot     3 legs: the agent hears the caller and the whispering supervisor (two sums)
 *   mixer.conference_ns_per_slot  4 legs: caller, agent, human and supervisor, everyone hears everyone (four sums of three)
 * each at 8 kHz (160 samples) and 16 kHz; per slot of one call. `mixer.calls_per_core_4_legs` is how many 4-leg
 * calls one core could mix within the 20 ms slot (20 ms / cost), beside the plain calls' figure as baseline.
 * Rounds alternate the variants, so a busy machine weighs on all alike; the median round is reported.
 *
 * Env: BENCH_MIXER_SLOTS (20000 per round), BENCH_MIXER_ROUNDS (5).
 */
import { performance } from 'node:perf_hooks';
import type { SampleRate } from '../media/frame.ts';
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import { Mixer } from '../media/mixer.ts';
import { fmt, log, report, wanted } from './lib.ts';

const SLOTS = Number(process.env.BENCH_MIXER_SLOTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_MIXER_ROUNDS ?? 5);

const SUP: MixMatrix['legs'] = [
  { id: 'caller', role: 'caller' },
  { id: 'agent', role: 'agent' },
  { id: 'sup', role: 'supervisor' },
];
const ARRANGEMENTS: Record<string, MixMatrix> = {
  two_party: twoParty(),
  listen: { legs: SUP, hears: { caller: ['agent'], agent: ['caller'], sup: ['caller', 'agent'] } },
  whisper: { legs: SUP, hears: { caller: ['agent'], agent: ['caller', 'sup'], sup: ['caller', 'agent'] } },
  conference: {
    legs: [...SUP, { id: 'human', role: 'human' }],
    hears: { caller: ['agent', 'sup', 'human'], agent: ['caller', 'sup', 'human'], sup: ['caller', 'agent', 'human'], human: ['caller', 'agent', 'sup'] },
  },
};

/** 1 s of speech-like audio at `rate`, cut into frames (so every slot mixes different samples). */
function frames(rate: SampleRate, phase: number): Int16Array[] {
  const n = rate / 50;
  return Array.from({ length: 50 }, (_, f) =>
    Int16Array.from({ length: n }, (_, i) => {
      const t = (f * n + i) / rate;
      return Math.round(6000 * Math.sin(2 * Math.PI * (140 + phase * 40) * t) + 2000 * Math.sin(2 * Math.PI * 900 * t));
    }),
  );
}

/** The plain call: one frame each way, copied into the leg's outbound buffer. */
function plainSlots(rate: SampleRate): number {
  const a = frames(rate, 0);
  const b = frames(rate, 1);
  const outA = new Int16Array(rate / 50);
  const outB = new Int16Array(rate / 50);
  const t0 = performance.now();
  for (let s = 0; s < SLOTS; s++) {
    outA.set(b[s % 50]!);
    outB.set(a[s % 50]!);
  }
  return ((performance.now() - t0) * 1e6) / SLOTS;
}

function mixerSlots(rate: SampleRate, m: MixMatrix): number {
  const mixer = new Mixer(rate, m);
  const audio = m.legs.map((_, i) => frames(rate, i));
  let sink = 0;
  const t0 = performance.now();
  for (let s = 0; s < SLOTS; s++) {
    for (let l = 0; l < m.legs.length; l++) mixer.put(m.legs[l]!.id, audio[l]![s % 50]!);
    mixer.mix();
    for (let l = 0; l < m.legs.length; l++) sink += mixer.out(m.legs[l]!.id)[s % 160] ?? 0;
  }
  const ns = ((performance.now() - t0) * 1e6) / SLOTS;
  if (sink === 0.5) log('unreachable'); // keeps the outputs live
  return ns;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const rate of [8000, 16000] as const) {
  const names = Object.keys(ARRANGEMENTS);
  const figures = names.map((n) => `mixer.${n}_ns_per_slot_${rate / 1000}k`);
  if (!wanted([...figures, `mixer.calls_per_core_4_legs_${rate / 1000}k`])) continue;
  const plain: number[] = [];
  const by: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  plainSlots(rate);
  for (const n of names) mixerSlots(rate, ARRANGEMENTS[n]!); // warm-up: the JIT, not the figure
  for (let r = 0; r < ROUNDS; r++) {
    plain.push(plainSlots(rate));
    for (const n of names) by[n]!.push(mixerSlots(rate, ARRANGEMENTS[n]!));
  }
  const base = median(plain);
  log(`mixer at ${rate} Hz: plain ${fmt(base)} ns/slot; ${names.map((n) => `${n} ${fmt(median(by[n]!))}`).join(', ')}`);
  for (const n of names) {
    report({ figure: `mixer.${n}_ns_per_slot_${rate / 1000}k`, value: median(by[n]!), unit: 'ns', baseline: base, note: 'per call per 20 ms slot; baseline: a plain two-party call (one frame copied each way)' });
  }
  const conference = median(by.conference!);
  report({
    figure: `mixer.calls_per_core_4_legs_${rate / 1000}k`,
    value: Math.floor(20e6 / conference),
    unit: 'calls',
    baseline: Math.floor(20e6 / base),
    note: 'how many 4-leg calls one core could mix inside a 20 ms slot (mixing only); baseline: plain calls',
  });
}
