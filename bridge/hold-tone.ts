/**
 * What a caller on hold hears: a soft tone, 440 Hz for 400 ms then 600 ms of silence, over and over (the hold source
 * of a call's mixer, bridge/legs.ts). One frame at a time at the call's rate; the frame buffer is reused (the mixer
 * copies what it is given).
 *
 *   |▁▂▃▂▁ 440 Hz 400 ms ▁▂▃▂▁|          silence 600 ms          |▁▂▃▂▁ …
 */
import { samplesPerFrame, type SampleRate } from '../media/frame.ts';

const TONE_HZ = 440;
const ON_MS = 400;
const PERIOD_MS = 1000;
/** About -18 dBFS: audible, not loud. */
const AMPLITUDE = 4000;

export class HoldTone {
  private readonly frame: Int16Array;
  private n = 0;

  constructor(private readonly rate: SampleRate) {
    this.frame = new Int16Array(samplesPerFrame(rate));
  }

  /** The next 20 ms of the tone (a view reused by the next call). */
  next(): Int16Array {
    const { frame, rate } = this;
    const period = (rate * PERIOD_MS) / 1000;
    const on = (rate * ON_MS) / 1000;
    for (let i = 0; i < frame.length; i++) {
      const k = (this.n + i) % period;
      frame[i] = k < on ? Math.round(AMPLITUDE * Math.sin((2 * Math.PI * TONE_HZ * k) / rate)) : 0;
    }
    this.n = (this.n + frame.length) % period;
    return frame;
  }
}
