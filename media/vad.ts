/**
 * Energy voice-activity detector over 20 ms frames.
 *
 * Each frame's mean power is measured in dBFS and compared with an adaptive
 * noise floor: a frame is "loud" when it is at least `thresholdDb` above the
 * floor AND above the absolute gate `minSpeechDb` (so a quiet line never
 * triggers however low its floor). `attackFrames` consecutive loud frames
 * start speech; `releaseFrames` consecutive quiet frames end it. While
 * speaking, frames only need to clear the threshold minus `hysteresisDb`.
 *
 * Noise floor: it falls quickly towards quieter frames and rises slowly
 * (`floorRiseDbPerFrame`, ten times slower during speech) towards louder ones,
 * so speech does not drag the floor up. Stationary sound is learned directly:
 * when every frame of the last `stationaryFrames` lies within
 * `stationarySpreadDb`, the floor jumps to that level (speech is never that
 * steady for a second; line noise, hum and tones are). It starts at
 * `initialFloorDb`.
 * Works for any frame length and sample rate; processing allocates nothing.
 */
import { SpeechGate } from './vad-gate.ts';

export type VadEvent = 'speech_start' | 'speech_end';

/** What the pipeline needs of a VAD (this energy one, or the neural one in media/vad-silero.ts). */
export interface Vad {
  /** True between 'speech_start' and 'speech_end'. */
  readonly speaking: boolean;
  /** The last frame counted as voiced (loud enough / likely speech). */
  readonly voiced: boolean;
  /** Feeds one frame (any length, `sampleRate` Hz); returns the transition it caused, if any. */
  process(frame: Int16Array, sampleRate?: number): VadEvent | null;
  /** Forgets speech state (keeps what was learned of the line). */
  reset(): void;
  /** Releases what it holds (a model session); the energy VAD holds nothing. */
  close?(): void;
}

export interface EnergyVadOptions {
  /** Margin above the noise floor for a frame to count as speech. Default 10 dB. */
  thresholdDb?: number;
  /** Absolute level (dBFS) a frame must exceed to count as speech. Default -50. */
  minSpeechDb?: number;
  /** Consecutive speech frames before 'speech_start'. Default 3 (60 ms). */
  attackFrames?: number;
  /** Consecutive non-speech frames before 'speech_end'. Default 20 (400 ms). */
  releaseFrames?: number;
  /** How much lower the threshold is once speaking. Default 3 dB. */
  hysteresisDb?: number;
  /** Starting noise floor estimate in dBFS. Default -60. */
  initialFloorDb?: number;
  /** Maximum upward floor adaptation per non-speech frame. Default 0.1 dB. */
  floorRiseDbPerFrame?: number;
  /** Window for the stationarity check, in frames. Default 50 (1 s). */
  stationaryFrames?: number;
  /** Max level spread (dB) within the window to count as stationary. Default 4. */
  stationarySpreadDb?: number;
}

/** Level reported for digital silence. */
const SILENCE_DB = -100;
const FULL_SCALE_SQ = 32768 * 32768;

/** Mean power of `frame` in dBFS (a full-scale square wave is 0 dBFS). */
export function frameLevelDb(frame: Int16Array): number {
  if (frame.length === 0) return SILENCE_DB;
  let sum = 0;
  for (let i = 0; i < frame.length; i++) {
    const s = frame[i] as number;
    sum += s * s;
  }
  const power = sum / frame.length / FULL_SCALE_SQ;
  return power > 0 ? Math.max(SILENCE_DB, 10 * Math.log10(power)) : SILENCE_DB;
}

export class EnergyVad implements Vad {
  private readonly thresholdDb: number;
  private readonly minSpeechDb: number;
  private readonly gate: SpeechGate;
  private readonly hysteresisDb: number;
  private readonly floorRise: number;
  private readonly spreadDb: number;
  /** Ring of recent frame levels for the stationarity check. */
  private readonly history: Float64Array;
  private historyLen = 0;
  private historyPos = 0;
  private floorDb: number;
  private lastLevel = SILENCE_DB;
  private lastLoud = false;

  constructor(opts: EnergyVadOptions = {}) {
    this.thresholdDb = opts.thresholdDb ?? 10;
    this.minSpeechDb = opts.minSpeechDb ?? -50;
    this.gate = new SpeechGate(opts.attackFrames, opts.releaseFrames);
    this.hysteresisDb = opts.hysteresisDb ?? 3;
    this.floorRise = opts.floorRiseDbPerFrame ?? 0.1;
    this.floorDb = opts.initialFloorDb ?? -60;
    this.history = new Float64Array(Math.max(2, Math.floor(opts.stationaryFrames ?? 50)));
    this.spreadDb = opts.stationarySpreadDb ?? 4;
  }

  /** True between 'speech_start' and 'speech_end'. */
  get speaking(): boolean {
    return this.gate.speaking;
  }

  /** The last frame was loud (above the floor by the margin, and above the gate). */
  get voiced(): boolean {
    return this.lastLoud;
  }

  /** Current noise floor estimate in dBFS. */
  get noiseFloorDb(): number {
    return this.floorDb;
  }

  /** Level of the last processed frame in dBFS. */
  get levelDb(): number {
    return this.lastLevel;
  }

  /** Feeds one frame; returns the transition it caused, if any. */
  process(frame: Int16Array): VadEvent | null {
    const level = frameLevelDb(frame);
    this.lastLevel = level;
    const margin = this.gate.speaking ? this.thresholdDb - this.hysteresisDb : this.thresholdDb;
    const gate = this.gate.speaking ? this.minSpeechDb - this.hysteresisDb : this.minSpeechDb;
    const loud = level > this.floorDb + margin && level > gate;
    this.lastLoud = loud;
    this.adaptFloor(level, loud);

    return this.gate.step(loud);
  }

  /** Forgets speech state (keeps the learned noise floor). */
  reset(): void {
    this.gate.reset();
  }

  private adaptFloor(level: number, loud: boolean): void {
    const h = this.history;
    h[this.historyPos] = level;
    this.historyPos = (this.historyPos + 1) % h.length;
    if (this.historyLen < h.length) this.historyLen++;
    if (this.historyLen === h.length) {
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < h.length; i++) {
        const v = h[i] as number;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (max - min <= this.spreadDb && max > this.floorDb) {
        this.floorDb = max;
        return;
      }
    }
    if (level < this.floorDb) {
      // Fall fast: a quieter frame is strong evidence of a lower floor.
      this.floorDb += 0.3 * (level - this.floorDb);
    } else {
      const rise = loud || this.gate.speaking ? this.floorRise / 10 : this.floorRise;
      this.floorDb += Math.min(rise, level - this.floorDb);
    }
  }
}
