/**
 * The provider-neutral internal audio frame.
 *
 * Every leg, whatever its wire codec, is converted to signed 16-bit linear PCM
 * frames of FRAME_MS (20 ms) at one of the supported sample rates. `timestamp`
 * is the media clock of the leg, counted in samples (at `sampleRate`) since the
 * leg started, like an RTP timestamp without the random offset.
 */

/** Sample rates the media core supports. */
export type SampleRate = 8000 | 16000 | 24000 | 48000;

/** All supported sample rates, ascending. */
export const SAMPLE_RATES: readonly SampleRate[] = [8000, 16000, 24000, 48000];

/** Duration of one frame in milliseconds. */
export const FRAME_MS = 20;

/** One 20 ms (normally) block of mono signed 16-bit PCM. */
export interface AudioFrame {
  samples: Int16Array;
  sampleRate: SampleRate;
  /** Media clock in samples since leg start. */
  timestamp: number;
}

/** Narrows an arbitrary number to a supported sample rate. */
export function isSampleRate(rate: number): rate is SampleRate {
  return rate === 8000 || rate === 16000 || rate === 24000 || rate === 48000;
}

/** Samples in one FRAME_MS frame at `rate` (160 at 8 kHz, 960 at 48 kHz). */
export function samplesPerFrame(rate: SampleRate): number {
  return (rate * FRAME_MS) / 1000;
}

/** Converts a sample count at `rate` to milliseconds. */
export function samplesToMs(samples: number, rate: SampleRate): number {
  return (samples * 1000) / rate;
}

/** A fresh all-zero frame at `rate` with media timestamp `timestamp`. */
export function silentFrame(rate: SampleRate, timestamp: number): AudioFrame {
  return { samples: new Int16Array(samplesPerFrame(rate)), sampleRate: rate, timestamp };
}

/**
 * Hands out sample arrays as views of a shared slab, so a leg that decodes a frame every 20 ms does not
 * allocate an ArrayBuffer (an off-heap backing store, tracked by the GC) per frame. A view is the caller's to
 * keep — it is never handed out again; a slab is freed once no view of it is left.
 */
export class SampleSlab {
  private slab: Int16Array;
  private used = 0;

  /** `capacity`: samples per slab (default 16 frames at 8 kHz). */
  constructor(private readonly capacity = 160 * 16) {
    this.slab = new Int16Array(capacity);
  }

  /** A fresh, zeroed array of `n` samples. */
  take(n: number): Int16Array {
    if (n > this.capacity) return new Int16Array(n);
    if (this.used + n > this.capacity) {
      this.slab = new Int16Array(this.capacity);
      this.used = 0;
    }
    const view = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return view;
  }
}
