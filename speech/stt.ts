/**
 * Speech-to-text behind one interface; providers live beside it (pocketsphinx
 * local, Deepgram cloud). A session takes 20 ms PCM16 frames and emits results
 * whose times are ms since the session's first sample (the caller maps them to
 * the recording clock). The core never imports a provider: the gateway picks
 * one by `SWITCHBOARD_STT`.
 */
import type { AudioFrame } from '../media/frame.ts';

export interface SttWord {
  word: string;
  startMs: number;
  endMs: number;
}

export interface SttResult {
  text: string;
  /** Final for this utterance (interim results may precede it). */
  isFinal: boolean;
  startMs: number;
  endMs: number;
  /** 0..1, or null when the provider gives none. */
  confidence: number | null;
  words: SttWord[];
  /** One of the session's `phrases`, when this result is that phrase being said. */
  phrase?: string;
}

/**
 * `transcript`: open vocabulary. `yes-no`: the answer grammar of vocabulary.ts (yes / yeah /
 * sure / I agree … | no / nope / I do not agree …); results are normalised to
 * the text "yes" or "no" with the recognised words in `words`.
 */
export type SttMode = 'transcript' | 'yes-no';

export interface SttSessionOptions {
  sampleRate: 8000 | 16000;
  mode: SttMode;
  /** BCP-47, default en-US. */
  language?: string;
  /**
   * `transcript` mode: commands the caller may say that must not be missed ("stop recording"). A final result in
   * which one was said carries it in `phrase` (a provider whose open vocabulary misses short commands listens for
   * them with a grammar beside it, and reports them as results of their own).
   */
  phrases?: readonly string[];
}

export type SttSessionEvents = {
  result: [result: SttResult];
  error: [error: SttError];
  closed: [];
};

export interface SttSession {
  /** Feeds one frame (never blocks; the provider buffers). */
  write(frame: AudioFrame): void;
  /** Flushes: resolves once every result for audio written so far has been emitted. */
  end(): Promise<void>;
  /** Abandons the session now. Idempotent. */
  close(): void;
  on<K extends keyof SttSessionEvents>(event: K, listener: (...args: SttSessionEvents[K]) => void): () => void;
}

export interface SpeechToText {
  readonly name: string;
  startSession(opts: SttSessionOptions): SttSession;
}

export class SttError extends Error {
  override readonly name = 'SttError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
