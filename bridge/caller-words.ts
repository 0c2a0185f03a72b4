/**
 * What the caller said, for the agent: final transcripts collect here and an
 * utterance turn (or a speech `gather`) takes them once the utterance ended,
 * waiting briefly because the recogniser lags the end of speech.
 */
export class CallerWords {
  private words: string[] = [];
  private waiter: (() => void) | null = null;

  constructor(private readonly waitMs = 1500) {}

  add(text: string): void {
    const t = text.trim();
    if (t === '') return;
    this.words.push(t);
    this.waiter?.();
  }

  /** The text heard since the last take, waiting up to `waitMs` for it; null when nothing came. */
  async take(): Promise<string | null> {
    if (this.words.length === 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.waitMs);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    const text = this.words.join(' ').trim();
    this.words = [];
    return text === '' ? null : text;
  }
}
