/**
 * The closed vocabularies the STT providers decode with (generic speech: no call, policy or store here):
 *
 * - the `yes-no` session mode (stt.ts): one list of accepted answer phrases, turned into a JSGF grammar for
 *   pocketsphinx (`yesNoJsgf`) and into an exact-match classifier for open-vocabulary providers (`classifyYesNo`,
 *   Deepgram). Matching is deliberately strict: an utterance counts only if, after normalisation, it IS one of the
 *   phrases. Anything else ("maybe later", "what did you say", "yes please?") yields null and the listener
 *   re-prompts or falls back to DTMF — a missed yes is recoverable, a false yes is not.
 * - `transcript` sessions with `phrases`: `spotPhrase` marks a result that says one of them, and `phrasesJsgf` is
 *   the grammar a decoder beside the open vocabulary listens with. Which phrases matter (the consent withdrawal
 *   phrases) is the caller's business: consent/withdrawal.ts.
 */

export type YesNo = 'yes' | 'no';

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
 * of these words match anything that is not an answer phrase; the classifier
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

/** "yes" / "no" when the whole utterance is one answer phrase, else null. */
export function classifyYesNo(text: string): YesNo | null {
  const norm = normalizeUtterance(text);
  if (YES.has(norm)) return 'yes';
  if (NO.has(norm)) return 'no';
  return null;
}

/** The JSGF grammar pocketsphinx decodes `yes-no` sessions with. */
export function yesNoJsgf(): string {
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

/** The first of `phrases` that occurs in `text` as whole words (after normalisation), else null. */
export function spotPhrase(text: string, phrases: readonly string[]): string | null {
  const norm = ` ${normalizeUtterance(text)} `;
  return phrases.find((p) => norm.includes(` ${normalizeUtterance(p)} `)) ?? null;
}

/** Everyday words of a call, so the phrase grammar has somewhere else to put them. */
const CALL_WORDS: readonly string[] = [
  'i', 'a', 'the', 'to', 'is', 'my', 'you', 'want', 'would', 'like', 'pay', 'bill', 'balance', 'account', 'order',
  'appointment', 'change', 'cancel', 'card', 'number', 'name', 'yes', 'no', 'start', 'keep', 'going',
];

/** Filler words the decoder confuses with the withdrawal words (measured on espeak-ng speech: "stop" → "help"). */
const SOUNDS_LIKE_A_PHRASE = new Set(['help']);

/**
 * A JSGF grammar that recognises `phrases` and absorbs other speech (the answer grammar's fillers plus a few words callers
 * say mid-call), for a decoder that runs beside an open-vocabulary one: the open vocabulary alone does not catch
 * short commands in synthetic or telephone speech (measured: "stop recording" → "help a little relief").
 */
export function phrasesJsgf(phrases: readonly string[]): string {
  const words = new Set(phrases.flatMap((p) => normalizeUtterance(p).split(' ')));
  const filler = [...FILLER_WORDS, ...CALL_WORDS].filter((w) => !words.has(w) && !SOUNDS_LIKE_A_PHRASE.has(w));
  return [
    '#JSGF V1.0;',
    'grammar phrases;',
    'public <utt> = [please] <phrase> [please] | <other>;',
    `<phrase> = ${phrases.map((p) => normalizeUtterance(p)).join(' | ')};`,
    '<other> = <filler> [<filler>] [<filler>];',
    `<filler> = ${filler.join(' | ')};`,
    '',
  ].join('\n');
}
