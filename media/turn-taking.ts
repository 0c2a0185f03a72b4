/**
 * Turn-taking settings and the barge-in gate: whether the caller's speech over the agent interrupts it.
 *
 *   caller frames ─► VAD ─► speech_start while the agent speaks ─► candidate (voiced ms counted per loud frame)
 *                                                                   │
 *        voiced ≥ bargeIn.minSpeechMs (sustained speech) ─────────────┼─► 'interrupt'   (agent audio cleared now)
 *        speech_end first, voiced < minSpeechMs (an "uh-huh") ─────────┼─► 'backchannel' (agent audio keeps flowing)
 *        the agent stopped speaking before either ────────────────────┘─► nothing (an ordinary utterance)
 *
 * The gate only counts: it is fed one frame's VAD result at a time and allocates nothing. The bridge records each
 * decision as a `turn_decisions` row (schema/turn-taking.ts), so the call's events show why the agent stopped or
 * did not; a backchannel's words, once the recogniser has them, are matched against `backchannel.words` to tell
 * an acknowledgement (no agent turn) from a short real answer such as "stop" (an ordinary turn), see
 * bridge/turn-taking.ts.
 *
 * The cue comes before the decision: from the first voiced frame over the agent its audio is ducked by
 * `bargeIn.duckDb` (media/ducker.ts; 0 = off), a backchannel ramps it back, an interruption clears it. A recognised
 * stop word (`stopWords`: "stop", "wait", "hold on", "no") in an interim or final result over the agent interrupts
 * at once, before `minSpeechMs` (bridge/stop-words.ts).
 *
 * Settings are per agent: `defineAgent({ turnTaking: { bargeIn: { minSpeechMs: 500 } } })` is merged over
 * DEFAULT_TURN_TAKING (a missing field keeps its default), the way agent options are everywhere in the SDK.
 * `endOfTurn` holds the adaptive end-of-turn silences (bridge/end-of-turn.ts); `utterance.interim` asks for
 * `onUtterance` calls with the recogniser's interim text (`final: false`, bridge/turn-manager.ts).
 */

export interface TurnTakingSettings {
  bargeIn: {
    /** Caller speech interrupts the agent at all. */
    enabled: boolean;
    /** Voiced caller audio over the agent needed to interrupt it; shorter speech is a backchannel. */
    minSpeechMs: number;
    /** How far the agent's audio is ducked (dB) from the caller's first voiced frame over it; 0 = no ducking. */
    duckDb: number;
  };
  backchannel: {
    /** Acknowledgements that never start an agent turn while the agent speaks (lower case, words only). */
    words: string[];
  };
  endOfTurn: {
    /** Silence that ends a turn after a complete sentence (final text ends with . ? ! or a complete clause). */
    completeMs: number;
    /** Silence that ends a turn when nothing is known of the words (or they end neither way). */
    defaultMs: number;
    /** Silence that ends a turn after a trailing "and", "um", "so", "but"… */
    trailingMs: number;
    /** Words that leave a sentence open. */
    trailingWords: string[];
  };
  utterance: {
    /** `onUtterance` is also called with the recogniser's interim text (`final: false`); default only finals. */
    interim: boolean;
  };
  /** Words that interrupt the agent as soon as the recogniser hears one over it (interim or final), however short. */
  stopWords: string[];
}

type Sections = 'bargeIn' | 'backchannel' | 'endOfTurn' | 'utterance';

/** A partial settings object, as an agent declares it. */
export type TurnTakingOptions = {
  [K in Sections]?: Partial<TurnTakingSettings[K]>;
} & { stopWords?: string[] };

export const DEFAULT_BACKCHANNELS = [
  'uh-huh', 'uh huh', 'uhhuh', 'mhm', 'mm', 'mm-hmm', 'mm hmm', 'hmm', 'yeah', 'yes', 'yep', 'yup', 'okay', 'ok',
  'right', 'sure', 'alright', 'all right', 'i see', 'got it', 'cool', 'great', 'good', 'uh', 'um', 'ah', 'oh',
];

export const DEFAULT_STOP_WORDS = ['stop', 'wait', 'hold on', 'no'];

export const DEFAULT_TRAILING_WORDS = ['and', 'um', 'uh', 'so', 'but', 'or', 'because', 'er', 'erm', 'then', 'like', 'if', 'with', 'to', 'the', 'a'];

/**
 * The defaults: a caller must speak over the agent for 600 ms of voiced audio. On the held set (bench/vad/make-set.ts)
 * "uh huh", "yeah", "okay", "mm", "right" are voiced for 220–560 ms and sentences for 1800 ms and more, with either
 * VAD; so the agent stops about 0.6 s into a real interruption (`npm run bench -- bargein`). The turn ends after the
 * VAD's 400 ms release unless the words trail off, then after 1200 ms. Until the decision the agent is ducked by
 * 12 dB from the caller's first voiced frame: a cue the caller hears within a few frames, reversed for an "uh-huh".
 */
export const DEFAULT_TURN_TAKING: TurnTakingSettings = {
  bargeIn: { enabled: true, minSpeechMs: 600, duckDb: 12 },
  backchannel: { words: DEFAULT_BACKCHANNELS },
  endOfTurn: { completeMs: 400, defaultMs: 400, trailingMs: 1200, trailingWords: DEFAULT_TRAILING_WORDS },
  utterance: { interim: false },
  stopWords: DEFAULT_STOP_WORDS,
};

function ms(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 60_000) throw new TypeError(`turnTaking.${name} must be a number of ms between 0 and 60000`);
  return Math.round(value);
}

function words(value: unknown, name: string, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || !value.every((w) => typeof w === 'string')) throw new TypeError(`turnTaking.${name} must be a list of words`);
  return value.map((w: string) => w.trim().toLowerCase()).filter((w) => w !== '');
}

/** The agent's options merged over the defaults; a wrong type throws (reported when the agent is defined). */
export function resolveTurnTaking(opts: TurnTakingOptions | undefined | null): TurnTakingSettings {
  const d = DEFAULT_TURN_TAKING;
  const o = opts ?? {};
  if (typeof o !== 'object') throw new TypeError('turnTaking must be an object');
  const enabled = flag(o.bargeIn?.enabled, 'bargeIn.enabled', d.bargeIn.enabled);
  const duckDb = o.bargeIn?.duckDb;
  if (duckDb !== undefined && (typeof duckDb !== 'number' || !Number.isFinite(duckDb) || duckDb < 0 || duckDb > 60)) throw new TypeError('turnTaking.bargeIn.duckDb must be a number of dB between 0 and 60');
  return {
    bargeIn: { enabled, minSpeechMs: ms(o.bargeIn?.minSpeechMs, 'bargeIn.minSpeechMs', d.bargeIn.minSpeechMs), duckDb: duckDb ?? d.bargeIn.duckDb },
    backchannel: { words: words(o.backchannel?.words, 'backchannel.words', d.backchannel.words) },
    endOfTurn: {
      completeMs: ms(o.endOfTurn?.completeMs, 'endOfTurn.completeMs', d.endOfTurn.completeMs),
      defaultMs: ms(o.endOfTurn?.defaultMs, 'endOfTurn.defaultMs', d.endOfTurn.defaultMs),
      trailingMs: ms(o.endOfTurn?.trailingMs, 'endOfTurn.trailingMs', d.endOfTurn.trailingMs),
      trailingWords: words(o.endOfTurn?.trailingWords, 'endOfTurn.trailingWords', d.endOfTurn.trailingWords),
    },
    utterance: { interim: flag(o.utterance?.interim, 'utterance.interim', d.utterance.interim) },
    stopWords: words(o.stopWords, 'stopWords', d.stopWords),
  };
}

function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`turnTaking.${name} must be a boolean`);
  return value;
}

/** Lower case, punctuation dropped, spaces collapsed: "Uh-huh." → "uh-huh". */
export function normaliseWords(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s'-]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** True when every phrase of `text` is an acknowledgement ("okay", "yeah yeah", "uh-huh, right"). Empty text: false. */
export function isBackchannelText(text: string, list: readonly string[]): boolean {
  let rest = ` ${normaliseWords(text)} `;
  if (rest.trim() === '') return false;
  const phrases = [...list].sort((a, b) => b.length - a.length);
  for (const p of phrases) rest = rest.split(` ${p} `).join(' ');
  // A phrase may follow another one directly: repeat once more for "yeah yeah".
  for (const p of phrases) rest = rest.split(` ${p} `).join(' ');
  return rest.trim() === '';
}

export type GateDecision = { kind: 'interrupt'; voicedMs: number } | { kind: 'backchannel'; voicedMs: number };

/** The barge-in decision for one stretch of caller speech over the agent (see the header). */
export class BargeInGate {
  private active = false;
  private voicedMs = 0;

  constructor(private settings: Pick<TurnTakingSettings['bargeIn'], 'enabled' | 'minSpeechMs'>) {}

  set(settings: Pick<TurnTakingSettings['bargeIn'], 'enabled' | 'minSpeechMs'>): void {
    this.settings = settings;
  }

  /** True while a stretch of speech over the agent is being weighed. */
  get pending(): boolean {
    return this.active;
  }

  /** The VAD started speech; `voicedMs` = the loud audio it took to decide (its attack). */
  speechStarted(agentSpeaking: boolean, voicedMs: number): GateDecision | null {
    if (!this.settings.enabled || !agentSpeaking) return null;
    this.active = true;
    this.voicedMs = voicedMs;
    return this.check();
  }

  /** One more frame of the candidate: `loudMs` of it was voiced (0 for a quiet frame inside the speech). */
  frame(loudMs: number, agentSpeaking: boolean): GateDecision | null {
    if (!this.active) return null;
    if (!agentSpeaking) {
      this.active = false; // the agent finished first: an ordinary utterance
      return null;
    }
    this.voicedMs += loudMs;
    return this.check();
  }

  /** The candidate is settled elsewhere (a stop word interrupted): forget it; returns the voiced ms counted so far. */
  cancel(): number {
    const voiced = this.active ? this.voicedMs : 0;
    this.active = false;
    return voiced;
  }

  /** The VAD ended the speech: a candidate not yet interrupting was a backchannel. */
  speechEnded(): GateDecision | null {
    if (!this.active) return null;
    this.active = false;
    return { kind: 'backchannel', voicedMs: this.voicedMs };
  }

  private check(): GateDecision | null {
    if (this.voicedMs < this.settings.minSpeechMs) return null;
    this.active = false;
    return { kind: 'interrupt', voicedMs: this.voicedMs };
  }
}
