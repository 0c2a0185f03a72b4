/**
 * Picks the speech providers from SWITCHBOARD_STT / SWITCHBOARD_TTS
 * (auto | deepgram | pocketsphinx | espeak | none). `auto`: Deepgram when
 * DEEPGRAM_API_KEY is set, else the local engines when installed, else none —
 * with a clear warning, since consent then works by DTMF only. Speech out has
 * no fallback: without Deepgram and without espeak-ng the gateway cannot say
 * the consent prompt, so every call it answers is ended (`consent phase
 * failed`); the start log warns about it, naming the package to install.
 *
 * `speechSettings` reads and checks the variables without touching anything, so
 * the gateway refuses a bad value before it opens its store; `chooseSpeech`
 * then builds the providers.
 */
import type { Logger } from 'pino';
import { DeepgramStt, DeepgramTts } from '../speech/deepgram.ts';
import { EspeakTts } from '../speech/espeak.ts';
import { PocketsphinxStt } from '../speech/pocketsphinx.ts';
import type { SpeechToText } from '../speech/stt.ts';
import { CachedTts, DiskCachedTts, type TextToSpeech } from '../speech/tts.ts';

export interface SpeechChoice {
  stt: SpeechToText | null;
  tts: TextToSpeech;
}

export interface SpeechSettings {
  /** `local`: pocketsphinx when installed (explicitly asked for, or `auto` without a Deepgram key). */
  stt: 'deepgram' | 'local' | 'none';
  tts: 'deepgram' | 'espeak';
  /** DEEPGRAM_API_KEY and DEEPGRAM_URL, when a key is set. */
  deepgram: { apiKey: string; url?: string } | null;
  pocketsphinx?: string;
}

/** Checks SWITCHBOARD_STT / SWITCHBOARD_TTS against DEEPGRAM_API_KEY; a bad value throws naming the variable. */
export function speechSettings(env: NodeJS.ProcessEnv): SpeechSettings {
  const sttWanted = (env.SWITCHBOARD_STT ?? 'auto').toLowerCase();
  const ttsWanted = (env.SWITCHBOARD_TTS ?? 'auto').toLowerCase();
  const key = env.DEEPGRAM_API_KEY || undefined;
  const url = env.DEEPGRAM_URL || undefined;
  let stt: SpeechSettings['stt'];
  if (sttWanted === 'deepgram' || (sttWanted === 'auto' && key)) {
    if (!key) throw new Error('SWITCHBOARD_STT=deepgram needs DEEPGRAM_API_KEY');
    stt = 'deepgram';
  } else if (sttWanted === 'pocketsphinx' || sttWanted === 'auto') stt = 'local';
  else if (sttWanted === 'none') stt = 'none';
  else throw new Error(`SWITCHBOARD_STT must be auto, deepgram, pocketsphinx or none; got ${sttWanted}`);
  let tts: SpeechSettings['tts'];
  if (ttsWanted === 'deepgram' || (ttsWanted === 'auto' && key)) {
    if (!key) throw new Error('SWITCHBOARD_TTS=deepgram needs DEEPGRAM_API_KEY');
    tts = 'deepgram';
  } else if (ttsWanted === 'espeak' || ttsWanted === 'auto') tts = 'espeak';
  else throw new Error(`SWITCHBOARD_TTS must be auto, deepgram or espeak; got ${ttsWanted}`);
  const pocketsphinx = env.SWITCHBOARD_POCKETSPHINX || undefined;
  return { stt, tts, deepgram: key ? { apiKey: key, ...(url ? { url } : {}) } : null, ...(pocketsphinx ? { pocketsphinx } : {}) };
}

export async function chooseSpeech(settings: SpeechSettings, logger: Logger, cacheDir?: string): Promise<SpeechChoice> {
  let stt: SpeechToText | null = null;
  if (settings.stt === 'deepgram' && settings.deepgram) stt = new DeepgramStt(settings.deepgram);
  else if (settings.stt === 'local') {
    const binary = settings.pocketsphinx;
    const ok = await PocketsphinxStt.available(binary ? { binary } : {});
    if (ok.ok) stt = new PocketsphinxStt(binary ? { binary } : {});
    else logger.warn({ reason: ok.reason }, 'pocketsphinx is not available: consent by DTMF only, no caller transcripts');
  } else logger.warn('SWITCHBOARD_STT=none: consent by DTMF only, no caller transcripts');
  const tts: TextToSpeech = settings.tts === 'deepgram' && settings.deepgram ? new DeepgramTts(settings.deepgram) : new EspeakTts();
  if (tts instanceof EspeakTts) {
    const ok = await EspeakTts.available();
    if (!ok.ok) {
      logger.warn(
        { reason: ok.reason },
        'espeak-ng is not available: the gateway cannot speak, so calls are answered and then ended (consent phase failed); install espeak-ng (apt-get install espeak-ng) or set DEEPGRAM_API_KEY',
      );
    }
  }
  logger.info({ stt: stt?.name ?? 'none', tts: tts.name }, 'speech providers');
  return { stt, tts: new CachedTts(cacheDir ? new DiskCachedTts(tts, cacheDir) : tts) };
}
