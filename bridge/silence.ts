/**
 * The silence clock of a call: armed after each agent turn, cleared by caller
 * speech, a key or the next turn; when it runs out the agent's `onSilence`
 * is queued.
 */
export class SilenceClock {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly ms: number,
    private readonly onSilence: (silentMs: number) => void,
  ) {}

  arm(): void {
    this.clear();
    if (this.ms <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onSilence(this.ms);
    }, this.ms);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
