/**
 * Picks the speech providers from SWITCHBOARD_STT / SWITCHBOARD_TTS
 * (auto | deepgram | pocketsphinx | espeak | none). `auto`: Deepgram when
 * DEEPGRAM_API_KEY is set, else the local engines when installed, else none —
 * with a clear warning, since consent then works by DTMF only. Speech out has
 * no fallback: without Deepgram and without espeak-ng the gateway cannot say
 * the consent prompt, so every call it answers is ended (`consent phase
 * failed`); the start log warns about it, naming the package to install.
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

export async function chooseSpeech(env: NodeJS.ProcessEnv, logger: Logger, cacheDir?: string): Promise<SpeechChoice> {
  const sttWanted = (env.SWITCHBOARD_STT ?? 'auto').toLowerCase();
  const ttsWanted = (env.SWITCHBOARD_TTS ?? 'auto').toLowerCase();
  const key = env.DEEPGRAM_API_KEY || undefined;
  const url = env.DEEPGRAM_URL || undefined;
  let stt: SpeechToText | null = null;
  if (sttWanted === 'deepgram' || (sttWanted === 'auto' && key)) {
    if (!key) throw new Error('SWITCHBOARD_STT=deepgram needs DEEPGRAM_API_KEY');
    stt = new DeepgramStt({ apiKey: key, ...(url ? { url } : {}) });
  } else if (sttWanted === 'pocketsphinx' || sttWanted === 'auto') {
    const binary = env.SWITCHBOARD_POCKETSPHINX || undefined;
    const ok = await PocketsphinxStt.available(binary ? { binary } : {});
    if (ok.ok) stt = new PocketsphinxStt(binary ? { binary } : {});
    else logger.warn({ reason: ok.reason }, 'pocketsphinx is not available: consent by DTMF only, no caller transcripts');
  } else if (sttWanted !== 'none') {
    throw new Error(`SWITCHBOARD_STT must be auto, deepgram, pocketsphinx or none; got ${sttWanted}`);
  }
  if (sttWanted === 'none') logger.warn('SWITCHBOARD_STT=none: consent by DTMF only, no caller transcripts');
  let tts: TextToSpeech;
  if (ttsWanted === 'deepgram' || (ttsWanted === 'auto' && key)) {
    if (!key) throw new Error('SWITCHBOARD_TTS=deepgram needs DEEPGRAM_API_KEY');
    tts = new DeepgramTts({ apiKey: key, ...(url ? { url } : {}) });
  } else if (ttsWanted === 'espeak' || ttsWanted === 'auto') {
    tts = new EspeakTts();
    const ok = await EspeakTts.available();
    if (!ok.ok) {
      logger.warn(
        { reason: ok.reason },
        'espeak-ng is not available: the gateway cannot speak, so calls are answered and then ended (consent phase failed); install espeak-ng (apt-get install espeak-ng) or set DEEPGRAM_API_KEY',
      );
    }
  } else {
    throw new Error(`SWITCHBOARD_TTS must be auto, deepgram or espeak; got ${ttsWanted}`);
  }
  logger.info({ stt: stt?.name ?? 'none', tts: tts.name }, 'speech providers');
  return { stt, tts: new CachedTts(cacheDir ? new DiskCachedTts(tts, cacheDir) : tts) };
}
