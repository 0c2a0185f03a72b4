/**
 * The attack/release gate every VAD ends in (media/vad.ts energy, media/vad-silero.ts): a per-frame voiced/unvoiced
 * verdict becomes speech events. `attackFrames` consecutive voiced frames start speech, `releaseFrames` consecutive
 * unvoiced frames end it.
 *
 *   quiet ──(attackFrames voiced in a row)──► speaking  →  'speech_start'
 *   speaking ──(releaseFrames unvoiced in a row)──► quiet  →  'speech_end'
 *
 * Pure state over frames: no clock, no I/O.
 */
import type { VadEvent } from './vad.ts';

export class SpeechGate {
  private isSpeaking = false;
  private voicedRun = 0;
  private quietRun = 0;
  private readonly attackFrames: number;
  private readonly releaseFrames: number;

  constructor(attackFrames = 3, releaseFrames = 20) {
    this.attackFrames = Math.max(1, Math.floor(attackFrames));
    this.releaseFrames = Math.max(1, Math.floor(releaseFrames));
  }

  /** True between 'speech_start' and 'speech_end'. */
  get speaking(): boolean {
    return this.isSpeaking;
  }

  /** One frame's verdict; returns the transition it caused, if any. */
  step(voiced: boolean): VadEvent | null {
    if (voiced) {
      this.voicedRun++;
      this.quietRun = 0;
      if (!this.isSpeaking && this.voicedRun >= this.attackFrames) {
        this.isSpeaking = true;
        return 'speech_start';
      }
    } else {
      this.quietRun++;
      this.voicedRun = 0;
      if (this.isSpeaking && this.quietRun >= this.releaseFrames) {
        this.isSpeaking = false;
        return 'speech_end';
      }
    }
    return null;
  }

  /** Forgets the speech state. */
  reset(): void {
    this.isSpeaking = false;
    this.voicedRun = 0;
    this.quietRun = 0;
  }
}
