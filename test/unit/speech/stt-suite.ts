/**
 * One behavioural suite for every SpeechToText provider (run from stt.test.ts against
 * pocketsphinx and against DeepgramStt + fake-deepgram). Audio is real synthetic speech
 * (speech-audio.ts) streamed as 20 ms frames at the phone rate. Providers that cannot
 * listen (the Deepgram fake) are told what each scenario says through `prepare`.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { SpeechToText, SttMode, SttResult } from '../../../speech/stt.ts';
import { durationMs, frames, runSession, silencePcm, speechPcm, speechSpanMs, throughUlaw } from './speech-audio.ts';

export interface SttScenario {
  name: string;
  mode: SttMode;
  /** What is said, or null for silence. */
  text: string | null;
  sampleRate: 8000 | 16000;
  audio: Int16Array;
}

export interface SttSuiteOptions {
  /** Runs before each session with the audio it will receive (a scripted fake registers its script here). */
  prepare?: (scenario: SttScenario) => void | Promise<void>;
  /** Per-test timeout. Default 30 s. */
  timeoutMs?: number;
}

export const YES_TEXT = 'yes I agree to the recording';
export const NO_TEXT = 'no I do not agree';
export const SENTENCE_TEXT = 'the weather is nice today';

function assertWellTimed(r: SttResult, audioMs: number): void {
  assert.ok(r.startMs >= 0, `startMs ${r.startMs} < 0`);
  assert.ok(r.startMs <= r.endMs, `startMs ${r.startMs} > endMs ${r.endMs}`);
  assert.ok(r.endMs <= audioMs + 20, `endMs ${r.endMs} beyond the audio (${audioMs} ms)`);
  let prev = -1;
  for (const w of r.words) {
    assert.ok(w.word.length > 0, 'empty word');
    assert.ok(w.startMs >= prev, `words out of order: ${JSON.stringify(r.words)}`);
    assert.ok(w.startMs <= w.endMs, `word ${w.word} ends before it starts`);
    assert.ok(w.startMs >= r.startMs && w.endMs <= r.endMs, `word ${w.word} outside its result's span`);
    prev = w.startMs;
  }
}

/** The result covers the speech actually in the audio (energy onset/offset) to within `tolMs`. */
function assertAligned(r: SttResult, audio: Int16Array, rate: number, tolMs = 120): void {
  const span = speechSpanMs(audio, rate);
  assert.ok(span, 'test audio has speech');
  assert.ok(Math.abs(r.startMs - span.startMs) <= tolMs, `result starts at ${r.startMs} ms, speech at ${span.startMs} ms`);
  assert.ok(Math.abs(r.endMs - span.endMs) <= tolMs, `result ends at ${r.endMs} ms, speech at ${span.endMs} ms`);
}

export function sttSuite(name: string, makeProvider: () => SpeechToText | Promise<SpeechToText>, opts: SttSuiteOptions = {}): void {
  const timeout = opts.timeoutMs ?? 30_000;

  async function scenario(s: Omit<SttScenario, 'audio'>, audio?: Int16Array) {
    const full: SttScenario = { ...s, audio: audio ?? (s.text ? speechPcm(s.text, s.sampleRate) : silencePcm(3000, s.sampleRate)) };
    await opts.prepare?.(full);
    const stt = await makeProvider();
    const run = await runSession(stt, { sampleRate: full.sampleRate, mode: full.mode }, full.audio);
    return { ...run, audio: full.audio, audioMs: durationMs(full.audio, full.sampleRate) };
  }

  describe(`SpeechToText suite: ${name}`, { timeout }, () => {
    it('yes-no: "yes I agree to the recording" → one final "yes" with timed words', async () => {
      const run = await scenario({ name: 'consent-yes', mode: 'yes-no', text: YES_TEXT, sampleRate: 8000 });
      assert.deepEqual(run.errors, []);
      const finals = run.results.filter((r) => r.isFinal);
      assert.deepEqual(finals.map((r) => r.text), ['yes']);
      const r = finals[0] as SttResult;
      assert.ok(r.words.length >= 1, 'words kept');
      assert.ok(r.words.some((w) => w.word === 'agree'), `words: ${r.words.map((w) => w.word).join(' ')}`);
      assertWellTimed(r, run.audioMs);
      assertAligned(r, run.audio, 8000);
      assert.equal(run.closed, 1);
    });

    it('yes-no: "no I do not agree" → "no", never "yes"', async () => {
      const run = await scenario({ name: 'consent-no', mode: 'yes-no', text: NO_TEXT, sampleRate: 8000 });
      assert.deepEqual(run.errors, []);
      assert.deepEqual(run.results.filter((r) => r.isFinal).map((r) => r.text), ['no']);
      assertWellTimed(run.results[0] as SttResult, run.audioMs);
      assertAligned(run.results[0] as SttResult, run.audio, 8000);
    });

    it('yes-no: works on µ-law phone audio and on a 16 kHz leg', async () => {
      const ulaw = await scenario({ name: 'consent-yes-ulaw', mode: 'yes-no', text: YES_TEXT, sampleRate: 8000 }, throughUlaw(speechPcm(YES_TEXT)));
      assert.deepEqual(ulaw.results.map((r) => r.text), ['yes']);
      const wide = await scenario({ name: 'consent-no-16k', mode: 'yes-no', text: NO_TEXT, sampleRate: 16000 });
      assert.deepEqual(wide.results.map((r) => r.text), ['no']);
      assertWellTimed(wide.results[0] as SttResult, wide.audioMs);
      assertAligned(wide.results[0] as SttResult, wide.audio, 16000);
    });

    it('silence → no result, no error', async () => {
      for (const mode of ['yes-no', 'transcript'] as const) {
        const run = await scenario({ name: `silence-${mode}`, mode, text: null, sampleRate: 8000 });
        assert.deepEqual(run.errors, [], mode);
        assert.deepEqual(run.results, [], mode);
        assert.equal(run.closed, 1);
      }
    });

    it('transcript: a short sentence → ≥1 final result inside the audio, words in order', async () => {
      const run = await scenario({ name: 'transcript', mode: 'transcript', text: SENTENCE_TEXT, sampleRate: 8000 });
      assert.deepEqual(run.errors, []);
      const finals = run.results.filter((r) => r.isFinal);
      assert.ok(finals.length >= 1, `no final result: ${JSON.stringify(run.results)}`);
      for (const r of finals) {
        assert.ok(r.text.trim().length > 0);
        assert.ok(r.confidence === null || (r.confidence >= 0 && r.confidence <= 1));
        assertWellTimed(r, run.audioMs);
      }
      for (let i = 1; i < finals.length; i++) assert.ok((finals[i] as SttResult).startMs >= (finals[i - 1] as SttResult).startMs);
    });

    it('streams: the result arrives while audio is still flowing, before end()', async () => {
      const audio = new Int16Array([...speechPcm(YES_TEXT), ...silencePcm(2000)]);
      await opts.prepare?.({ name: 'consent-yes-streaming', mode: 'yes-no', text: YES_TEXT, sampleRate: 8000, audio });
      const session = (await makeProvider()).startSession({ sampleRate: 8000, mode: 'yes-no' });
      const results: SttResult[] = [];
      session.on('result', (r) => results.push(r));
      try {
        let n = 0;
        for (const frame of frames(audio, 8000)) {
          session.write(frame);
          if (++n % 5 === 0) await sleep(20); // ~5x real time
        }
        for (let waited = 0; results.length === 0 && waited < 3000; waited += 50) await sleep(50);
        assert.deepEqual(results.map((r) => r.text), ['yes'], 'result before end()');
        await session.end();
        assert.equal(results.length, 1, 'end() adds nothing');
      } finally {
        session.close(); // a failed assertion must not leave a decoder running
      }
    });

    it('lifecycle: closed once; close() idempotent; write after end/close ignored; wrong-rate frame reported', async () => {
      await opts.prepare?.({ name: 'lifecycle', mode: 'yes-no', text: null, sampleRate: 8000, audio: silencePcm(400) });
      const stt = await makeProvider();
      const s = stt.startSession({ sampleRate: 8000, mode: 'yes-no' });
      let closed = 0;
      const errors: { retryable: boolean }[] = [];
      s.on('closed', () => closed++);
      s.on('error', (e) => errors.push(e));
      s.write({ samples: new Int16Array(320), sampleRate: 16000, timestamp: 0 });
      for (const f of frames(silencePcm(400), 8000)) s.write(f);
      await s.end();
      await s.end();
      s.write({ samples: new Int16Array(160), sampleRate: 8000, timestamp: 0 });
      s.close();
      s.close();
      assert.equal(closed, 1);
      assert.equal(errors.length, 1, 'one error for the 16 kHz frame');
      assert.equal(errors[0]?.retryable, false);

      const aborted = stt.startSession({ sampleRate: 8000, mode: 'transcript' });
      let abortedClosed = 0;
      aborted.on('closed', () => abortedClosed++);
      for (const f of frames(speechPcm(SENTENCE_TEXT), 8000)) aborted.write(f);
      aborted.close();
      assert.equal(abortedClosed, 1, 'close() reports closed at once');
      await aborted.end(); // resolves, does not hang
      assert.equal(abortedClosed, 1);
    });
  });
}
