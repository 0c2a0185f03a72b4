/**
 * What the caller said, for the agent: each turn gets the words of its own utterance, however late the recogniser.
 *
 * Positions are ms of caller audio written to the recogniser (`audio()`), the clock of its results' `startMs` /
 * `endMs`. The pipeline's VAD marks each utterance's end (`utteranceEnded()`, at the position the VAD released).
 *
 *   utterance ends ─► turn takes ─► waits until the recogniser has reported through that end
 *                                    (a final result with endMs ≥ end − END_SLACK_MS, or one that starts past it)
 *                                    or the wait bound passes ─► words that started before the end are the turn's
 *
 * A result that arrives after its turn gave up is never handed to a later turn (the transcript row is still written;
 * only the agent's input skips it), so an agent can no longer answer the previous sentence. The wait bound adapts to
 * the recogniser: it is a multiple of the slowest of its recent latencies (utterance end → covering result), between
 * `minWaitMs` and `maxWaitMs`; a turn that gave up counts as a latency of its bound, and the late result then
 * arriving counts as what it really took, so a slow recogniser raises the bound for the next turn.
 */

/** The VAD releases 400 ms after speech ends; a result ending within this much before the release covers it. */
export const END_SLACK_MS = 700;

export interface CallerWordsOptions {
  /** Bound before any latency was measured. Default 5000. */
  initialWaitMs?: number;
  /** Never wait less than this (a recogniser that says nothing for noise). Default 1500. */
  minWaitMs?: number;
  /** Never wait more than this. Default 12000. */
  maxWaitMs?: number;
  /** Monotonic ms (tests). */
  now?: () => number;
}

interface Heard {
  text: string;
  startMs: number;
}

interface Mark {
  /** Position of the utterance's end (ms of audio). */
  pos: number;
  /** now() when the VAD released. */
  at: number;
  covered: boolean;
}

const LATENCY_WINDOW = 8;

export class CallerWords {
  private readonly opts: Required<CallerWordsOptions>;
  private attached = false;
  private heardMs = 0;
  /** Furthest position the recogniser has reported on (max endMs of a final result). */
  private reportedMs = -1;
  private words: Heard[] = [];
  /** Utterance ends not yet covered by a result, kept for measuring latency (at most 2 × maxWaitMs old). */
  private marks: Mark[] = [];
  /** Position of the last utterance end (-1: none yet). */
  private lastEndMs = -1;
  /** Everything before this position was offered to a turn already. */
  private takenUntil = 0;
  private readonly latencies: number[] = [];
  private waiter: (() => void) | null = null;
  /** Results that came after their turn gave up (for the log and tests). */
  lateDropped = 0;

  constructor(opts: CallerWordsOptions = {}) {
    this.opts = { initialWaitMs: 5000, minWaitMs: 1500, maxWaitMs: 12_000, now: () => performance.now(), ...opts };
  }

  /** A recogniser now hears the caller (before: no words, takes return null at once). */
  attach(): void {
    this.attached = true;
  }

  /** The recogniser stopped (consent withdrawn, media gone): takes return null at once. */
  detach(): void {
    this.attached = false;
    this.waiter?.();
  }

  /** `ms` more caller audio went to the recogniser. */
  audio(ms: number): void {
    this.heardMs += ms;
  }

  /** The VAD heard the caller stop, now. */
  utteranceEnded(): void {
    if (!this.attached) return;
    this.lastEndMs = this.heardMs;
    this.marks.push({ pos: this.heardMs, at: this.opts.now(), covered: false });
  }

  /** A final result (empty text too: it still says how far the recogniser got). */
  add(result: { text: string; startMs: number; endMs: number }): void {
    this.reportedMs = Math.max(this.reportedMs, result.endMs, result.startMs);
    const now = this.opts.now();
    for (const m of this.marks) {
      if (this.covers(m.pos)) {
        m.covered = true;
        this.noteLatency(now - m.at);
      }
    }
    this.marks = this.marks.filter((m) => !m.covered && now - m.at <= 2 * this.opts.maxWaitMs);
    const text = result.text.trim();
    if (text !== '') {
      if (result.startMs < this.takenUntil) this.lateDropped++;
      else this.words.push({ text, startMs: result.startMs });
    }
    this.waiter?.();
  }

  /** The words heard so far and not yet taken (final results only), without taking them; null when none. */
  peek(): string | null {
    if (!this.attached) return null;
    const words = this.words.filter((w) => w.startMs >= this.takenUntil).map((w) => w.text);
    return words.length === 0 ? null : words.join(' ');
  }

  /** The current wait bound (ms). */
  get waitBoundMs(): number {
    if (this.latencies.length === 0) return this.opts.initialWaitMs;
    const slowest = Math.max(...this.latencies);
    return Math.min(this.opts.maxWaitMs, Math.max(this.opts.minWaitMs, Math.ceil(slowest * 1.5) + 250));
  }

  /**
   * The words of every utterance ended so far and not yet taken, waiting for the recogniser to report through the
   * last one's end (bounded by `waitBoundMs`); null when none came.
   */
  async take(): Promise<string | null> {
    if (!this.attached) return null;
    const until = this.lastEndMs > this.takenUntil ? this.lastEndMs : this.heardMs;
    const bound = this.waitBoundMs;
    const deadline = this.opts.now() + bound;
    while (this.attached && !this.covers(until)) {
      const left = deadline - this.opts.now();
      if (left <= 0) {
        this.noteLatency(bound);
        break;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    const mine = this.words.filter((w) => w.startMs < until);
    this.words = this.words.filter((w) => w.startMs >= until);
    this.takenUntil = Math.max(this.takenUntil, until);
    const text = mine.map((w) => w.text).join(' ').trim();
    return text === '' ? null : text;
  }

  private covers(pos: number): boolean {
    return this.reportedMs >= pos - END_SLACK_MS;
  }

  private noteLatency(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
  }
}
