/** The shared TTS suite against espeak-ng and DeepgramTts (real SDK → fake-deepgram), plus their errors. */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { DeepgramTts } from '../../../speech/deepgram.ts';
import { EspeakTts } from '../../../speech/espeak.ts';
import { TtsError } from '../../../speech/tts.ts';
import { startFakeDeepgram, type FakeDeepgram } from '../../helpers/fake-deepgram.ts';
import { durationMs } from './speech-audio.ts';
import { PROMPT, ttsSuite } from './tts-suite.ts';

let fake: FakeDeepgram;
before(async () => {
  fake = await startFakeDeepgram();
});
after(async () => {
  await fake.close();
});

ttsSuite('espeak-ng', () => new EspeakTts());
ttsSuite('deepgram (fake-deepgram)', () => new DeepgramTts({ apiKey: fake.apiKey, url: fake.url }));

async function rejection(p: Promise<unknown>): Promise<TtsError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TtsError, `not a TtsError: ${String(err)}`);
  return err;
}

describe('TTS errors and specifics', () => {
  it('espeak-ng missing → clear non-retryable TtsError', async () => {
    const err = await rejection(new EspeakTts({ binary: '/nonexistent' }).synthesize('hello', 8000));
    assert.equal(err.retryable, false);
    assert.match(err.message, /espeak-ng is not installed/);
  });

  it('Deepgram: bad key → 401 → non-retryable TtsError (no SDK retries)', async () => {
    const before = fake.requests.length;
    const err = await rejection(new DeepgramTts({ apiKey: 'wrong-key', url: fake.url }).synthesize('hello', 8000));
    assert.equal(err.retryable, false);
    assert.match(err.message, /HTTP 401/);
    assert.doesNotMatch(err.message, /wrong-key/, 'never echo the key');
    assert.equal(fake.requests.length - before, 1);
  });

  it('Deepgram: 503 and 429 are retryable; an unreachable server is retryable', async () => {
    const tts = new DeepgramTts({ apiKey: fake.apiKey, url: fake.url });
    const before = fake.requests.length;
    fake.failNext('speak', 503);
    assert.equal((await rejection(tts.synthesize('hello', 8000))).retryable, true);
    assert.equal(fake.requests.length - before, 1, 'SDK retries are off by default');
    fake.failNext('speak', 429);
    assert.equal((await rejection(tts.synthesize('hello', 8000))).retryable, true);
    // Short timeout: the SDK (5.13) leaves its request timer running after a network error.
    const down = new DeepgramTts({ apiKey: 'k', url: 'http://127.0.0.1:9', timeoutMs: 1000 });
    assert.equal((await rejection(down.synthesize('hello', 8000))).retryable, true);
  });

  it('Deepgram: asks for linear16 raw at the leg rate with Token auth', async () => {
    const before = fake.requests.length;
    await new DeepgramTts({ apiKey: fake.apiKey, url: fake.url, model: 'aura-asteria-en' }).synthesize('hello there', 16000);
    const req = fake.requests[before];
    assert.equal(req?.path, '/v1/speak');
    assert.equal(req?.method, 'POST');
    assert.equal(req?.authorization, `Token ${fake.apiKey}`);
    assert.deepEqual({ ...req?.query }, { model: 'aura-asteria-en', encoding: 'linear16', container: 'none', sample_rate: '16000' });
    assert.equal(req?.text, 'hello there');
  });

  it('Deepgram: a nativeRate differing from the leg is resampled to the leg rate', async () => {
    const direct = await new DeepgramTts({ apiKey: fake.apiKey, url: fake.url }).synthesize(PROMPT, 8000);
    const before = fake.requests.length;
    const resampled = await new DeepgramTts({ apiKey: fake.apiKey, url: fake.url, nativeRate: 24000 }).synthesize(PROMPT, 8000);
    assert.equal(fake.requests[before]?.query.sample_rate, '24000');
    assert.ok(Math.abs(durationMs(resampled, 8000) - durationMs(direct, 8000)) < 5, 'same duration after resampling');
  });

  it('Deepgram: empty text → empty audio without a request', async () => {
    const before = fake.requests.length;
    const pcm = await new DeepgramTts({ apiKey: fake.apiKey, url: fake.url }).synthesize('  ', 8000);
    assert.equal(pcm.length, 0);
    assert.equal(fake.requests.length, before);
  });
});

test('DiskCachedTts: a second process (new instance) reads the audio from disk, keyed by content hash', async () => {
  const { DiskCachedTts } = await import('../../../speech/tts.ts');
  const os = await import('node:os');
  const fsm = await import('node:fs');
  const pathm = await import('node:path');
  const dir = fsm.mkdtempSync(pathm.join(os.tmpdir(), 'sb-ttscache-'));
  let calls = 0;
  const inner = { name: 'counting', synthesize: async (text: string) => (calls++, new Int16Array(text.length).fill(7)) };
  const a = new DiskCachedTts(inner, dir);
  const first = await a.synthesize('hello there', 8000);
  const b = new DiskCachedTts(inner, dir);
  const second = await b.synthesize('hello there', 8000);
  assert.equal(calls, 1, 'synthesised once');
  assert.deepEqual(second, first);
  assert.ok(fsm.existsSync(pathm.join(dir, `${a.keyOf('hello there', 8000)}.pcm`)));
  await b.synthesize('hello there', 16000);
  assert.equal(calls, 2, 'the rate is part of the key');
  fsm.rmSync(dir, { recursive: true, force: true });
});
