/**
 * Test speech for the STT suites, generated at test time: espeak-ng (default voice en-us)
 * → SoX without dither (`-D`) → 8 kHz mono s16le, 300 ms of silence before and 600 ms after.
 * Equivalent shell: `espeak-ng -w s.wav "TEXT" && sox -D s.wav -r 8000 -c 1 -b 16 -e signed-integer
 * -t raw s.raw pad 0.3 0.6`. Cached per process.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AudioFrame, SampleRate } from '../../../media/frame.ts';
import { muLawDecode, muLawEncode } from '../../../media/g711.ts';
import type { SpeechToText, SttError, SttResult, SttSessionOptions } from '../../../speech/stt.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const cache = new Map<string, Int16Array>();
let dir: string | null = null;

export function speechPcm(text: string, rate: 8000 | 16000 = 8000): Int16Array {
  const key = `${rate}:${text}`;
  const hit = cache.get(key);
  if (hit) return hit.slice();
  dir ??= tmpDir('sb-speech-');
  const base = path.join(dir, `u${cache.size}`);
  fs.writeFileSync(`${base}.txt`, text);
  execFileSync('espeak-ng', ['-w', `${base}.wav`, '-f', `${base}.txt`], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('sox', ['-D', `${base}.wav`, '-r', String(rate), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', `${base}.raw`, 'pad', '0.3', '0.6'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const b = fs.readFileSync(`${base}.raw`);
  const pcm = new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  cache.set(key, pcm);
  return pcm.slice();
}

/** The same audio after a G.711 µ-law round trip (what a phone leg delivers). */
export function throughUlaw(pcm: Int16Array): Int16Array {
  return muLawDecode(muLawEncode(pcm));
}

export function silencePcm(ms: number, rate: SampleRate = 8000): Int16Array {
  return new Int16Array(Math.round((ms * rate) / 1000));
}

export function durationMs(pcm: Int16Array, rate: number): number {
  return (pcm.length * 1000) / rate;
}

/** First and last 20 ms frame whose mean |sample| exceeds `threshold`, in ms; null for silence. */
export function speechSpanMs(pcm: Int16Array, rate: number, threshold = 200): { startMs: number; endMs: number } | null {
  const n = (rate * 20) / 1000;
  let first = -1;
  let last = -1;
  for (let f = 0; f * n < pcm.length; f++) {
    let sum = 0;
    const end = Math.min(pcm.length, (f + 1) * n);
    for (let i = f * n; i < end; i++) sum += Math.abs(pcm[i] as number);
    if (sum / (end - f * n) > threshold) {
      if (first < 0) first = f;
      last = f;
    }
  }
  return first < 0 ? null : { startMs: first * 20, endMs: (last + 1) * 20 };
}

export function rms(pcm: Int16Array): number {
  let s = 0;
  for (let i = 0; i < pcm.length; i++) s += (pcm[i] as number) ** 2;
  return pcm.length ? Math.sqrt(s / pcm.length) : 0;
}

export function* frames(pcm: Int16Array, rate: SampleRate): Generator<AudioFrame> {
  const n = (rate * 20) / 1000;
  for (let i = 0; i < pcm.length; i += n) {
    const samples = new Int16Array(n); // last frame zero-padded, like a real leg
    samples.set(pcm.subarray(i, i + n));
    yield { samples, sampleRate: rate, timestamp: i };
  }
}

export interface SessionRun {
  results: SttResult[];
  errors: SttError[];
  closed: number;
  /** Wall time from the first write to end() resolving. */
  elapsedMs: number;
}

/** Streams `pcm` as 20 ms frames through one session and waits for end(). */
export async function runSession(stt: SpeechToText, opts: SttSessionOptions, pcm: Int16Array): Promise<SessionRun> {
  const run: SessionRun = { results: [], errors: [], closed: 0, elapsedMs: 0 };
  const session = stt.startSession(opts);
  session.on('result', (r) => run.results.push(r));
  session.on('error', (e) => run.errors.push(e));
  session.on('closed', () => run.closed++);
  const t0 = performance.now();
  for (const frame of frames(pcm, opts.sampleRate)) session.write(frame);
  await session.end();
  run.elapsedMs = performance.now() - t0;
  return run;
}
