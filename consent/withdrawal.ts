/**
 * Withdrawal of a granted consent mid-call, by keypad or by voice (the keys and phrases: grammar.ts):
 *
 *   DTMF `*`, then `9` within WITHDRAWAL_WINDOW_MS ─┐
 *   a transcript result saying a WITHDRAWAL_PHRASE ─┴─► onWithdraw(method, evidence)
 *
 * The watcher only recognises; what withdrawing does (consent_withdrawn, the recording paused, transcription
 * stopped) is the call's (bridge/consent-manager.ts).
 */
import type { MediaPipeline } from '../media/pipeline.ts';
import type { SttResult } from '../speech/stt.ts';
import { WITHDRAWAL_WINDOW_MS } from './grammar.ts';

export type WithdrawalMethod = 'dtmf' | 'speech';

/** Watches DTMF for the withdrawal sequence `*9` (within 3 s); returns the unsubscribe. */
export function watchWithdrawal(media: Pick<MediaPipeline, 'on'>, onWithdraw: (evidence: Record<string, unknown>) => void, now: () => number = Date.now): () => void {
  let starAt = 0;
  return media.on('dtmf', ({ digit, source }) => {
    const t = now();
    if (digit === '*') starAt = t;
    else if (digit === '9' && starAt > 0 && t - starAt <= WITHDRAWAL_WINDOW_MS) {
      starAt = 0;
      onWithdraw({ sequence: '*9', source });
    } else starAt = 0;
  });
}

/**
 * The evidence of a spoken withdrawal in a final transcript result (one of the session's `phrases` said), with its
 * time on the recording clock (`offsetMs` = where the recogniser's clock starts on it); null if it is none.
 */
export function spokenWithdrawal(r: SttResult, offsetMs: number): Record<string, unknown> | null {
  if (!r.isFinal || !r.phrase) return null;
  return { words: r.text, at_ms: offsetMs + r.startMs };
}
