/**
 * Text-to-speech behind one interface; providers live beside it (espeak-ng
 * local, Deepgram Aura later). Output is mono PCM16 at the rate asked for.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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

/**
 * No speech synthesis (SWITCHBOARD_TTS=none): every text is zero samples, so a play of it ends at once and
 * nothing is heard; the consent row's disclosure hash is then the hash of no audio — what the caller heard.
 */
export class SilentTts implements TextToSpeech {
  readonly name = 'none';
  synthesize(): Promise<Int16Array> {
    return Promise.resolve(new Int16Array(0));
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

/**
 * A persistent cache under `dir`, keyed by the content hash of (provider, rate,
 * text): prompts and disclosures are synthesised once per deployment, not once
 * per process. Files are raw PCM16LE, written atomically.
 */
export class DiskCachedTts implements TextToSpeech {
  constructor(
    private readonly inner: TextToSpeech,
    private readonly dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get name(): string {
    return this.inner.name;
  }

  keyOf(text: string, sampleRate: SampleRate): string {
    return createHash('sha256').update(`${this.inner.name}\u0000${sampleRate}\u0000${text}`).digest('hex');
  }

  async synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array> {
    const file = path.join(this.dir, `${this.keyOf(text, sampleRate)}.pcm`);
    try {
      const buf = await fs.promises.readFile(file);
      return new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2)).slice();
    } catch {
      // not cached yet
    }
    const pcm = await this.inner.synthesize(text, sampleRate);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await fs.promises.writeFile(tmp, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), { mode: 0o600 });
      await fs.promises.rename(tmp, file);
    } catch {
      await fs.promises.rm(tmp, { force: true }); // a cache that cannot be written is only slower
    }
    return pcm;
  }
}
