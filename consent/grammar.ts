/**
 * What a caller presses or says that counts for consent — the one place the keys and the phrases are decided:
 *
 *   answer (during the consent stage)    DTMF 1 = yes, 2 = no;  speech: a `yes-no` STT result ("yes" | "no",
 *                                        from the answer grammar of speech/vocabulary.ts)
 *   withdrawal (any time after)          DTMF `*` then `9` within WITHDRAWAL_WINDOW_MS;  speech: one of
 *                                        WITHDRAWAL_PHRASES, spotted by a `transcript` session (`phrases`)
 *
 * Each answer carries its evidence (the digit and its source, or the recognised words with their times on the
 * recording clock), which goes on the consent row. Pure functions: the phase (phase.ts) and the withdrawal watcher
 * (withdrawal.ts) wire them to a call's media.
 */
import type { DtmfSource } from '../media/call-leg.ts';
import type { SttResult } from '../speech/stt.ts';
import type { ConsentAnswer } from './stage.ts';

/**
 * Withdrawal mid-call: the caller saying one of these stops the recording (README "Consent, recording,
 * transcripts"). Spotted in a transcript session (`SttSessionOptions.phrases`), not classified: the phrase may sit
 * inside a longer utterance ("okay please stop the recording now").
 */
export const WITHDRAWAL_PHRASES: readonly string[] = ['stop recording', 'stop the recording'];

/** The keypad withdrawal: `*` then `9` within this many ms. */
export const WITHDRAWAL_WINDOW_MS = 3000;

/** DTMF 1 (yes) or 2 (no) during the stage, with its evidence; null for any other key. */
export function answerForDigit(digit: string, source: DtmfSource, atMs: number): ConsentAnswer | null {
  if (digit !== '1' && digit !== '2') return null;
  return { answer: digit === '1' ? 'yes' : 'no', method: 'dtmf', evidence: { digit, source, at_ms: atMs } };
}

/**
 * A `yes-no` recogniser's final "yes" / "no" as an answer, with the words and their times on the recording clock
 * (`offsetMs` = where the recogniser's clock starts on it); null for anything else.
 */
export function answerForSpeech(r: SttResult, offsetMs: number): ConsentAnswer | null {
  if (!r.isFinal || (r.text !== 'yes' && r.text !== 'no')) return null;
  return {
    answer: r.text,
    method: 'speech',
    evidence: { words: r.words.map((w) => w.word).join(' ') || r.text, at_ms: offsetMs + r.startMs, end_ms: offsetMs + r.endMs, confidence: r.confidence },
  };
}
