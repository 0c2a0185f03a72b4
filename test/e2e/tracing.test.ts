/**
 * One trace per call (telemetry/): a gateway with OTEL_EXPORTER_OTLP_ENDPOINT
 * pointing at a local OTLP/HTTP receiver; a Twilio call greets, hears a spoken
 * turn, answers and hangs up. The receiver gets one trace for the call (its id
 * derived from the call id), with the leg's `call` span, a `turn` per agent
 * turn and under them `stt`, `agent`, `tts` and `first_audio`; attributes
 * name the call, the agent version and the provider; no transcript text
 * appears anywhere in what was exported.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { traceIdOf } from '../../telemetry/tracing.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553338888';
const open: Array<{ close(): Promise<unknown> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

test('a call is one trace: call, turn, stt, agent, tts and first_audio spans with ids and versions, never content', { timeout: 90_000 }, async () => {
  const otlp = await startOtlpReceiver();
  open.push(otlp);
  const gw = await startTestGateway({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } });
  open.push({ close: () => gw.stop() });
  const who = { tenant: 'default', caller: 'test' };
  const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: policy.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550001111' });
  open.push({ close: () => peer.close() });
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: peer.callSid });
  const actions = () => gw.store.read('default').agent_actions.find({ call_id: call()!.id, status: 'succeeded' });
  await peer.waitFor(() => call()?.state === 'active' && actions().length >= 1, 15_000, 'greeting said');
  await peer.play(speechUlaw('I would like to check my account balance please'));
  await peer.waitFor(() => actions().length >= 2, 15_000, 'the spoken turn answered');
  await peer.hangup();
  await peer.waitFor(() => call()?.state === 'ended', 5_000, 'call ended');
  const callId = call()!.id;
  // Never content: neither side's transcript nor anything the agent said is in what was exported.
  const texts = [
    ...gw.store.read('default').transcript_segments.find({ call_id: callId }).map((s) => s.text),
    ...gw.store.read('default').agent_actions.find({ call_id: callId }).map((a) => String((a.args as { text?: string } | null)?.text ?? '')),
  ].filter((t) => t.trim().length > 3);
  await gw.stop(); // flushes the exporter
  const traceId = traceIdOf(callId);
  await peer.waitFor(() => otlp.spans.some((s) => s.name === 'call'), 10_000, 'the call span exported');

  const mine = otlp.spans.filter((s) => s.traceId === traceId);
  assert.equal(new Set(otlp.spans.map((s) => s.traceId)).size, 1, 'one trace: the call');
  assert.equal(mine.length, otlp.spans.length);
  const named = (name: string) => mine.filter((s) => s.name === name);
  const [root] = named('call');
  assert.ok(root);
  assert.equal(named('call').length, 1);
  assert.equal(root.attributes['switchboard.call_id'], callId);
  assert.equal(root.attributes['switchboard.provider'], 'twilio');
  assert.equal(root.attributes['switchboard.agent'], 'default');
  assert.equal(root.attributes['switchboard.agent_version'], 'builtin-1');
  assert.equal(root.resource['service.name'], 'switchboard');
  const turns = named('turn');
  assert.deepEqual(turns.map((t) => t.attributes['switchboard.hook']).sort(), ['onStart', 'onUtterance']);
  assert.ok(turns.every((t) => t.parentSpanId === root.spanId));
  const spoken = turns.find((t) => t.attributes['switchboard.hook'] === 'onUtterance')!;
  const under = (parent: { spanId: string }, name: string) => mine.filter((s) => s.parentSpanId === parent.spanId && s.name === name);
  assert.equal(under(spoken, 'stt').length, 1);
  assert.equal(under(spoken, 'agent').length, 1);
  assert.equal(under(spoken, 'tts').length, 1);
  assert.equal(under(spoken, 'first_audio').length, 1);
  for (const t of turns) {
    const [fa] = under(t, 'first_audio');
    assert.ok(fa && fa.startMs === t.startMs && fa.endMs <= t.endMs, 'first_audio runs from the turn start to the first audio');
  }
  assert.ok(texts.length >= 2, 'there was content to leak');
  const exported = otlp.bodies.join('\n');
  for (const text of texts) assert.ok(!exported.includes(text), `exported no content (${text.length} chars)`);
});
