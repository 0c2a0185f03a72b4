/**
 * The barge-in cue: the agent's audio is ducked the moment the caller starts speaking over it, long before the
 * barge-in gate (media/turn-taking.ts) has heard enough to tell an interruption from an "uh-huh".
 *
 *   gain 1.0 ──duck()──► ramps down over DUCK_DOWN_FRAMES (40 ms) ──► 10^(−depthDb/20)  (−12 dB ≈ 0.25)
 *                                                                          │
 *        release() (a backchannel, a blip that never became speech) ◄──────┤  ramps back over DUCK_UP_FRAMES (200 ms)
 *        reset()   (the agent's audio was cleared, or it finished)   ◄─────┘  at once: the next say starts at full level
 *
 * Counted in frames, not time: `process()` is called once per outbound 20 ms frame, and the gain moves one step per
 * frame, interpolated sample by sample inside it (no clicks). At unity it returns the frame untouched (no copy);
 * ducked or ramping it returns a scaled copy (a frame's samples may be shared with the queue they came from).
 */

/** Frames to reach the duck depth (2 × 20 ms: the caller hears the cue within the first voiced frames). */
export const DUCK_DOWN_FRAMES = 2;
/** Frames to ramp back to full level after a release. */
export const DUCK_UP_FRAMES = 10;

export class Ducker {
  /** Gain at the end of the last processed frame. */
  private gain = 1;
  private target = 1;
  /** Frames left to reach `target`. */
  private framesLeft = 0;
  private floor: number;

  constructor(private depth: number) {
    this.floor = Ducker.gainOf(depth);
  }

  /** Linear gain of a duck `depthDb` deep. */
  static gainOf(depthDb: number): number {
    return depthDb <= 0 ? 1 : 10 ** (-depthDb / 20);
  }

  /** A new depth (dB; 0 = off) for the next duck. */
  setDepth(depthDb: number): void {
    this.depth = depthDb;
    this.floor = Ducker.gainOf(depthDb);
  }

  get depthDb(): number {
    return this.depth;
  }

  /** True from `duck()` until `release()` or `reset()`. */
  get ducked(): boolean {
    return this.target < 1;
  }

  /** The gain the last processed frame ended at (1 = full level). */
  get currentGain(): number {
    return this.gain;
  }

  /** Starts ducking; true if it started now (false: off, or already ducked). */
  duck(): boolean {
    if (this.depth <= 0 || this.target < 1) return false;
    this.target = this.floor;
    this.framesLeft = DUCK_DOWN_FRAMES;
    return true;
  }

  /** Ramps back to full level. */
  release(): void {
    if (this.target === 1) return;
    this.target = 1;
    this.framesLeft = DUCK_UP_FRAMES;
  }

  /** Full level at once (nothing queued is left to ramp). */
  reset(): void {
    this.gain = 1;
    this.target = 1;
    this.framesLeft = 0;
  }

  /** One outbound frame at the current gain, moving one step towards the target. */
  process(samples: Int16Array): Int16Array {
    if (this.gain === 1 && this.target === 1) return samples;
    const from = this.gain;
    const to = this.framesLeft <= 1 ? this.target : from + (this.target - from) / this.framesLeft;
    if (this.framesLeft > 0) this.framesLeft--;
    this.gain = to;
    const n = samples.length;
    const out = new Int16Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.round((samples[i] as number) * (from + ((to - from) * (i + 1)) / n));
    return out;
  }
}
