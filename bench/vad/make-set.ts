/**
 * The held set for the voice-activity detectors (media/vad.ts energy, media/vad-silero.ts silero): clips as a phone
 * line carries them (8 kHz, through G.711 µ-law and back), never used to tune either detector.
 *
 *   speech       sentences (espeak-ng, several voices), clean and with line noise (white + 50 Hz hum, ~10 dB SNR)
 *   backchannel  "uh huh", "yeah", "okay", "mm", "right" (short: must not interrupt an agent)
 *   music        music-on-hold-like: chords of tones changing every 400 ms, with tremolo, and line noise
 *   dtmf         a run of keypad tones (70 ms on, 70 ms off) and a long held key (600 ms)
 *   cough        a cough-like burst: shaped noise, 40 ms attack, 250 ms decay, twice
 *   silence      line noise only, and digital silence
 *
 * Each clip has WARMUP_MS of line noise first (a detector has been listening to the call's line for a while before
 * the caller speaks over the agent: the bench feeds it without counting), then 1 s more, and 1 s after. For speech the truth marks where the voice is (from the clean
 * clip's 20 ms frame levels). `makeSet()` caches the clips as headerless 16-bit PCM in os.tmpdir()/switchboard-vad-set
 * (keyed by the recipe) and returns them; `tsx bench/vad/make-set.ts` prints them. Needs espeak-ng and sox on PATH.
 * Noise is from a seeded generator, so the set is the same on every run and machine.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { muLawDecode, muLawEncode } from '../../media/g711.ts';

export const RATE = 8000;
const FRAME = RATE / 50;
/** Line noise the detectors hear before each clip, not scored. */
export const WARMUP_MS = 2000;

export type ClipKind = 'speech' | 'backchannel' | 'music' | 'dtmf' | 'cough' | 'silence';

export interface Clip {
  id: string;
  kind: ClipKind;
  samples: Int16Array;
  /** For speech and backchannels: the first and last voiced frame (index of 20 ms frames). */
  voiced: { first: number; last: number } | null;
}

const VOICES = ['en-us', 'en-gb', 'en-us+f3', 'en-gb-scotland'];
const SENTENCES = [
  'I would like to change my appointment to Thursday afternoon',
  'No wait, that is not what I asked for',
  'Can you tell me how much I owe on my account',
  'Hold on, my card number has changed since last month',
];
const BACKCHANNELS = ['uh huh', 'yeah', 'okay', 'mm', 'right'];

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 0xffffffff) * 2 - 1;
  };
}

function lineNoise(n: number, seed: number, amplitude = 250): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = amplitude * r() + 0.4 * amplitude * Math.sin((2 * Math.PI * 50 * i) / RATE);
  return out;
}

function espeak(text: string, voice: string): Int16Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vad-set-'));
  try {
    const wav = path.join(dir, 's.wav');
    const raw = path.join(dir, 's.raw');
    execFileSync('espeak-ng', ['-v', voice, '-w', wav, text], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('sox', ['-D', wav, '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-t', 'raw', raw], { stdio: ['ignore', 'ignore', 'pipe'] });
    const b = fs.readFileSync(raw);
    return new Int16Array(b.buffer, b.byteOffset, b.length >> 1).slice();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** First and last 20 ms frame of `pcm` louder than -40 dBFS, offset by `at` samples. */
function voicedSpan(pcm: Int16Array, at: number): { first: number; last: number } | null {
  let first = -1;
  let last = -1;
  for (let f = 0; (f + 1) * FRAME <= pcm.length; f++) {
    let sum = 0;
    for (let i = f * FRAME; i < (f + 1) * FRAME; i++) sum += (pcm[i] as number) ** 2;
    const db = 10 * Math.log10(sum / FRAME / 32768 ** 2 + 1e-12);
    if (db > -40) {
      if (first < 0) first = f;
      last = f;
    }
  }
  return first < 0 ? null : { first: first + at / FRAME, last: last + at / FRAME };
}

/** WARMUP_MS + 1 s of line noise, the content (+ noise under it), 1 s of noise; through µ-law. */
function onLine(content: Float64Array, seed: number, noise = 250): Int16Array {
  const pad = RATE + (RATE * WARMUP_MS) / 1000;
  const n = pad + content.length + RATE;
  const bed = lineNoise(n, seed, noise);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const c = i >= pad && i < pad + content.length ? (content[i - pad] as number) : 0;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(c + (bed[i] as number))));
  }
  return muLawDecode(muLawEncode(out));
}

function tones(ms: number, parts: Array<{ hz: number[]; ms: number }>, gain: number, tremoloHz = 0): Float64Array {
  const out = new Float64Array((RATE * ms) / 1000);
  let at = 0;
  let k = 0;
  while (at < out.length) {
    const p = parts[k++ % parts.length]!;
    const len = Math.min(out.length - at, (RATE * p.ms) / 1000);
    for (let i = 0; i < len; i++) {
      const t = (at + i) / RATE;
      const trem = tremoloHz ? 0.75 + 0.25 * Math.sin(2 * Math.PI * tremoloHz * t) : 1;
      let v = 0;
      for (const hz of p.hz) v += Math.sin(2 * Math.PI * hz * t);
      out[at + i] = (gain * trem * v) / Math.max(1, p.hz.length);
    }
    at += len;
  }
  return out;
}

const DTMF: Record<string, [number, number]> = { '1': [697, 1209], '5': [770, 1336], '9': [852, 1477], '0': [941, 1336], '#': [941, 1477] };

function dtmfRun(): Float64Array {
  const parts: Array<{ hz: number[]; ms: number }> = [];
  for (const d of '4111159990#'.replace(/4/g, '1')) parts.push({ hz: DTMF[d] ?? [697, 1209], ms: 70 }, { hz: [], ms: 70 });
  parts.push({ hz: DTMF['5']!, ms: 600 });
  const total = parts.reduce((n, p) => n + p.ms, 0);
  return tones(total, parts, 9000);
}

function cough(seed: number): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(RATE * 1.2);
  for (const start of [0, 0.6]) {
    const s = Math.round(start * RATE);
    let lp = 0;
    for (let i = 0; i < RATE * 0.35; i++) {
      const t = i / RATE;
      const env = t < 0.04 ? t / 0.04 : Math.exp(-(t - 0.04) / 0.08);
      lp += 0.35 * (r() - lp); // a little low-pass: a cough's energy sits low
      out[s + i] = 14000 * env * lp;
    }
  }
  return out;
}

function toFloat(pcm: Int16Array, gain = 1): Float64Array {
  return Float64Array.from(pcm, (v) => v * gain);
}

function build(): Clip[] {
  const clips: Clip[] = [];
  let seed = 1;
  SENTENCES.forEach((s, i) => {
    const voice = VOICES[i % VOICES.length]!;
    const pcm = espeak(s, voice);
    clips.push({ id: `speech-clean-${i}`, kind: 'speech', samples: onLine(toFloat(pcm), seed++, 60), voiced: voicedSpan(pcm, LEAD) });
    clips.push({ id: `speech-noisy-${i}`, kind: 'speech', samples: onLine(toFloat(pcm, 0.5), seed++, 1400), voiced: voicedSpan(pcm, LEAD) });
  });
  BACKCHANNELS.forEach((w, i) => {
    const pcm = espeak(w, VOICES[i % VOICES.length]!);
    clips.push({ id: `backchannel-${w.replace(/\s/g, '-')}`, kind: 'backchannel', samples: onLine(toFloat(pcm), seed++), voiced: voicedSpan(pcm, LEAD) });
  });
  const chords = [
    { hz: [262, 330, 392], ms: 400 },
    { hz: [294, 370, 440], ms: 400 },
    { hz: [330, 415, 494], ms: 400 },
    { hz: [220, 277, 330], ms: 400 },
  ];
  clips.push({ id: 'music-chords', kind: 'music', samples: onLine(tones(6000, chords, 7000, 5), seed++), voiced: null });
  clips.push({ id: 'music-melody', kind: 'music', samples: onLine(tones(6000, [{ hz: [523], ms: 250 }, { hz: [587], ms: 250 }, { hz: [659], ms: 500 }, { hz: [392], ms: 250 }], 8000, 6), seed++), voiced: null });
  clips.push({ id: 'dtmf-run', kind: 'dtmf', samples: onLine(dtmfRun(), seed++), voiced: null });
  clips.push({ id: 'cough-1', kind: 'cough', samples: onLine(cough(seed), seed++), voiced: null });
  clips.push({ id: 'cough-2', kind: 'cough', samples: onLine(cough(seed + 100), seed++, 800), voiced: null });
  clips.push({ id: 'silence-line', kind: 'silence', samples: onLine(new Float64Array(RATE * 4), seed++, 900), voiced: null });
  clips.push({ id: 'silence-digital', kind: 'silence', samples: new Int16Array(RATE * 4 + LEAD), voiced: null });
  return clips;
}

const LEAD = RATE + (RATE * WARMUP_MS) / 1000;
const CACHE = path.join(os.tmpdir(), 'switchboard-vad-set');

/** The held set (cached by the recipe: this file's text and espeak-ng's version). */
export function makeSet(): Clip[] {
  const recipe = fs.readFileSync(new URL(import.meta.url), 'utf8') + execFileSync('espeak-ng', ['--version']).toString();
  const key = createHash('sha256').update(recipe).digest('hex').slice(0, 16);
  const file = path.join(CACHE, `${key}.json`);
  if (fs.existsSync(file)) {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<Omit<Clip, 'samples'> & { samples: string }>;
    return raw.map((c) => ({ ...c, samples: new Int16Array(new Uint8Array(Buffer.from(c.samples, 'base64')).buffer) }));
  }
  const clips = build();
  fs.mkdirSync(CACHE, { recursive: true });
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(clips.map((c) => ({ ...c, samples: Buffer.from(c.samples.buffer, c.samples.byteOffset, c.samples.byteLength).toString('base64') }))));
  fs.renameSync(tmp, file);
  return clips;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const c of makeSet()) process.stdout.write(`${c.id}\t${c.kind}\t${(c.samples.length / RATE).toFixed(2)} s\t${c.voiced ? `voiced frames ${c.voiced.first}–${c.voiced.last}` : ''}\n`);
}
