/**
 * The consent vocabulary shared by every STT provider's `yes-no` mode: one
 * list of accepted phrases, turned into a JSGF grammar for pocketsphinx and
 * into an exact-match classifier for open-vocabulary providers (Deepgram).
 *
 * Matching is deliberately strict: an utterance counts only if, after
 * normalisation, it IS one of the phrases. Anything else ("maybe later",
 * "what did you say", "yes please?") yields null and the caller re-prompts or
 * falls back to DTMF — a missed yes is recoverable, a false yes is not.
 */

export type ConsentAnswer = 'yes' | 'no';

export const YES_PHRASES: readonly string[] = [
  'yes',
  'yes i agree',
  'yes i agree to the recording',
  'yeah',
  'sure',
  'i agree',
];

export const NO_PHRASES: readonly string[] = ['no', 'no i do not agree', 'nope', 'i do not agree'];

/**
 * Out-of-grammar absorber for pocketsphinx: without it a closed grammar forces
 * every sound onto yes or no (measured: "maybe later" → "i agree"). One or two
 * of these words match anything that is not a consent phrase; the classifier
 * then drops it. Words that sound like a phrase word ("know") are excluded.
 */
const FILLER_WORDS: readonly string[] = [
  'what', 'did', 'say', 'maybe', 'later', 'hello', 'who', 'this', 'call', 'back', 'how', 'much', 'why', 'wait',
  'moment', 'please', 'repeat', 'sorry', 'okay', 'well', 'think', 'about', 'when', 'where', 'there', 'here', 'just',
  'like', 'time', 'good', 'right', 'thank', 'thanks', 'bye', 'hold', 'speak', 'talk', 'person', 'agent', 'human',
  'help',
];

const CONTRACTIONS: Record<string, string> = {
  "don't": 'do not',
  dont: 'do not',
};

const HESITATIONS = new Set(['uh', 'um', 'uhm', 'er', 'erm', 'ah', 'hmm', 'mm', 'oh']);

/** Lower-cases, strips punctuation and hesitations, expands "don't". */
export function normalizeUtterance(text: string): string {
  const words = text
    .toLowerCase()
    .replace(/[’`]/g, "'")
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0 && w !== "'")
    .map((w) => CONTRACTIONS[w] ?? w.replace(/^'+|'+$/g, ''))
    .filter((w) => w.length > 0 && !HESITATIONS.has(w));
  return words.join(' ');
}

const YES = new Set(YES_PHRASES);
const NO = new Set(NO_PHRASES);

/** "yes" / "no" when the whole utterance is one consent phrase, else null. */
export function classifyConsent(text: string): ConsentAnswer | null {
  const norm = normalizeUtterance(text);
  if (YES.has(norm)) return 'yes';
  if (NO.has(norm)) return 'no';
  return null;
}

/** The JSGF grammar pocketsphinx decodes `yes-no` sessions with. */
export function consentJsgf(): string {
  return [
    '#JSGF V1.0;',
    'grammar consent;',
    'public <utt> = <yes> | <no> | <other>;',
    `<yes> = ${YES_PHRASES.join(' | ')};`,
    `<no> = ${NO_PHRASES.join(' | ')};`,
    '<other> = <filler> [<filler>];',
    `<filler> = ${FILLER_WORDS.join(' | ')};`,
    '',
  ].join('\n');
}
