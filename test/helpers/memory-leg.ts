/**
 * An in-memory CallLeg for unit tests of the media core: the test plays the
 * far end (pushes caller frames, echoes marks) and inspects what was sent.
 */
import { CallLeg, type LegDescription } from '../../media/call-leg.ts';

export class MemoryLeg extends CallLeg {
  readonly description: LegDescription;
  readonly sentFrames: Int16Array[] = [];
  readonly sentMarks: string[] = [];
  clears = 0;
  /** Slots with no agent audio the pipeline reported (continuousMedia legs only). */
  idles = 0;
  private ts = 0;

  constructor(reportsPlayout: boolean, continuousMedia = false) {
    super();
    this.description = { provider: 'webrtc', session: 'mem', codec: 'L16', inputRate: 8000, outputRate: 8000, reportsPlayout, resume: null, continuousMedia };
  }

  override sendIdle(): void {
    this.idles++;
  }

  sendFrame(samples: Int16Array): void {
    this.sentFrames.push(samples);
  }

  sendMark(name: string): void {
    this.sentMarks.push(name);
  }

  clear(): void {
    this.clears++;
  }

  protected doClose(): void {}

  /** The far end speaks: one 20 ms frame of a 1 kHz tone at `amplitude`, or silence. */
  speak(amplitude: number): void {
    const s = new Int16Array(160);
    for (let i = 0; i < s.length; i++) s[i] = Math.round(amplitude * Math.sin((2 * Math.PI * 1000 * (this.ts + i)) / 8000));
    this.fire('audio', { samples: s, sampleRate: 8000, timestamp: this.ts });
    this.ts += 160;
  }

  /** The far end presses a key (RFC 4733 as far as the pipeline knows). */
  press(digit: string): void {
    this.fire('dtmf', { digit, source: 'rfc4733' });
  }

  /** The far end has played up to and including mark `name`. */
  echo(name: string): void {
    this.fire('markPlayed', name);
  }

  drop(reason: string): void {
    this.remoteClosed(reason, false);
  }
}
