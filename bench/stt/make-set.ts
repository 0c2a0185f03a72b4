/**
 * The held set for the local recognisers (bench/stt.bench.ts): what a phone line carries (8 kHz, through G.711
 * µ-law and back), never used to tune a recogniser.
 *
 *   sentence   things callers say to an agent (dates, money, accounts), each in two espeak-ng voices at two speeds,
 *              and, when Flite is installed (`apt-get install flite`), in two Flite voices (recorded-speech voices,
 *              nearer a real caller than espeak-ng's formant synthesis); clean (a faint line hiss) and noisy (white
 *              noise + 50 Hz hum at about 10 dB SNR, as bench/vad/make-set.ts)
 *   answer     replies to the consent question: the answer grammar's phrases (speech/vocabulary.ts: "yes",
 *              "I agree", "no", "I do not agree" …) and non-answers ("maybe later", "what did you say") that must
 *              come out as neither yes nor no, in two voices, clean and noisy
 *
 *   clip = 400 ms of line, the words, 800 ms of line
 *
 * `makeSet()` caches the clips in os.tmpdir()/switchboard-stt-set (keyed by this file's text, espeak-ng's version and
 * whether Flite is there)
 * and returns them; `tsx bench/stt/make-set.ts` lists them. Needs espeak-ng and sox on PATH. The noise comes from a
 * seeded generator, so the set is the same on every run and machine.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { muLawDecode, muLawEncode } from '../../media/g711.ts';

export const RATE = 8000;

export type Condition = 'clean' | 'noisy';
export type Synth = 'espeak' | 'flite';

export interface SttClip {
  id: string;
  kind: 'sentence' | 'answer';
  /** The synthesiser that spoke it. */
  synth: Synth;
  condition: Condition;
  voice: string;
  /** What was said (the reference for the word error rate). */
  text: string;
  /** For answers: what the consent grammar must make of it. */
  expect: 'yes' | 'no' | null;
  samples: Int16Array;
}

/** Held sentences: no digits or contractions, so the reference needs no normalising beyond case and punctuation. */
export const SENTENCES: readonly string[] = [
  'I would like to change my appointment to Thursday afternoon',
  'Can you tell me how much I owe on my account',
  'My card was declined at the store this morning',
  'Please send the invoice to my office address',
  'I need to speak with someone about a refund',
  'The delivery was supposed to arrive last week',
];

/** Replies to the consent question and what they must come out as. */
export const ANSWERS: ReadonlyArray<{ text: string; expect: 'yes' | 'no' | null }> = [
  { text: 'yes', expect: 'yes' },
  { text: 'yeah', expect: 'yes' },
  { text: 'sure', expect: 'yes' },
  { text: 'I agree', expect: 'yes' },
  { text: 'yes I agree to the recording', expect: 'yes' },
  { text: 'no', expect: 'no' },
  { text: 'nope', expect: 'no' },
  { text: 'I do not agree', expect: 'no' },
  { text: 'maybe later', expect: null },
  { text: 'what did you say', expect: null },
];

const SENTENCE_VOICES: ReadonlyArray<{ voice: string; speed: number }> = [
  { voice: 'en-us', speed: 165 },
  { voice: 'en-gb+f3', speed: 140 },
  { voice: 'en-gb-scotland', speed: 185 },
  { voice: 'en-us+m3', speed: 150 },
];
/** Flite's built-in voices: slt (US female), rms (US male), awb (Scottish male); `stretch` > 1 is slower. */
const FLITE_VOICES: ReadonlyArray<{ voice: string; stretch: number }> = [
  { voice: 'slt', stretch: 1 },
  { voice: 'rms', stretch: 1.15 },
  { voice: 'awb', stretch: 0.9 },
];
const ANSWER_VOICES: ReadonlyArray<{ voice: string; speed: number }> = [
  { voice: 'en-us', speed: 165 },
  { voice: 'en-gb+f3', speed: 150 },
];

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 0xffffffff) * 2 - 1;
  };
}

/** Whether Flite runs here (its sentences are then part of the set). */
export function fliteInstalled(): boolean {
  try {
    execFileSync('flite', ['-lv'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Speech from espeak-ng or flite as 8 kHz PCM. */
function speak(synth: Synth, text: string, voice: string, rate: number): Int16Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stt-set-'));
  try {
    const wav = path.join(dir, 's.wav');
    const raw = path.join(dir, 's.raw');
    if (synth === 'espeak') execFileSync('espeak-ng', ['-v', voice, '-s', String(rate), '-w', wav, '--', text], { stdio: ['ignore', 'ignore', 'pipe'] });
    else execFileSync('flite', ['-voice', voice, '--setf', `duration_stretch=${rate}`, '-t', text, '-o', wav], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('sox', ['-D', wav, '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-t', 'raw', raw], { stdio: ['ignore', 'ignore', 'pipe'] });
    const b = fs.readFileSync(raw);
    return new Int16Array(b.buffer, b.byteOffset, b.length >> 1).slice();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 400 ms of line, the words (scaled by `gain`), 800 ms of line; line noise of `noise` peak; through µ-law. */
function onLine(pcm: Int16Array, seed: number, noise: number, gain: number): Int16Array {
  const before = (RATE * 400) / 1000;
  const n = before + pcm.length + (RATE * 800) / 1000;
  const r = rng(seed);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const c = i >= before && i < before + pcm.length ? (pcm[i - before] as number) * gain : 0;
    const bed = noise * r() + 0.4 * noise * Math.sin((2 * Math.PI * 50 * i) / RATE);
    out[i] = Math.max(-32768, Math.min(32767, Math.round(c + bed)));
  }
  return muLawDecode(muLawEncode(out));
}

const CONDITIONS: ReadonlyArray<{ condition: Condition; noise: number; gain: number }> = [
  { condition: 'clean', noise: 60, gain: 1 },
  { condition: 'noisy', noise: 1400, gain: 0.5 },
];

function build(flite: boolean): SttClip[] {
  const clips: SttClip[] = [];
  let seed = 1;
  const add = (kind: SttClip['kind'], synth: Synth, id: string, voice: string, pcm: Int16Array, text: string, expect: SttClip['expect']): void => {
    for (const c of CONDITIONS) {
      clips.push({ id: `${id}-${c.condition}`, kind, synth, condition: c.condition, voice, text, expect, samples: onLine(pcm, seed++, c.noise, c.gain) });
    }
  };
  const pick = <T>(list: readonly T[], i: number): T[] => [list[i % list.length]!, list[(i + 1) % list.length]!];
  SENTENCES.forEach((text, i) => {
    for (const v of pick(SENTENCE_VOICES, i)) add('sentence', 'espeak', `sentence-${i}-${v.voice}-${v.speed}`, v.voice, speak('espeak', text, v.voice, v.speed), text, null);
    if (flite) for (const v of pick(FLITE_VOICES, i)) add('sentence', 'flite', `sentence-${i}-flite-${v.voice}`, v.voice, speak('flite', text, v.voice, v.stretch), text, null);
  });
  ANSWERS.forEach((a, i) => {
    for (const v of ANSWER_VOICES) add('answer', 'espeak', `answer-${i}-${v.voice}`, v.voice, speak('espeak', a.text, v.voice, v.speed), a.text, a.expect);
    if (flite) add('answer', 'flite', `answer-${i}-flite-slt`, 'slt', speak('flite', a.text, 'slt', 1), a.text, a.expect);
  });
  return clips;
}

const CACHE = path.join(os.tmpdir(), 'switchboard-stt-set');

/** The held set (cached by the recipe: this file's text and espeak-ng's version). */
export function makeSet(): SttClip[] {
  const flite = fliteInstalled();
  const recipe = fs.readFileSync(new URL(import.meta.url), 'utf8') + execFileSync('espeak-ng', ['--version']).toString() + String(flite);
  const key = createHash('sha256').update(recipe).digest('hex').slice(0, 16);
  const file = path.join(CACHE, `${key}.json`);
  if (fs.existsSync(file)) {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Omit<SttClip, 'samples'> & { samples: string }>;
    return raw.map((c) => ({ ...c, samples: new Int16Array(new Uint8Array(Buffer.from(c.samples, 'base64')).buffer) }));
  }
  const clips = build(flite);
  fs.mkdirSync(CACHE, { recursive: true });
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(clips.map((c) => ({ ...c, samples: Buffer.from(c.samples.buffer, c.samples.byteOffset, c.samples.byteLength).toString('base64') }))));
  fs.renameSync(tmp, file);
  return clips;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const c of makeSet()) process.stdout.write(`${c.id}\t${c.synth}\t${c.condition}\t${(c.samples.length / RATE).toFixed(2)} s\t${c.text}\n`);
}
