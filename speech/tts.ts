/**
 * Text-to-speech behind one interface; providers live beside it (espeak-ng
 * local, Deepgram Aura later). Output is mono PCM16 at the rate asked for.
 */
import type { SampleRate } from '../media/frame.ts';

export interface TextToSpeech {
  readonly name: string;
  synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array>;
}

export class TtsError extends Error {
  override readonly name = 'TtsError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** Wraps a TTS with a bounded in-memory cache keyed by (text, rate): agents repeat themselves. */
export class CachedTts implements TextToSpeech {
  private readonly cache = new Map<string, Promise<Int16Array>>();

  constructor(
    private readonly inner: TextToSpeech,
    private readonly maxEntries = 256,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array> {
    const key = `${sampleRate}\u0000${text}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const p = this.inner.synthesize(text, sampleRate);
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key));
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return p;
  }
}
