/**
 * STT/TTS provider selection (README "Consent, recording, transcripts": `SWITCHBOARD_STT` = auto | deepgram |
 * pocketsphinx | none, `SWITCHBOARD_TTS` = auto | deepgram | espeak, `DEEPGRAM_URL`), end to end through a Twilio
 * call whose consent is spoken: the provider chosen is the one that heard the caller and spoke the disclosure.
 * Deepgram is fake-deepgram driven through the real @deepgram/sdk; the local engines are pocketsphinx and espeak-ng.
 *
 * And the test gateway itself: a DEEPGRAM_API_KEY in the environment of whoever runs the tests must not switch the
 * e2e tests to Deepgram (test/helpers/gateway.ts names the local engines and does not inherit DEEPGRAM_*).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { loadConfig } from '../../cli/config/index.ts';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { startFakeDeepgram, type FakeDeepgram } from '../helpers/fake-deepgram.ts';
import { freePort, gatewayEnv, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553337777';
const DISCLOSURE = 'This call is recorded for quality.';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
type T = TestContext;

async function fake(t: T): Promise<FakeDeepgram> {
  const dg = await startFakeDeepgram({ apiKey: 'dg-test-key' });
  t.after(() => dg.close());
  return dg;
}

/** A gateway with an opt-in number, and a Twilio call to it that has reached its consent question. */
async function callWithConsent(t: T, env: Record<string, string>) {
  const gw = await startTestGateway({ env });
  t.after(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'spoken', mode: 'opt-in', disclosure_text: DISCLOSURE, timeout_ms: 8000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550007777' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = () => gw.store.read('default').calls.findOne({ provider_call_id: peer.callSid });
  await peer.waitFor(() => call()?.consent_id != null, 8000, 'consent started');
  const consent = () => gw.store.read('default').consents.get(call()!.consent_id!)!;
  return { gw, peer, call, consent };
}

/** The caller says yes after a second of the prompt; waits for the decision. */
async function sayYes(gw: Gw, peer: TwilioPeer, consent: () => { outcome: string }): Promise<void> {
  await peer.waitFor(() => peer.receivedAudio().length >= 8000, 15_000, 'the prompt is playing');
  await peer.play(speechUlaw('yes I agree to the recording'));
  await peer.waitFor(() => consent().outcome !== 'pending', 20_000, 'consent decided');
  void gw;
}

test('SWITCHBOARD_STT=auto and SWITCHBOARD_TTS=auto with DEEPGRAM_API_KEY: Deepgram (at DEEPGRAM_URL) hears the answer and speaks the disclosure', { timeout: 60_000 }, async (t) => {
  const dg = await fake(t);
  // What the fake "hears" on the consent session: the caller's yes, once 1.5 s of the caller's audio arrived.
  dg.script([{ afterMs: 1500, transcript: 'Yes, I agree.' }]);
  const { peer, consent } = await callWithConsent(t, { SWITCHBOARD_STT: 'auto', SWITCHBOARD_TTS: 'auto', DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url });
  await peer.waitFor(() => consent().outcome !== 'pending', 20_000, 'consent decided');
  assert.equal(consent().outcome, 'granted');
  assert.equal(consent().method, 'speech');
  assert.match(String((consent().evidence as { words?: string }).words), /yes/i, 'the words Deepgram returned are the evidence');
  const listen = dg.requests.filter((r) => r.kind === 'listen');
  assert.ok(listen.length >= 1, 'a live /v1/listen connection');
  assert.equal(listen[0]!.authorization, `Token ${dg.apiKey}`);
  assert.ok(listen[0]!.audioBytes > 0, "the caller's audio was streamed to it");
  const spoken = dg.requests.filter((r) => r.kind === 'speak').map((r) => r.text ?? '');
  assert.ok(spoken.some((s) => s.includes(DISCLOSURE)), `the disclosure was synthesised by /v1/speak: ${JSON.stringify(spoken)}`);
  assert.ok(ulawEnergy(peer.receivedAudio()) > 0, "Deepgram's audio reached the caller");
});

test('SWITCHBOARD_STT=pocketsphinx and SWITCHBOARD_TTS=espeak win over a DEEPGRAM_API_KEY: Deepgram is never contacted', { timeout: 60_000 }, async (t) => {
  const dg = await fake(t);
  dg.script([{ afterMs: 500, transcript: 'No.' }]); // were Deepgram asked, it would decline
  const { gw, peer, consent } = await callWithConsent(t, { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url });
  await sayYes(gw, peer, consent);
  assert.equal(consent().outcome, 'granted');
  assert.equal(consent().method, 'speech');
  assert.deepEqual(dg.requests, [], 'no request reached Deepgram');
});

test('the test gateway ignores a DEEPGRAM_API_KEY (and DEEPGRAM_URL, SWITCHBOARD_STT/TTS) in the shell: local engines, Deepgram never contacted', { timeout: 60_000 }, async (t) => {
  const dg = await fake(t);
  dg.script([{ afterMs: 500, transcript: 'No.' }]);
  const saved = { key: process.env.DEEPGRAM_API_KEY, url: process.env.DEEPGRAM_URL, stt: process.env.SWITCHBOARD_STT, tts: process.env.SWITCHBOARD_TTS };
  t.after(() => {
    for (const [name, v] of [['DEEPGRAM_API_KEY', saved.key], ['DEEPGRAM_URL', saved.url], ['SWITCHBOARD_STT', saved.stt], ['SWITCHBOARD_TTS', saved.tts]] as const) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
  });
  Object.assign(process.env, { DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url, SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'deepgram' });
  const env = gatewayEnv({}, 1, '/nonexistent');
  assert.equal(env.DEEPGRAM_API_KEY, undefined);
  assert.equal(env.SWITCHBOARD_STT, 'pocketsphinx');
  assert.equal(env.SWITCHBOARD_TTS, 'espeak');
  const { gw, peer, consent } = await callWithConsent(t, {});
  await sayYes(gw, peer, consent);
  assert.equal(consent().outcome, 'granted');
  assert.equal(consent().method, 'speech');
  assert.deepEqual(dg.requests, [], 'no request reached Deepgram');
});

test('SWITCHBOARD_STT=deepgram without DEEPGRAM_API_KEY, or an unknown provider, stops the start naming the variable', async () => {
  for (const [extra, message] of [
    [{ SWITCHBOARD_STT: 'deepgram' }, /SWITCHBOARD_STT=deepgram needs DEEPGRAM_API_KEY/],
    [{ SWITCHBOARD_TTS: 'deepgram' }, /SWITCHBOARD_TTS=deepgram needs DEEPGRAM_API_KEY/],
    [{ SWITCHBOARD_STT: 'whisper' }, /SWITCHBOARD_STT must be/],
    [{ SWITCHBOARD_TTS: 'polly' }, /SWITCHBOARD_TTS must be/],
  ] as const) {
    const env = gatewayEnv({ env: extra }, await freePort(), tmpDir('sb-speech-'));
    assert.throws(() => loadConfig(env), message, JSON.stringify(extra));
  }
});
