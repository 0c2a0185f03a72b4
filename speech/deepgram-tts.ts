/**
 * Deepgram Aura TTS through the official SDK's REST call (`POST /v1/speak`, linear16,
 * container none) at the leg's rate, or at `nativeRate` and resampled here. The body is
 * taken at the asked rate unless it is a WAV (a proxy that ignores `container=none`) or the
 * content type carries a `rate=` parameter; either way it ends up at the leg's rate.
 * SDK retries are off by default (the caller owns retry policy and the call's latency).
 */
import { DeepgramError, DeepgramTimeoutError } from '@deepgram/sdk';
import type { SampleRate } from '../media/frame.ts';
import { makeDeepgramClient, permanentStatus, type DeepgramOptions } from './deepgram-client.ts';
import { bytesToPcm, resampleAll } from './pcm.ts';
import { TtsError, type TextToSpeech } from './tts.ts';
import { parseWav } from './wav.ts';

export interface DeepgramTtsOptions extends DeepgramOptions {
  /** Aura voice model. Default aura-2-thalia-en. */
  model?: string;
  /** Ask Aura for this rate and resample locally (default: ask for the leg's rate). */
  nativeRate?: 8000 | 16000 | 24000 | 32000 | 48000;
  /** SDK-level retries of 408/429/5xx. Default 0: the caller owns retry policy and latency. */
  maxRetries?: number;
  timeoutMs?: number;
}

export class DeepgramTts implements TextToSpeech {
  readonly name = 'deepgram';
  private readonly client: ReturnType<typeof makeDeepgramClient>;

  constructor(private readonly opts: DeepgramTtsOptions) {
    this.client = makeDeepgramClient(opts);
  }

  async synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array> {
    if (text.trim() === '') return new Int16Array(0);
    const askRate = this.opts.nativeRate ?? sampleRate;
    let bytes: Uint8Array;
    let contentType: string | null;
    try {
      const res = await this.client.speak.v1.audio
        .generate(
          { text, model: this.opts.model ?? 'aura-2-thalia-en', encoding: 'linear16', container: 'none', sample_rate: askRate },
          { maxRetries: this.opts.maxRetries ?? 0, timeoutInSeconds: (this.opts.timeoutMs ?? 15_000) / 1000 },
        )
        .withRawResponse();
      contentType = res.rawResponse.headers.get('content-type');
      bytes = new Uint8Array(await res.data.arrayBuffer());
    } catch (e) {
      throw ttsError(e);
    }
    let samples: Int16Array;
    let rate: number = askRate;
    try {
      if (bytes.length >= 12 && Buffer.from(bytes.subarray(0, 4)).toString('latin1') === 'RIFF') {
        const wav = parseWav(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        if (wav.channels !== 1) throw new Error(`${wav.channels} channels`);
        samples = wav.samples;
        rate = wav.sampleRate;
      } else {
        samples = bytesToPcm(bytes);
        const declared = /rate=(\d+)/i.exec(contentType ?? '')?.[1];
        if (declared) rate = Number(declared);
      }
    } catch (e) {
      throw new TtsError(`Deepgram TTS audio unreadable: ${(e as Error).message}`, false);
    }
    return resampleAll(samples, rate, sampleRate);
  }
}

function ttsError(e: unknown): TtsError {
  if (e instanceof TtsError) return e;
  if (e instanceof DeepgramTimeoutError) return new TtsError(`Deepgram TTS timed out: ${e.message}`, true);
  if (e instanceof DeepgramError) {
    const status = e.statusCode;
    const body = e.body as { err_msg?: unknown; reason?: unknown } | undefined;
    const detail = typeof body?.err_msg === 'string' ? body.err_msg : typeof body?.reason === 'string' ? body.reason : '';
    if (status === undefined) return new TtsError(`Deepgram TTS request failed: ${e.message}`, true);
    return new TtsError(`Deepgram TTS failed: HTTP ${status}${detail ? ` ${detail}` : ''}`, !permanentStatus(status));
  }
  return new TtsError(`Deepgram TTS failed: ${e instanceof Error ? e.message : String(e)}`, true);
}
