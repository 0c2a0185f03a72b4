/**
 * The shared STT suite against pocketsphinx (real decoder, espeak-ng speech) and against
 * DeepgramStt driven through the real @deepgram/sdk into fake-deepgram (scripted), plus
 * each provider's own failure modes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { DeepgramStt } from '../../../speech/deepgram.ts';
import { PocketsphinxStt } from '../../../speech/pocketsphinx.ts';
import type { SpeechToText, SttMode } from '../../../speech/stt.ts';
import { startFakeDeepgram, type FakeDeepgram, type FakeDeepgramUtterance } from '../../helpers/fake-deepgram.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { frames, runSession, silencePcm, speechPcm, speechSpanMs } from './speech-audio.ts';
import { NO_TEXT, SENTENCE_TEXT, sttSuite, YES_TEXT, type SttScenario } from './stt-suite.ts';

// ---- pocketsphinx -------------------------------------------------------------------------

sttSuite('pocketsphinx', () => new PocketsphinxStt());

describe('PocketsphinxStt specifics', { timeout: 30_000 }, () => {
  const say = (stt: SpeechToText, text: string, mode: SttMode = 'yes-no') => runSession(stt, { sampleRate: 8000, mode }, speechPcm(text));

  it('available() finds the installed binary and model, and explains what is missing', async () => {
    assert.deepEqual(await PocketsphinxStt.available(), { ok: true });
    const noBin = await PocketsphinxStt.available({ binary: '/nonexistent/pocketsphinx_continuous' });
    assert.equal(noBin.ok, false);
    assert.match(noBin.ok ? '' : noBin.reason, /nonexistent.*apt-get install pocketsphinx/);
    const noModel = await PocketsphinxStt.available({ modelDir: '/nonexistent-model' });
    assert.match(noModel.ok ? '' : noModel.reason, /model file missing.*pocketsphinx-en-us/);
  });

  it('yes-no: the other grammar phrases map too', async () => {
    const stt = new PocketsphinxStt();
    assert.deepEqual((await say(stt, 'I agree')).results.map((r) => r.text), ['yes']);
    assert.deepEqual((await say(stt, 'I do not agree')).results.map((r) => r.text), ['no']);
  });

  it('yes-no: out-of-grammar speech is dropped, never forced onto yes', async () => {
    const stt = new PocketsphinxStt();
    for (const text of ['maybe later', 'what did you say']) {
      const run = await say(stt, text);
      assert.deepEqual(run.errors, []);
      assert.deepEqual(run.results, [], text);
    }
  });

  it('a missing binary is a non-retryable error, not an exception', async () => {
    const run = await say(new PocketsphinxStt({ binary: '/nonexistent/pocketsphinx_continuous' }), YES_TEXT);
    assert.equal(run.errors.length, 1);
    assert.equal(run.errors[0]?.retryable, false);
    assert.match(run.errors[0]?.message ?? '', /not found/);
    assert.deepEqual(run.results, []);
    assert.equal(run.closed, 1);
  });

  it('a decoder crash mid-stream is a retryable error', async () => {
    const fake = path.join(tmpDir('sb-ps-crash-'), 'crashing-decoder');
    fs.writeFileSync(fake, '#!/bin/sh\nhead -c 8000 >/dev/null\necho "fake decoder crashed" >&2\nexit 3\n', { mode: 0o755 });
    const run = await say(new PocketsphinxStt({ binary: fake }), YES_TEXT);
    assert.equal(run.errors.length, 1);
    assert.equal(run.errors[0]?.retryable, true);
    assert.match(run.errors[0]?.message ?? '', /code 3.*fake decoder crashed/);
    assert.equal(run.closed, 1);
  });

  it('without the noise floor, band-limited speech decodes wrongly (why the floor exists)', async () => {
    const plain = await say(new PocketsphinxStt({ noiseFloor: 0 }), YES_TEXT);
    const floored = await say(new PocketsphinxStt(), YES_TEXT);
    assert.deepEqual(floored.results.map((r) => r.words.map((w) => w.word).join(' ')), ['yes i agree to the recording']);
    assert.notDeepEqual(plain.results.map((r) => r.words.map((w) => w.word).join(' ')), ['yes i agree to the recording']);
  });
});

// ---- Deepgram through the real SDK into fake-deepgram --------------------------------------

const SAID: Record<string, string> = {
  [YES_TEXT]: 'Yes, I agree to the recording.',
  [NO_TEXT]: 'No, I do not agree.',
  [SENTENCE_TEXT]: 'The weather is nice today.',
};

/** What Deepgram would send for a scenario: the sentence, its words spread over the speech, final 300 ms after it. */
function scriptFor(s: SttScenario): FakeDeepgramUtterance[] {
  const span = s.text ? speechSpanMs(s.audio, s.sampleRate) : null;
  if (!s.text || !span) return [];
  const transcript = SAID[s.text] ?? s.text;
  const tokens = transcript.split(' ');
  const step = (span.endMs - span.startMs) / tokens.length / 1000;
  const words = tokens.map((word, i) => ({ word, start: span.startMs / 1000 + i * step, end: span.startMs / 1000 + (i + 1) * step }));
  return [{ afterMs: span.endMs + 300, transcript, words }];
}

let fake: FakeDeepgram;
before(async () => {
  fake = await startFakeDeepgram();
});
after(async () => {
  await fake.close();
});

sttSuite('deepgram (fake-deepgram)', () => new DeepgramStt({ apiKey: fake.apiKey, url: fake.url }), {
  prepare: (s) => fake.script(scriptFor(s)),
});

describe('DeepgramStt specifics (fake-deepgram)', { timeout: 30_000 }, () => {
  const stt = () => new DeepgramStt({ apiKey: fake.apiKey, url: fake.url });
  const oneSecond = silencePcm(1000);

  it('speaks the documented wire protocol: query, Token auth, binary linear16, CloseStream', async () => {
    fake.script([]);
    const before = fake.requests.length;
    await runSession(stt(), { sampleRate: 8000, mode: 'transcript' }, oneSecond);
    const req = fake.requests[before];
    assert.ok(req);
    assert.equal(req.path, '/v1/listen');
    assert.equal(req.authorization, `Token ${fake.apiKey}`);
    assert.equal(req.status, 101);
    assert.deepEqual(
      { ...req.query },
      { model: 'nova-3', language: 'en-US', encoding: 'linear16', sample_rate: '8000', channels: '1', interim_results: 'true', punctuate: 'true' },
    );
    assert.equal(req.audioBytes, 50 * 160 * 2);
    assert.deepEqual(req.controlMessages.map((m) => JSON.parse(m) as unknown), [{ type: 'CloseStream' }]);
  });

  it('transcript mode surfaces interim then final results', async () => {
    fake.script([{ afterMs: 900, transcript: 'Hello there, how are you?' }]);
    const run = await runSession(stt(), { sampleRate: 8000, mode: 'transcript' }, oneSecond);
    assert.deepEqual(run.results.map((r) => [r.isFinal, r.text]), [
      [false, 'Hello there, how'],
      [true, 'Hello there, how are you?'],
    ]);
    assert.equal(run.results[1]?.confidence, 0.98);
  });

  it('yes-no joins is_final segments up to speech_final, drops interims and out-of-grammar speech', async () => {
    fake.script([
      { afterMs: 400, transcript: 'Yes, I agree', speechFinal: false },
      { afterMs: 800, transcript: 'to the recording.' },
    ]);
    const joined = await runSession(stt(), { sampleRate: 8000, mode: 'yes-no' }, oneSecond);
    assert.deepEqual(joined.results.map((r) => [r.text, r.words.length]), [['yes', 6]]);
    fake.script([{ afterMs: 500, transcript: 'Maybe later.' }, { afterMs: 900, transcript: "Um, I don't agree." }]);
    const mixed = await runSession(stt(), { sampleRate: 8000, mode: 'yes-no' }, oneSecond);
    assert.deepEqual(mixed.results.map((r) => r.text), ['no']);
  });

  it('a bad key → 401 → non-retryable error; end() resolves; closed once', async () => {
    const run = await runSession(new DeepgramStt({ apiKey: 'wrong-key', url: fake.url }), { sampleRate: 8000, mode: 'yes-no' }, oneSecond);
    assert.equal(run.errors.length, 1);
    assert.match(run.errors[0]?.message ?? '', /401/);
    assert.equal(run.errors[0]?.retryable, false);
    assert.equal(run.closed, 1);
  });

  it('a 503 at connect, an unreachable server and a server-side idle close are retryable', async () => {
    fake.failNext('listen', 503);
    const busy = await runSession(stt(), { sampleRate: 8000, mode: 'yes-no' }, oneSecond);
    assert.deepEqual(busy.errors.map((e) => [/503/.test(e.message), e.retryable]), [[true, true]]);

    const closedPort = await new Promise<number>((resolve) => {
      const srv = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const down = await runSession(new DeepgramStt({ apiKey: 'k', url: `http://127.0.0.1:${closedPort}` }), { sampleRate: 8000, mode: 'yes-no' }, oneSecond);
    assert.deepEqual(down.errors.map((e) => e.retryable), [true]);

    const strict = await startFakeDeepgram({ idleTimeoutMs: 300 });
    try {
      const s = new DeepgramStt({ apiKey: strict.apiKey, url: strict.url }).startSession({ sampleRate: 8000, mode: 'yes-no' });
      const errors: { message: string; retryable: boolean }[] = [];
      let closed = 0;
      s.on('error', (e) => errors.push(e));
      s.on('closed', () => closed++);
      for (const f of frames(silencePcm(100), 8000)) s.write(f);
      await sleep(800);
      assert.equal(closed, 1, 'a dead connection closes the session');
      assert.equal(errors.length, 1);
      assert.match(errors[0]?.message ?? '', /1011/);
      assert.equal(errors[0]?.retryable, true);
      await s.end();
    } finally {
      await strict.close();
    }
  });
});
