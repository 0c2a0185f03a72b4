/**
 * One behavioural suite for every TextToSpeech provider (run from tts.test.ts against
 * espeak-ng and against DeepgramTts + fake-deepgram): non-silent mono PCM16 at the leg's
 * rate, with a duration that is plausible for the text and the same at every rate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TextToSpeech } from '../../../speech/tts.ts';
import { durationMs, rms } from './speech-audio.ts';

export interface TtsSuiteOptions {
  timeoutMs?: number;
}

export const PROMPT = 'This call may be recorded. Say yes to agree.';
const PROMPT_WORDS = 9;

export function ttsSuite(name: string, makeProvider: () => TextToSpeech | Promise<TextToSpeech>, opts: TtsSuiteOptions = {}): void {
  describe(`TextToSpeech suite: ${name}`, { timeout: opts.timeoutMs ?? 30_000 }, () => {
    for (const rate of [8000, 16000] as const) {
      it(`${rate} Hz: non-silent PCM with a plausible duration`, async () => {
        const pcm = await (await makeProvider()).synthesize(PROMPT, rate);
        assert.ok(pcm instanceof Int16Array);
        const ms = durationMs(pcm, rate);
        // Speech runs at roughly 100-250 words a minute: 9 words ≈ 2.2-5.4 s; allow pauses and padding.
        assert.ok(ms >= PROMPT_WORDS * 150 && ms <= PROMPT_WORDS * 1000, `${ms} ms for ${PROMPT_WORDS} words`);
        assert.ok(rms(pcm) > 300, `rms ${rms(pcm)}: silent`);
        let peak = 0;
        for (const s of pcm) peak = Math.max(peak, Math.abs(s));
        assert.ok(peak < 32767, 'clipped');
      });
    }

    it('the same text lasts the same at 8 and 16 kHz; longer text lasts longer', async () => {
      const tts = await makeProvider();
      const a = durationMs(await tts.synthesize(PROMPT, 8000), 8000);
      const b = durationMs(await tts.synthesize(PROMPT, 16000), 16000);
      assert.ok(Math.abs(a - b) <= 0.05 * a, `${a} ms at 8 kHz vs ${b} ms at 16 kHz`);
      const short = durationMs(await tts.synthesize('Yes.', 8000), 8000);
      assert.ok(short > 0 && short < a / 2, `"Yes." ${short} ms vs prompt ${a} ms`);
    });
  });
}
