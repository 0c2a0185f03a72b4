/**
 * Withdrawal by speech (README "Consent, recording, transcripts": withdrawal is `*9`, or the caller saying "stop
 * recording"), end to end through a Twilio call: consent granted by DTMF 1, the recording running, then the caller
 * says it — the words as espeak-ng audio recognised by pocketsphinx (the local default), or a longer sentence
 * containing them heard by fake-deepgram through the real SDK. Either way: a `withdrawn` consent row with method
 * `speech` and the words as evidence, the recording paused for good and finalized with the pause, no transcript
 * after it, and the caller told "Recording has been stopped".
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { speechUlaw } from '../helpers/audio.ts';
import { startFakeDeepgram } from '../helpers/fake-deepgram.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553334444';

async function recordedCall(t: TestContext, env: Record<string, string> = {}) {
  const gw = await startTestGateway({ env });
  t.after(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 8000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider_call_id: peer.callSid })!;
  await peer.waitFor(() => read().calls.findOne({ provider_call_id: peer.callSid })?.consent_id != null, 8000, 'consent started');
  peer.sendDtmf('1');
  await peer.waitFor(() => read().recordings.find({ call_id: call().id })[0]?.status === 'recording', 10_000, 'recording');
  await peer.waitFor(() => read().agent_actions.find({ call_id: call().id, status: 'succeeded' }).length >= 1, 15_000, 'the agent greeted');
  const withdrawn = () => read().consents.find({ call_id: call().id, outcome: 'withdrawn' })[0];
  return { gw, peer, read, call, withdrawn };
}

type Call = Awaited<ReturnType<typeof recordedCall>>;

/** After the withdrawal: the recording is paused, and stays so to the end; nothing more is transcribed. */
async function checkWithdrawn(c: Call, words: RegExp): Promise<void> {
  const { gw, peer, read, call, withdrawn } = c;
  const row = withdrawn()!;
  assert.equal(row.method, 'speech');
  assert.match(String((row.evidence as { words?: string }).words), words);
  assert.equal(call().consent_id, row.id, 'the withdrawn row is the call’s consent now');
  const rec = read().recordings.find({ call_id: call().id })[0]!;
  await peer.waitFor(() => read().recordings.get(rec.id)?.status === 'paused', 5000, 'recording paused');
  const heard = read().agent_actions.find({ call_id: call().id }).length;
  const segments = read().transcript_segments.find({ call_id: call().id }).length;
  await peer.play(speechUlaw('what is my balance'));
  await peer.hangup();
  await peer.waitFor(() => call().state === 'ended', 8000, 'ended');
  await peer.waitFor(() => read().recordings.get(rec.id)?.status === 'finalized', 20_000, 'recording finalized');
  const pauses = read().recordings.get(rec.id)!.pauses as Array<{ reason: string; end_ms: number | null }>;
  assert.ok(pauses.some((p) => p.reason === 'consent withdrawn'), JSON.stringify(pauses));
  assert.equal(read().transcript_segments.find({ call_id: call().id }).length, segments, 'no transcript after the withdrawal');
  assert.ok(read().agent_actions.find({ call_id: call().id }).length >= heard);
  assert.ok(gw.store.verify().ok);
}

test('saying "stop recording" (espeak-ng → pocketsphinx): consent withdrawn by speech, recording paused for good', { timeout: 90_000 }, async (t) => {
  const c = await recordedCall(t);
  await c.peer.play(speechUlaw('stop recording'));
  await c.peer.waitFor(() => c.withdrawn() !== undefined, 15_000, 'withdrawn');
  await checkWithdrawn(c, /stop recording/);
});

test('Deepgram hears "Okay, please stop the recording now.": the phrase inside a sentence withdraws consent too', { timeout: 90_000 }, async (t) => {
  const dg = await startFakeDeepgram({ apiKey: 'dg-test-key' });
  t.after(() => dg.close());
  dg.script([]); // the consent question's session hears nothing (DTMF 1 answers it)
  dg.script([{ afterMs: 6000, transcript: 'Okay, please stop the recording now.' }]); // the call's transcript session
  const c = await recordedCall(t, { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url });
  await c.peer.waitFor(() => c.withdrawn() !== undefined, 20_000, 'withdrawn');
  await checkWithdrawn(c, /stop the recording/i);
});
