/**
 * Builds the speech providers from the speech section of the configuration
 * (cli/config/: SWITCHBOARD_STT / SWITCHBOARD_TTS, auto | deepgram |
 * pocketsphinx | espeak | none, checked at start). `auto`: Deepgram when
 * DEEPGRAM_API_KEY is set, else the local engines when installed, else none —
 * with a clear warning, since consent then works by DTMF only. Speech out has
 * no fallback: without Deepgram and without espeak-ng the gateway cannot say
 * the consent prompt, so every call it answers is ended (`consent phase
 * failed`); the start log warns about it, naming the package to install.
 * `SWITCHBOARD_TTS=none` (CONTRACT) is no speech synthesis at all: every prompt
 * and agent reply is skipped (silent), consent is by keypad (or speech, with
 * STT) without a spoken disclosure — the start log warns about it.
 *
 * Deepgram's module (and its SDK, the heaviest package the gateway has: ~0.8 s of CPU to load) is imported only
 * when Deepgram is chosen, so a start on the local engines does not pay for it.
 */
import type { Logger } from 'pino';
import { EspeakTts } from '../speech/espeak.ts';
import { PocketsphinxStt } from '../speech/pocketsphinx.ts';
import type { SpeechToText } from '../speech/stt.ts';
import { CachedTts, DiskCachedTts, SilentTts, type TextToSpeech } from '../speech/tts.ts';
import type { SpeechSettings } from './config/index.ts';

export interface SpeechChoice {
  stt: SpeechToText | null;
  tts: TextToSpeech;
}

export async function chooseSpeech(settings: SpeechSettings, logger: Logger, cacheDir?: string): Promise<SpeechChoice> {
  let stt: SpeechToText | null = null;
  // The espeak-ng probe (a `--version` child process) runs while the rest is decided, not after it.
  const espeakWanted = settings.tts !== 'none' && !(settings.tts === 'deepgram' && settings.deepgram);
  const espeakProbe = espeakWanted ? EspeakTts.available() : null;
  const deepgram = (settings.stt === 'deepgram' || settings.tts === 'deepgram') && settings.deepgram ? await import('../speech/deepgram.ts') : null;
  if (settings.stt === 'deepgram' && settings.deepgram && deepgram) stt = new deepgram.DeepgramStt(settings.deepgram);
  else if (settings.stt === 'local') {
    const binary = settings.pocketsphinx;
    const ok = await PocketsphinxStt.available(binary ? { binary } : {});
    if (ok.ok) stt = new PocketsphinxStt(binary ? { binary } : {});
    else logger.warn({ reason: ok.reason }, 'pocketsphinx is not available: consent by DTMF only, no caller transcripts');
  } else logger.warn('SWITCHBOARD_STT=none: consent by DTMF only, no caller transcripts');
  if (settings.tts === 'none') {
    logger.warn('SWITCHBOARD_TTS=none: no speech synthesis; prompts, the consent disclosure and agent replies are silent');
    logger.info({ stt: stt?.name ?? 'none', tts: 'none' }, 'speech providers');
    return { stt, tts: new SilentTts() };
  }
  const tts: TextToSpeech = settings.tts === 'deepgram' && settings.deepgram && deepgram ? new deepgram.DeepgramTts(settings.deepgram) : new EspeakTts();
  if (tts instanceof EspeakTts) {
    const ok = await (espeakProbe ?? EspeakTts.available());
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
