/**
 * Answering-machine detection (media/amd.ts) on the held set of generated answers (bench/amd/make-set.ts:
 * espeak-ng humans and 5–15 s voicemail greetings with beeps, several voices, line noise, through µ-law).
 *
 *   amd accuracy                  share of items classified right (unknown for silence)
 *   amd human / machine accuracy  per class
 *   amd decision p50 / p99        ms after the answer when the class was known (every item)
 *   amd human decision p50/p99    the same, humans only (how long a person waits before the agent talks)
 *   amd after-beep p50 / p99      machines: ms from the beep's true end to the moment the agent may speak
 *
 * `npm run bench -- amd`. The figures are a property of the detector on this set, not a timing of this machine.
 */
import { classifyPcm } from '../media/amd.ts';
import { percentile, report } from './lib.ts';
import { makeSet, RATE, readPcm } from './amd/make-set.ts';

const items = makeSet();
const decided: number[] = [];
const humanDecided: number[] = [];
const afterBeep: number[] = [];
const right = { human: [0, 0], machine: [0, 0], unknown: [0, 0] } as Record<string, [number, number]>;
const wrong: string[] = [];
for (const item of items) {
  const d = classifyPcm(readPcm(item), RATE);
  const by = d?.by ?? 'unknown';
  const tally = right[item.truth]!;
  tally[1]++;
  if (by === item.truth) tally[0]++;
  else wrong.push(`${item.id}: ${by} (${d?.evidence.reason}, greeting ${d?.evidence.greetingMs} ms)`);
  if (!d) continue;
  decided.push(d.decidedMs);
  if (item.truth === 'human') humanDecided.push(d.decidedMs);
  if (item.truth === 'machine' && by === 'machine' && item.beepEndMs !== null) afterBeep.push(d.readyMs - item.beepEndMs);
}
const pct = (t: [number, number]): number => (t[1] ? (100 * t[0]) / t[1] : 0);
const all: [number, number] = [right.human![0] + right.machine![0] + right.unknown![0], items.length];
for (const w of wrong) process.stdout.write(`misclassified ${w}\n`);
report({ figure: 'amd accuracy', value: pct(all), unit: '%', target: { op: '>=', value: 95, unit: '%' }, note: `${all[0]}/${all[1]} items` });
report({ figure: 'amd human accuracy', value: pct(right.human!), unit: '%', note: `${right.human![0]}/${right.human![1]}` });
report({ figure: 'amd machine accuracy', value: pct(right.machine!), unit: '%', note: `${right.machine![0]}/${right.machine![1]}` });
report({ figure: 'amd silence accuracy', value: pct(right.unknown!), unit: '%', note: `${right.unknown![0]}/${right.unknown![1]}` });
report({ figure: 'amd decision p50', value: percentile(decided, 50), unit: 'ms' });
report({ figure: 'amd decision p99', value: percentile(decided, 99), unit: 'ms' });
report({ figure: 'amd human decision p50', value: percentile(humanDecided, 50), unit: 'ms' });
report({ figure: 'amd human decision p99', value: percentile(humanDecided, 99), unit: 'ms', target: { op: '<=', value: 4000, unit: 'ms' } });
report({ figure: 'amd after-beep p50', value: percentile(afterBeep, 50), unit: 'ms' });
report({ figure: 'amd after-beep p99', value: percentile(afterBeep, 99), unit: 'ms', target: { op: '<=', value: 500, unit: 'ms' } });
