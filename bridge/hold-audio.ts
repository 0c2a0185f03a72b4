/**
 * Hold audio of the tenant's choice (SWITCHBOARD_HOLD_AUDIO): what a caller hears while a transfer dials and briefs
 * the person (the hold source of a call's mixer, bridge/legs.ts) — a WAV played in a loop instead of the tone
 * (hold-tone.ts).
 *
 *   SWITCHBOARD_HOLD_AUDIO = FILE                                  every call
 *                          | NUMBER=FILE|tone, …                   per number the call came in on (or was placed
 *                                                                  from), `*` for the rest; `tone` = the tone
 *
 * Each FILE is checked once, at start (the edge): a RIFF/WAVE of 16-bit PCM, mono, 8000 or 16000 Hz, at least 20 ms
 * and at most 20 MB. Anything else stops the start with one line naming the variable, the file and what is wrong
 * (convert with e.g. `ffmpeg -i in.mp3 -ac 1 -ar 8000 -c:a pcm_s16le hold.wav`). A call's loop is resampled to the
 * call's rate once, when its mixer is made.
 */
import fs from 'node:fs';
import { samplesPerFrame, type SampleRate } from '../media/frame.ts';
import { resampleAll } from '../speech/pcm.ts';
import { parseWav } from '../speech/wav.ts';
import { HoldTone } from './hold-tone.ts';

const VARIABLE = 'SWITCHBOARD_HOLD_AUDIO';
const MAX_BYTES = 20 * 1024 * 1024;

export interface HoldClip {
  samples: Int16Array;
  rate: 8000 | 16000;
}

/** The WAV's format fields (the first `fmt ` chunk), or null. */
function wavFormat(buf: Buffer): { format: number; channels: number; rate: number; bits: number } | null {
  let off = 12;
  while (off + 8 <= buf.length) {
    const size = buf.readUInt32LE(off + 4);
    if (buf.toString('ascii', off, off + 4) === 'fmt ' && off + 24 <= buf.length) {
      return { format: buf.readUInt16LE(off + 8), channels: buf.readUInt16LE(off + 10), rate: buf.readUInt32LE(off + 12), bits: buf.readUInt16LE(off + 22) };
    }
    off += 8 + size + (size % 2);
  }
  return null;
}

/** Reads and checks one hold WAV; throws an Error naming the variable, the file and what is wrong. */
export function loadHoldClip(file: string, read: (f: string) => Buffer = (f) => fs.readFileSync(f)): HoldClip {
  const bad = (why: string): Error => new Error(`${VARIABLE}: ${file}: ${why}`);
  let buf: Buffer;
  try {
    if (fs.existsSync(file) && fs.statSync(file).size > MAX_BYTES) throw bad(`larger than ${MAX_BYTES / 1024 / 1024} MB`);
    buf = read(file);
  } catch (err) {
    if ((err as Error).message.startsWith(VARIABLE)) throw err;
    throw bad(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const need = 'expected a WAV of 16-bit PCM, mono, 8000 or 16000 Hz';
  let samples: Int16Array;
  try {
    samples = parseWav(buf).samples;
  } catch (err) {
    throw bad(`${(err as Error).message}; ${need}`);
  }
  const fmt = wavFormat(buf);
  if (!fmt || fmt.format !== 1 || fmt.bits !== 16) throw bad(`not 16-bit PCM; ${need}`);
  if (fmt.channels !== 1) throw bad(`${fmt.channels} channels; ${need}`);
  if (fmt.rate !== 8000 && fmt.rate !== 16000) throw bad(`${fmt.rate} Hz; ${need}`);
  if (samples.length < samplesPerFrame(fmt.rate)) throw bad('shorter than 20 ms');
  return { samples, rate: fmt.rate };
}

/** Which hold audio each call gets (see the header). */
export class HoldAudio {
  private constructor(
    private readonly byNumber: ReadonlyMap<string, HoldClip | null>,
    private readonly fallback: HoldClip | null,
  ) {}

  static none(): HoldAudio {
    return new HoldAudio(new Map(), null);
  }

  /** Parses the variable and loads every file it names; throws naming the variable (the start stops). */
  static load(text: string | undefined, read?: (f: string) => Buffer): HoldAudio {
    const value = (text ?? '').trim();
    if (value === '') return HoldAudio.none();
    const clip = (v: string): HoldClip | null => (v.toLowerCase() === 'tone' ? null : loadHoldClip(v, read));
    if (!value.includes('=')) return new HoldAudio(new Map(), clip(value));
    const byNumber = new Map<string, HoldClip | null>();
    let fallback: HoldClip | null = null;
    for (const part of value.split(',')) {
      const eq = part.indexOf('=');
      const key = part.slice(0, eq).trim();
      const file = part.slice(eq + 1).trim();
      if (eq < 0 || key === '' || file === '') throw new Error(`${VARIABLE}: "${part.trim()}" is not NUMBER=FILE, NUMBER=tone or *=FILE`);
      if (key === '*') fallback = clip(file);
      else if (/^\+[1-9]\d{1,14}$/.test(key) || /^sips?:/i.test(key)) byNumber.set(key, clip(file));
      else throw new Error(`${VARIABLE}: "${key}" is not an E.164 number (+ and country code), a SIP URI or *`);
    }
    return new HoldAudio(byNumber, fallback);
  }

  /** The clip for a call on `number` (null: the tone). */
  forNumber(number: string | null): HoldClip | null {
    if (number !== null && this.byNumber.has(number)) return this.byNumber.get(number) ?? null;
    return this.fallback;
  }

  /** How it is set, for the start's log line. */
  describe(): string {
    const n = [...this.byNumber.values()].filter((c) => c !== null).length + (this.fallback ? 1 : 0);
    return n === 0 ? 'tone' : `${n} WAV file${n === 1 ? '' : 's'}`;
  }
}

/** A clip played in a loop, 20 ms at a time at the call's rate (a view reused by the next call). */
export class HoldLoop {
  private readonly samples: Int16Array;
  private readonly frame: Int16Array;
  private at = 0;

  constructor(clip: HoldClip, rate: SampleRate) {
    this.samples = clip.rate === rate ? clip.samples : resampleAll(clip.samples, clip.rate, rate);
    this.frame = new Int16Array(samplesPerFrame(rate));
  }

  next(): Int16Array {
    for (let i = 0; i < this.frame.length; i++) {
      this.frame[i] = this.samples[this.at] ?? 0;
      this.at = (this.at + 1) % this.samples.length;
    }
    return this.frame;
  }
}

/** The hold source of a call's mixer: its clip in a loop, or the tone. */
export function holdSource(clip: HoldClip | null, rate: SampleRate): { next(): Int16Array } {
  return clip ? new HoldLoop(clip, rate) : new HoldTone(rate);
}
