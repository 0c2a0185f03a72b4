/**
 * The silence clock of a call: armed after each agent turn, cleared by caller
 * speech, a key or the next turn; when it runs out the agent's `onSilence`
 * is queued. The timer is guarded (media/guard.ts): an `onSilence` that throws
 * goes to `onError` (the call logs it), never to the event loop, where it
 * would end the process and every call on it.
 */
import { guarded } from '../media/guard.ts';

export class SilenceClock {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly ms: number,
    private readonly onSilence: (silentMs: number) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  arm(): void {
    this.clear();
    if (this.ms <= 0) return;
    this.timer = setTimeout(
      guarded(() => {
        this.timer = null;
        this.onSilence(this.ms);
      }, this.onError),
      this.ms,
    );
    this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
