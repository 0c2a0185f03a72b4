/**
 * Shared helpers for the media unit tests: fixture loading, signal generation
 * and simple measurements (RMS, Goertzel power, zero crossings).
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../../fixtures/media/', import.meta.url));

/** Raw bytes of a fixture in test/fixtures/media. */
export function fixtureBytes(name: string): Uint8Array {
  const buf = readFileSync(FIXTURES + name);
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
}

/** A little-endian s16 raw fixture as samples (the test hosts are little-endian). */
export function fixtureS16(name: string): Int16Array {
  const bytes = fixtureBytes(name);
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
}

/** True when `sox` can be run (used to skip the live cross-check tests). */
export const hasSox = spawnSync('sox', ['--version'], { encoding: 'utf8' }).status === 0;

/** Sine of `freq` Hz with peak `amplitude`, `seconds` long. */
export function sine(freq: number, rate: number, seconds: number, amplitude = 10000, phase = 0): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate + phase));
  return out;
}

/** Sum of two sines (a DTMF-style dual tone), each with peak `amplitude`. */
export function dualTone(f1: number, f2: number, rate: number, seconds: number, amplitude = 8000): Int16Array {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    out[i] = Math.round(amplitude * (Math.sin(2 * Math.PI * f1 * t) + Math.sin(2 * Math.PI * f2 * t)));
  }
  return out;
}

/** Deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian white noise with the given RMS level in dBFS (re 32768). */
export function whiteNoise(samples: number, levelDb: number, seed = 1): Int16Array {
  const rand = prng(seed);
  const sigma = 32768 * Math.pow(10, levelDb / 20);
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    out[i] = Math.max(-32768, Math.min(32767, Math.round(g * sigma)));
  }
  return out;
}

/** Sample-wise saturating sum. */
export function mix(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(Math.max(a.length, b.length));
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.max(-32768, Math.min(32767, (a[i] ?? 0) + (b[i] ?? 0)));
  }
  return out;
}

export function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function rms(x: Int16Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] as number) ** 2;
  return Math.sqrt(sum / Math.max(1, to - from));
}

export function db(ratio: number): number {
  return 20 * Math.log10(ratio);
}

/** Amplitude of the `freq` component of x[from..to) estimated with Goertzel. */
export function toneAmplitude(x: Int16Array, freq: number, rate: number, from = 0, to = x.length): number {
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    const s0 = (x[i] as number) + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * Math.sqrt(Math.max(0, power))) / (to - from);
}

/** Number of sign changes in x[from..to). */
export function zeroCrossings(x: Int16Array, from = 0, to = x.length): number {
  let n = 0;
  for (let i = from + 1; i < to; i++) {
    if (((x[i - 1] as number) < 0) !== ((x[i] as number) < 0)) n++;
  }
  return n;
}

/** Splits `x` into chunks of pseudo-random sizes in [0, maxChunk]. */
export function randomChunks(x: Int16Array, maxChunk: number, seed: number): Int16Array[] {
  const rand = prng(seed);
  const chunks: Int16Array[] = [];
  let i = 0;
  while (i < x.length) {
    const n = Math.floor(rand() * (maxChunk + 1));
    chunks.push(x.subarray(i, Math.min(x.length, i + n)));
    i += n;
  }
  return chunks;
}
