/**
 * Answering-machine detection on the answered party's audio: pure functions and one streaming classifier over
 * 20 ms frames of PCM16 (8 kHz or 16 kHz). No I/O, no clock: time is the frames' count since the answer.
 *
 * Per frame:
 *   level    RMS; a frame is speech when it is above max(minSpeechRms, 4 × the quietest level heard so far)
 *   tone     Goertzel powers on 400–2100 Hz in 25 Hz steps; the strongest bin's share of the frame's energy
 *            (1.0 for a pure tone on the bin) ≥ 0.6 makes it a tone frame at that frequency. Tone frames are not
 *            speech (voiced speech spreads over harmonics, a beep sits in one bin).
 *   beep     ≥ 150 ms (8 frames) of tone frames within ±50 Hz of each other; it ends at the first frame that is not.
 *
 * The decision (one per call):
 *
 *   answer ─► no speech for initialSilenceMs ─────────────────────────────────────────► unknown (silence)
 *     └─ speech ─┬─ it stops for endSilenceMs with the greeting (first to last speech) ≤ maxHumanMs ─► human
 *                ├─ the greeting passes maxHumanMs ────────────────────► machine (classified) ─┐
 *                └─ a beep, at any time ───────────────────────────────► machine ─────────────┤
 *                                                                                              ▼
 *      machine: ready once the beep has ended, or after beepWaitMs of silence past the greeting with no beep,
 *               or at timeoutMs — the agent's voicemail starts then, not over the greeting
 *   timeoutMs reached before any of these ─► machine if the party talked throughout, else unknown
 *
 * `decidedMs` is when the class was known; `readyMs` when the agent may speak (the same except for a machine).
 */

export type AnsweredBy = 'human' | 'machine' | 'unknown';

export interface AmdOptions {
  /** The longest the detector listens before deciding (ms after the answer). */
  timeoutMs: number;
  /** No speech at all this long after the answer: unknown. */
  initialSilenceMs: number;
  /** A gap this long ends a greeting. */
  endSilenceMs: number;
  /** A greeting longer than this is a machine's. */
  maxHumanMs: number;
  /** After a machine's greeting has ended: how long to wait for its beep. */
  beepWaitMs: number;
  /** A beep lasts at least this long. */
  minBeepMs: number;
  /** The floor under which a frame is never speech (PCM16 RMS). */
  minSpeechRms: number;
}

export const AMD_DEFAULTS: AmdOptions = {
  timeoutMs: 30_000,
  initialSilenceMs: 4000,
  endSilenceMs: 800,
  maxHumanMs: 2600,
  beepWaitMs: 3000,
  minBeepMs: 150,
  minSpeechRms: 400,
};

export interface AmdEvidence {
  /** Speech heard, in ms (tone frames excluded). */
  speechMs: number;
  /** First to last speech frame of the greeting, ms. */
  greetingMs: number;
  /** The longest silence after speech started, ms. */
  longestSilenceMs: number;
  /** ms after the answer at which speech started, or null. */
  speechStartMs: number | null;
  beep: { freqHz: number; startMs: number; endMs: number } | null;
  /** Why: 'short-greeting' | 'long-greeting' | 'beep' | 'silence' | 'timeout-talking' | 'timeout'. */
  reason: string;
}

export interface AmdDecision {
  by: AnsweredBy;
  /** ms after the answer when the class was known. */
  decidedMs: number;
  /** ms after the answer when the agent may speak (after the beep for a machine). */
  readyMs: number;
  evidence: AmdEvidence;
}

const FRAME_MS = 20;
const TONE_SHARE = 0.6;
const TONE_LOW_HZ = 400;
const TONE_HIGH_HZ = 2100;
const TONE_STEP_HZ = 25;
const TONE_FREQS: readonly number[] = Array.from({ length: (TONE_HIGH_HZ - TONE_LOW_HZ) / TONE_STEP_HZ + 1 }, (_, i) => TONE_LOW_HZ + i * TONE_STEP_HZ);

/** Goertzel power of `freq` over `samples` at `rate`: (A·N/2)² for a sine of amplitude A on the bin. */
export function goertzel(samples: Int16Array, rate: number, freq: number): number {
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < samples.length; i++) {
    const s0 = samples[i]! + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/** Sum of squares and RMS of a frame. */
export function frameLevel(samples: Int16Array): { energy: number; rms: number } {
  let e = 0;
  for (let i = 0; i < samples.length; i++) e += samples[i]! * samples[i]!;
  return { energy: e, rms: samples.length ? Math.sqrt(e / samples.length) : 0 };
}

/** The strongest tone in the beep band and its share of the frame's energy (1 = a pure tone on a bin). */
export function dominantTone(samples: Int16Array, rate: number): { freqHz: number; share: number } {
  const { energy } = frameLevel(samples);
  if (energy === 0) return { freqHz: 0, share: 0 };
  let best = 0;
  let freqHz = 0;
  for (const f of TONE_FREQS) {
    const p = goertzel(samples, rate, f);
    if (p > best) {
      best = p;
      freqHz = f;
    }
  }
  // A sine of amplitude A: power (A·N/2)², energy N·A²/2 → share = 2·power / (N·energy) = 1.
  return { freqHz, share: (2 * best) / (samples.length * energy) };
}

/** The streaming classifier: `push` each 20 ms frame; it returns the decision once (then null again). */
export class AmdDetector {
  private readonly o: AmdOptions;
  private frames = 0;
  private floor = Infinity;
  private speechFrames = 0;
  private firstSpeech = -1;
  private lastSpeech = -1;
  private silenceRun = 0;
  private longestSilence = 0;
  private toneRun = 0;
  private toneFreq = 0;
  private beep: AmdEvidence['beep'] = null;
  private classified: { by: AnsweredBy; at: number; reason: string } | null = null;
  private done = false;

  constructor(options: Partial<AmdOptions> = {}) {
    this.o = { ...AMD_DEFAULTS, ...options };
  }

  get elapsedMs(): number {
    return this.frames * FRAME_MS;
  }

  /** One frame (any length is taken as 20 ms); the decision when it is made, else null. */
  push(samples: Int16Array, rate: number): AmdDecision | null {
    if (this.done) return null;
    this.frames++;
    const now = this.elapsedMs;
    const { rms } = frameLevel(samples);
    const tone = rms >= this.o.minSpeechRms ? dominantTone(samples, rate) : { freqHz: 0, share: 0 };
    this.trackTone(tone.share >= TONE_SHARE ? tone.freqHz : 0, now);
    if (rms > 0) this.floor = Math.min(this.floor, rms);
    const speech = tone.share < TONE_SHARE && rms >= Math.max(this.o.minSpeechRms, 4 * this.floor);
    if (speech) {
      this.speechFrames++;
      if (this.firstSpeech < 0) this.firstSpeech = now - FRAME_MS;
      this.lastSpeech = now;
      this.silenceRun = 0;
    } else if (this.firstSpeech >= 0) {
      this.silenceRun += FRAME_MS;
      this.longestSilence = Math.max(this.longestSilence, this.silenceRun);
    }
    return this.decide(now);
  }

  private trackTone(freq: number, now: number): void {
    if (freq && this.toneRun > 0 && Math.abs(freq - this.toneFreq) <= 50) {
      this.toneRun++;
    } else {
      // A tone run ends: long enough, it was the beep (the first one counts).
      if (this.toneRun * FRAME_MS >= this.o.minBeepMs && !this.beep) {
        this.beep = { freqHz: this.toneFreq, startMs: now - FRAME_MS * (this.toneRun + 1), endMs: now - FRAME_MS };
      }
      this.toneRun = freq ? 1 : 0;
      this.toneFreq = freq;
    }
  }

  private greetingMs(): number {
    return this.firstSpeech < 0 ? 0 : this.lastSpeech - this.firstSpeech;
  }

  private decide(now: number): AmdDecision | null {
    const o = this.o;
    if (!this.classified) {
      if (this.beep || this.toneRun * FRAME_MS >= o.minBeepMs) this.classified = { by: 'machine', at: now, reason: 'beep' };
      else if (this.firstSpeech < 0 && now >= o.initialSilenceMs) return this.finish('unknown', now, now, 'silence');
      else if (this.firstSpeech >= 0 && this.greetingMs() > o.maxHumanMs) this.classified = { by: 'machine', at: now, reason: 'long-greeting' };
      else if (this.firstSpeech >= 0 && this.silenceRun >= o.endSilenceMs) return this.finish('human', now, now, 'short-greeting');
    }
    const c = this.classified;
    if (c) {
      // A machine: the agent speaks after the beep, or once no beep came within beepWaitMs of silence.
      if (this.beep) return this.finish('machine', c.at, now, c.reason);
      if (this.toneRun === 0 && this.silenceRun >= o.endSilenceMs + o.beepWaitMs) return this.finish('machine', c.at, now, c.reason);
    }
    if (now >= o.timeoutMs) {
      if (c) return this.finish('machine', c.at, now, c.reason);
      const talking = this.firstSpeech >= 0 && this.silenceRun < o.endSilenceMs;
      return this.finish(talking ? 'machine' : 'unknown', now, now, talking ? 'timeout-talking' : 'timeout');
    }
    return null;
  }

  private finish(by: AnsweredBy, decidedMs: number, readyMs: number, reason: string): AmdDecision {
    this.done = true;
    return {
      by,
      decidedMs,
      readyMs,
      evidence: {
        speechMs: this.speechFrames * FRAME_MS,
        greetingMs: this.greetingMs(),
        longestSilenceMs: this.longestSilence,
        speechStartMs: this.firstSpeech < 0 ? null : this.firstSpeech,
        beep: this.beep,
        reason,
      },
    };
  }
}

/** Runs the detector over a whole recording (PCM16 mono at `rate`), 20 ms at a time; the decision or null. */
export function classifyPcm(pcm: Int16Array, rate: number, options: Partial<AmdOptions> = {}): AmdDecision | null {
  const d = new AmdDetector(options);
  const n = (rate * FRAME_MS) / 1000;
  for (let i = 0; i + n <= pcm.length; i += n) {
    const r = d.push(pcm.subarray(i, i + n), rate);
    if (r) return r;
  }
  // The audio ran out: the rest is silence until the detector decides.
  const quiet = new Int16Array(n);
  for (let t = 0; t < 4000; t++) {
    const r = d.push(quiet, rate);
    if (r) return r;
  }
  return null;
}
