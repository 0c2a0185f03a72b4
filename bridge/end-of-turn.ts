/**
 * Adaptive end of turn: how much silence ends the caller's turn depends on how their words ended.
 *
 *   words so far (final STT text)        silence that ends the turn (per agent, `turnTaking.endOfTurn`)
 *   "…I'd like to book a table."    ─►   completeMs  (default 400: ends at the VAD's release)
 *   "…book a table for two"         ─►   completeMs  (a complete clause: 3+ words, no trailing word)
 *   "…for two and" / "um" / "so"    ─►   trailingMs  (default 1200: the caller is still thinking)
 *   nothing known yet               ─►   defaultMs   (default 400)
 *
 * The VAD releases after its own silence (the pipeline's `speechEnd`, 400 ms by default, or the shortest of these
 * settings when an agent sets one lower); this gate then waits the rest — target − release — before the turn is
 * taken, and caller speech starting again in the meantime cancels it (the utterance goes on). The words are the
 * recogniser's final results that arrived by the VAD's release (bridge/caller-words.ts `peek`); a recogniser that
 * only reports after the utterance (pocketsphinx) leaves them unknown, so its turns end after `defaultMs`.
 * Owns: the classification (pure, unit-tested) and the one pending wait.
 */
import { normaliseWords, type TurnTakingSettings } from '../media/turn-taking.ts';

export type Ending = 'complete' | 'trailing' | 'unknown';

/** How `text` ends: a full stop / question / exclamation or a complete clause, a trailing word, or nothing known. */
export function classifyEnding(text: string | null, trailingWords: readonly string[]): Ending {
  const raw = (text ?? '').trim();
  if (raw === '') return 'unknown';
  const words = normaliseWords(raw).split(' ').filter((w) => w !== '');
  if (words.length === 0) return 'unknown';
  const last = words[words.length - 1] as string;
  if (/(\.\.\.|…|,|;|:|-)$/.test(raw)) return 'trailing';
  if (trailingWords.includes(last)) return 'trailing';
  if (/[.?!]["')\]]*$/.test(raw)) return 'complete';
  return words.length >= 3 ? 'complete' : 'unknown';
}

/** The silence (ms) that ends a turn whose words so far are `text`. */
export function endOfTurnSilenceMs(text: string | null, s: TurnTakingSettings['endOfTurn']): number {
  const ending = classifyEnding(text, s.trailingWords);
  return ending === 'complete' ? s.completeMs : ending === 'trailing' ? s.trailingMs : s.defaultMs;
}

/** The silence the VAD itself should release after, for these settings (never more than today's 400 ms). */
export function vadReleaseMs(s: TurnTakingSettings['endOfTurn'], defaultReleaseMs = 400): number {
  return Math.max(100, Math.min(defaultReleaseMs, s.completeMs, s.defaultMs, s.trailingMs));
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: Timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as NodeJS.Timeout) };

/** Holds a turn's end until its adaptive silence has passed (see the header). */
export class EndOfTurnGate {
  private pending: unknown = null;

  constructor(
    private settings: TurnTakingSettings['endOfTurn'],
    /** The silence the VAD already waited before `speechEnded`. */
    private readonly releaseMs: number,
    private readonly timers: Timers = REAL_TIMERS,
  ) {}

  set(settings: TurnTakingSettings['endOfTurn']): void {
    this.settings = settings;
  }

  /** The VAD released: `end` runs now or after the rest of the silence this text needs; returns that rest (ms). */
  speechEnded(text: string | null, end: () => void): number {
    this.cancel();
    const rest = Math.max(0, endOfTurnSilenceMs(text, this.settings) - this.releaseMs);
    if (rest === 0) {
      end();
      return 0;
    }
    this.pending = this.timers.set(() => {
      this.pending = null;
      end();
    }, rest);
    return rest;
  }

  /** The caller speaks again: the turn has not ended (true if a wait was cancelled). */
  speechStarted(): boolean {
    return this.cancel();
  }

  close(): void {
    this.cancel();
  }

  private cancel(): boolean {
    if (this.pending === null) return false;
    this.timers.clear(this.pending);
    this.pending = null;
    return true;
  }
}
