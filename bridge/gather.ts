/**
 * `gather` within an agent turn: while active, the caller's next DTMF digits
 * or utterance go to the waiting turn instead of starting new turns.
 *
 *   dtmf:   digits until `finishOn` (not included), `maxDigits` (default 1 without
 *           finishOn, 32 with it), or 3 s after the last digit
 *   speech: the end of the next utterance
 *   either: the first to arrive; nothing within `timeoutMs` (default 8 s) → timeout
 *   media closed (before or during the gather) → timeout at once
 */
import type { GatherOptions, GatherResult } from '../agents/types.ts';
import type { MediaPipeline } from '../media/pipeline.ts';

const INTER_DIGIT_MS = 3000;

export class Gatherer {
  private pending: ((r: GatherResult) => void) | null = null;
  private closed = false;

  constructor(private readonly pipeline: MediaPipeline) {}

  get active(): boolean {
    return this.pending !== null;
  }

  next(opts: GatherOptions): Promise<GatherResult> {
    if (this.pending) return Promise.reject(new Error('a gather is already waiting on this call'));
    // The media closed before this gather began listening (its turn was still writing the gather's row): nothing
    // can come, so it times out now rather than holding the turn for its whole timeout.
    if (this.closed) return Promise.resolve({ kind: 'timeout' });
    const dtmf = opts.dtmf;
    const speech = opts.speech === true;
    const finishOn = dtmf?.finishOn ?? null;
    const maxDigits = Math.max(1, Math.min(64, dtmf?.maxDigits ?? (finishOn ? 32 : 1)));
    return new Promise<GatherResult>((resolve) => {
      let digits = '';
      let timer: NodeJS.Timeout;
      const offs: Array<() => void> = [];
      const finish = (r: GatherResult): void => {
        if (this.pending !== done) return;
        clearTimeout(timer);
        for (const off of offs) off();
        this.pending = null;
        resolve(r);
      };
      const done = finish;
      const arm = (ms: number): void => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(digits ? { kind: 'dtmf', digits } : { kind: 'timeout' }), ms);
      };
      this.pending = done;
      arm(Math.max(100, Math.min(120_000, opts.timeoutMs ?? 8000)));
      if (dtmf) {
        offs.push(
          this.pipeline.on('dtmf', ({ digit }) => {
            if (finishOn && finishOn.includes(digit)) return finish({ kind: 'dtmf', digits });
            digits += digit;
            if (digits.length >= maxDigits) return finish({ kind: 'dtmf', digits });
            arm(INTER_DIGIT_MS);
          }),
        );
      }
      if (speech) offs.push(this.pipeline.on('speechEnd', (info) => !digits && finish({ kind: 'speech', text: null, durationMs: info.durationMs })));
    });
  }

  /** The call's media closed: a waiting gather times out, and so does any later one. */
  close(): void {
    this.closed = true;
    this.pending?.({ kind: 'timeout' });
  }
}
