/**
 * Helpers for the recording tests: a manual clock, tone frames, stereo PCM /
 * WAV readers, a Goertzel tone detector, ffprobe, and a tiny tmpfs for real
 * disk-full tests (skipped with a reason when mounting is not permitted).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AudioFrame, SampleRate } from '../../../media/frame.ts';
import { muLawDecode } from '../../../media/g711.ts';
import { mountTmpfs } from '../../helpers/mount.ts';
import { tmpDir } from '../../helpers/tmp.ts';

export const CALLER_HZ = 440;
export const AGENT_HZ = 1000;

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public t: number) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A phase-continuous tone generator producing 20 ms frames. */
export class ToneSource {
  private n = 0;
  constructor(
    readonly freq: number,
    readonly rate: SampleRate = 8000,
    readonly amplitude = 8000,
  ) {}
  frame(ms = 20): AudioFrame {
    const count = (this.rate * ms) / 1000;
    const samples = new Int16Array(count);
    for (let i = 0; i < count; i++) {
      samples[i] = Math.round(this.amplitude * Math.sin((2 * Math.PI * this.freq * (this.n + i)) / this.rate));
    }
    const ts = this.n;
    this.n += count;
    return { samples, sampleRate: this.rate, timestamp: ts };
  }
}

export interface Stereo {
  left: Int16Array;
  right: Int16Array;
}

/** Splits interleaved s16le stereo. */
export function splitPcm(bytes: Buffer): Stereo {
  const frames = Math.floor(bytes.length / 4);
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = bytes.readInt16LE(i * 4);
    right[i] = bytes.readInt16LE(i * 4 + 2);
  }
  return { left, right };
}

/** Decodes a stereo µ-law WAV written by recording/wav.ts (58-byte header). */
export function splitMuLawWav(wav: Buffer): Stereo {
  const dataLen = wav.readUInt32LE(54);
  const pcm = muLawDecode(wav.subarray(58, 58 + dataLen));
  const frames = pcm.length / 2;
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = pcm[2 * i] as number;
    right[i] = pcm[2 * i + 1] as number;
  }
  return { left, right };
}

/** Normalised Goertzel power of `freq` over samples[start, start+len): ~1 for a full-scale-normalised pure tone, ~0 if absent. */
export function tonePower(samples: Int16Array, start: number, len: number, freq: number, rate = 8000): number {
  const k = (2 * Math.PI * freq) / rate;
  const coeff = 2 * Math.cos(k);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = start; i < start + len && i < samples.length; i++) {
    const x = samples[i] as number;
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  if (energy === 0) return 0;
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * power) / (len * energy);
}

/** RMS of samples[start, start+len). */
export function rms(samples: Int16Array, start = 0, len = samples.length): number {
  let sum = 0;
  let n = 0;
  for (let i = start; i < start + len && i < samples.length; i++, n++) sum += (samples[i] as number) ** 2;
  return n ? Math.sqrt(sum / n) : 0;
}

/**
 * Classifies each 20 ms window of a channel: 'caller' (440 Hz), 'agent'
 * (1 kHz), 'silence' or 'other'.
 */
export function windows(samples: Int16Array): string[] {
  const out: string[] = [];
  for (let s = 0; s + 160 <= samples.length; s += 160) {
    if (rms(samples, s, 160) < 50) out.push('silence');
    else if (tonePower(samples, s, 160, CALLER_HZ) > 0.5) out.push('caller');
    else if (tonePower(samples, s, 160, AGENT_HZ) > 0.5) out.push('agent');
    else out.push('other');
  }
  return out;
}

/** Window labels for ms range [fromMs, toMs). */
export function labelsIn(labels: string[], fromMs: number, toMs: number): Set<string> {
  return new Set(labels.slice(Math.round(fromMs / 20), Math.round(toMs / 20)));
}

export interface ProbeStream {
  codec_name: string;
  sample_rate: string;
  channels: number;
  duration?: string;
  bits_per_sample?: number;
  codec_tag?: string;
}

/** `ffprobe -v error -show_streams -show_format -of json` of a buffer. */
export function ffprobe(data: Buffer, ext: string): { streams: ProbeStream[]; format: { duration?: string; format_name: string } } {
  const dir = tmpDir('sb-probe-');
  const file = path.join(dir, `probe.${ext}`);
  fs.writeFileSync(file, data);
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' });
  return JSON.parse(out) as { streams: ProbeStream[]; format: { duration?: string; format_name: string } };
}

/** Decodes any audio buffer to stereo s16le at `rate` (default 8 kHz) with ffmpeg. */
export function ffmpegDecode(data: Buffer, ext: string, rate = 8000): Buffer {
  const dir = tmpDir('sb-decode-');
  const file = path.join(dir, `in.${ext}`);
  fs.writeFileSync(file, data);
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ar', String(rate), '-ac', '2', 'pipe:1'], { maxBuffer: 1 << 28 });
}

export interface TinyFs {
  dir: string;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `size` (e.g. '64k') for a real ENOSPC, or returns a reason
 * string when that is not permitted here (not root, no CAP_SYS_ADMIN, no mount);
 * under CI a refused mount throws instead (test/helpers/mount.ts).
 */
export function mountTinyTmpfs(size: string): TinyFs | string {
  const dir = tmpDir('sb-tinyfs-');
  const refused = mountTmpfs(dir, size);
  if (refused !== null) return `${refused}; injected ENOSPC still runs`;
  return {
    dir,
    unmount: () => {
      spawnSync('umount', [dir]);
    },
  };
}

/** An errno-style error, as node:fs throws. */
export function errnoError(code: string, syscall = 'write'): NodeJS.ErrnoException {
  const messages: Record<string, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error' };
  return Object.assign(new Error(`${code}: ${messages[code] ?? 'error'}, ${syscall}`), { code, syscall });
}
