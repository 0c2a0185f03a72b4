/**
 * Twilio end to end, in-process gateway against the Twilio peer (signed
 * webhooks, TwiML, real-time paced µ-law made with espeak-ng, marks, clear).
 */
import { opened } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import twilio from 'twilio';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import type { TwilioLeg } from '../../ingress/twilio/leg.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15551234567';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<{ close(): Promise<void> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

async function gateway(opts: Parameters<typeof startTestGateway>[0] = {}): Promise<Gw> {
  const gw = await startTestGateway(opts);
  open.push({ close: () => gw.stop() });
  // These tests are about the agent and the media path: a short notify-only disclosure keeps them quick.
  const who = { tenant: 'default', caller: 'test' };
  const policy = await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who);
  const policyId = resultOf<{ policy_id: string }>(policy).policy_id;
  const r = await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: policyId }, who);
  assert.ok(r.outcome.ok);
  return gw;
}

function peerFor(gw: Gw, extra: Partial<ConstructorParameters<typeof TwilioPeer>[0]> = {}): TwilioPeer {
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550001111', redirectRetryMs: 5000, ...extra });
  open.push({ close: () => peer.close() });
  return peer;
}

const reducers = (gw: Gw): string[] => [...gw.store.events()].map((e) => e.reducer);
const callOf = (gw: Gw, sid: string) => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: sid });

test('a full call: answered, the agent greets, answers a spoken turn and a DTMF, hang-up ends the call', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  const dial = await peer.dial();
  assert.equal(dial.kind, 'streaming');
  // The greeting arrives as paced µ-law with marks, and the peer plays it out.
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'active', 10_000, 'disclosure played, consent (notify) decided');
  await peer.waitFor(() => peer.marksEchoed >= 10, 10_000, 'greeting playing');
  assert.ok(ulawEnergy(peer.receivedAudio()) > 200, 'the greeting is audible, not silence');
  const call = callOf(gw, peer.callSid);
  const consent = gw.store.read('default').consents.get(call?.consent_id ?? '');
  assert.equal(consent?.outcome, 'granted');
  assert.equal(consent?.method, 'implied');
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call!.id, status: 'succeeded' }).length >= 1, 10_000, 'greeting done');

  const beforeReply = peer.receivedAudio().length;
  await peer.play(speechUlaw('I would like to check my account balance please'));
  await peer.waitFor(() => peer.receivedAudio().length > beforeReply + 4000, 10_000, 'the agent answers the spoken turn');
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call!.id, status: 'succeeded' }).length >= 2, 10_000, 'reply done');

  peer.sendDtmf('5');
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call!.id }).length >= 3, 5_000, 'DTMF answered');
  const dtmfSay = opened(gw.store, 'agent_actions', gw.store.read('default').agent_actions.find({ call_id: call!.id })).find((a) => JSON.stringify(a.args).includes('pressed 5'));
  assert.ok(dtmfSay, 'the agent said which key was pressed');

  await peer.hangup();
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'ended', 5_000, 'call ended');
  const ended = callOf(gw, peer.callSid);
  assert.equal(ended?.end_reason, 'twilio:completed');
  assert.equal(gw.store.read('default').calls.find().length, 1);
  const order = reducers(gw);
  for (const r of ['call_received', 'call_answered', 'call_media_connected', 'consent_started', 'consent_decided', 'agent_turn_started', 'agent_action_requested', 'agent_state_saved', 'call_ended']) {
    assert.ok(order.includes(r), `${r} logged`);
  }
  assert.ok(order.indexOf('call_received') < order.indexOf('call_media_connected'));
  assert.ok(order.indexOf('consent_decided') < order.indexOf('agent_turn_started'), 'no agent turn before the consent decision');
  assert.ok((gw.store.read('default').agent_state.get(call!.id)?.turn ?? 0) >= 3);
  assert.ok(gw.store.verify().ok);
  assert.ok(gw.store.replay().ok);
});

// The unknown-number case (refused, call_rejected, no call row) runs in the shared ingress suite (test/e2e/ingress-suite.test.ts).

test('bad and missing signatures are refused with 403 and nothing is written', async () => {
  const gw = await gateway();
  const head = gw.store.head.seq;
  const params = { CallSid: 'CA' + 'a'.repeat(32), From: '+15550001111', To: NUMBER };
  const post = (path: string, headers: Record<string, string>) =>
    fetch(`${gw.publicUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
  const wrongKey = twilio.getExpectedTwilioSignature('not-the-token', `${gw.publicUrl}/twilio/voice`, params);
  const otherUrl = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${gw.publicUrl}/twilio/status`, params);
  for (const [path, headers] of [
    ['/twilio/voice', {}],
    ['/twilio/voice', { 'x-twilio-signature': wrongKey }],
    ['/twilio/voice', { 'x-twilio-signature': otherUrl }],
    ['/twilio/status', {}],
  ] as Array<[string, Record<string, string>]>) {
    const res = await post(path, headers);
    assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'forbidden');
  }
  // The media socket upgrade too.
  const wsUrl = `${gw.publicUrl.replace('http', 'ws')}/twilio/media`;
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(wsUrl);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => undefined);
  });
  assert.equal(status, 403);
  assert.equal(gw.store.head.seq, head, 'nothing written');
  // A signed stream with a forged token is closed with policy violation, also writing nothing.
  const signed = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, wsUrl, {});
  const code = await new Promise<number>((resolve) => {
    const ws = new WebSocket(wsUrl, { headers: { 'x-twilio-signature': signed } });
    ws.on('open', () => {
      ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
      ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid: 'MZ1', start: { streamSid: 'MZ1', callSid: params.CallSid, customParameters: { token: 'forged' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
    });
    ws.on('close', (c) => resolve(c));
  });
  assert.equal(code, 1008);
  assert.equal(gw.store.head.seq, head);
});

test('a Twilio webhook retry makes one call row', async () => {
  const gw = await gateway();
  const params = { CallSid: 'CA' + 'b'.repeat(32), AccountSid: 'AC' + '1'.repeat(32), From: '+15550001111', To: NUMBER, CallStatus: 'ringing' };
  const url = `${gw.publicUrl}/twilio/voice`;
  const sig = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params);
  const bodies: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig }, body: new URLSearchParams(params) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/xml/);
    bodies.push(await res.text());
  }
  for (const b of bodies) assert.match(b, /<Connect><Stream url="ws:\/\/127\.0\.0\.1:\d+\/twilio\/media"><Parameter name="token" value="[^"]+"\/><\/Stream><\/Connect><Redirect method="POST">http:\/\/127\.0\.0\.1:\d+\/twilio\/voice<\/Redirect>/);
  assert.equal(gw.store.read('default').calls.find().length, 1);
  assert.equal(reducers(gw).filter((r) => r === 'call_received').length, 3, 'each retry is logged…');
  assert.equal(reducers(gw).filter((r) => r === 'call_resume_requested').length, 0, '…but a retry before media is not a resume');
  // Malformed params are a 400 with the reason, not a crash.
  const bad = { CallSid: 'nope', To: NUMBER };
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, bad) }, body: new URLSearchParams(bad) });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /CallSid/);
});

test('malformed, oversized, binary and out-of-order media messages are dropped; the call goes on', { timeout: 40_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = callOf(gw, peer.callSid)!;
  await peer.waitFor(() => gw.calls.get(call.id) !== undefined, 5_000, 'session attached');
  const sid = peer.streamSid!;
  peer.sendRaw('this is not json');
  peer.sendRaw(JSON.stringify({ event: 'media', sequenceNumber: '99999998', streamSid: sid, media: { payload: 'A'.repeat(200_000) } }));
  peer.sendRaw(JSON.stringify({ event: 'media', sequenceNumber: '1000000', streamSid: sid, media: { payload: '////' } }));
  peer.sendRaw(JSON.stringify({ event: 'media', sequenceNumber: '999999', streamSid: sid, media: { payload: '////' } })); // late duplicate: dropped
  // …and the peer's own, far lower, numbering then resynchronises instead of being dropped for the rest of the call.
  peer.sendRaw(Buffer.from([1, 2, 3, 4]));
  peer.sendRaw(JSON.stringify({ event: 'media', sequenceNumber: '1000001', streamSid: sid, media: { payload: '%%%%' } }));
  peer.sendRaw(JSON.stringify({ event: 'dtmf', streamSid: sid, dtmf: { digit: 'X' } }));
  peer.sendRaw(JSON.stringify({ event: 'something-new', streamSid: sid }));
  await peer.waitFor(() => (gw.calls.get(call.id)?.leg as TwilioLeg | undefined)?.stats.dropped.unknown === 1, 3_000, 'all bad messages seen');
  const leg = gw.calls.get(call.id)?.leg as TwilioLeg;
  assert.equal(leg.stats.dropped.malformed, 5, 'not JSON, oversized, binary, not base64, bad DTMF digit');
  assert.equal(leg.stats.dropped.outOfOrder, 1, '999999 after 1000000');
  const heard = leg.stats.mediaMessages;
  await peer.waitFor(() => leg.stats.mediaMessages > heard + 10, 3_000, 'media flows again after the resync');
  assert.equal(peer.streams, 1, 'the same socket carries on');
  const before = gw.store.read('default').agent_actions.find({ call_id: call.id }).length;
  peer.sendDtmf('7');
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call.id }).length > before, 10_000, 'agent answered the DTMF');
  assert.notEqual(callOf(gw, peer.callSid)?.state, 'ended');
});

// The dropped-stream resume (media lost → <Redirect> → same call on a new stream, the agent carries on) runs in the shared ingress suite.

test('barge-in: caller speech over the greeting clears Twilio’s buffer; the say row records what was heard', { timeout: 40_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = callOf(gw, peer.callSid)!;
  // Let about a second of the ~4 s greeting play, then talk over it.
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call.id, request_id: 't1:onStart:say:1' }).length === 1, 10_000, 'greeting requested');
  const marks = peer.marksEchoed;
  await peer.waitFor(() => peer.marksEchoed >= marks + 4, 10_000, 'greeting playing');
  await peer.play(speechUlaw('hello hello is anybody there'));
  await peer.waitFor(() => peer.clears >= 1, 5_000, 'clear sent');
  // (How much the peer drops on clear depends on how far ahead of playout the paced audio was — often
  // under one frame — so the deterministic checks are the clear itself and the heard/duration below.)
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call.id, request_id: 't1:onStart:say:1', status: 'succeeded' }).length === 1, 5_000, 'greeting row completed');
  const greeting = opened(gw.store, 'agent_actions', gw.store.read('default').agent_actions.find({ call_id: call.id, request_id: 't1:onStart:say:1' }))[0];
  const result = greeting?.result as { duration_ms: number; heard_ms: number; interrupted: boolean };
  assert.equal(result.interrupted, true);
  assert.ok(result.heard_ms >= 600 && result.heard_ms < result.duration_ms, `heard ${result.heard_ms} of ${result.duration_ms} ms`);
});

test('the status callback is idempotent and safe out of order', async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = callOf(gw, peer.callSid)!;
  const post = async (status: string) => (await peer.postStatus(status)) as { status: number };
  assert.equal((await post('completed')).status, 204);
  assert.equal((await post('in-progress')).status, 204, 'a late in-progress after completed changes nothing');
  assert.equal((await post('completed')).status, 204);
  assert.equal(callOf(gw, peer.callSid)?.state, 'ended');
  assert.equal(reducers(gw).filter((r) => r === 'call_ended').length, 1, 'one call_ended, duplicates deduplicated');
  // A redirect of an ended call hangs up instead of resuming.
  const url = `${gw.publicUrl}/twilio/voice`;
  const params = { CallSid: peer.callSid, From: '+15550001111', To: NUMBER, CallStatus: 'in-progress' };
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params) }, body: new URLSearchParams(params) });
  assert.match(await res.text(), /<Response><Hangup\/><\/Response>/);
  assert.equal(callOf(gw, peer.callSid)?.id, call.id);
  assert.equal(callOf(gw, peer.callSid)?.state, 'ended');
});

test('development profile without TWILIO_AUTH_TOKEN accepts unsigned webhooks (with a warning); production refuses them', async () => {
  const dev = await gateway({ profile: 'development', twilioToken: null });
  const devPeer = peerFor(dev, { authToken: null });
  assert.equal((await devPeer.dial()).kind, 'streaming');
  const prod = await gateway({ profile: 'production', twilioToken: null });
  const prodPeer = peerFor(prod, { authToken: null });
  const r = await prodPeer.dial();
  assert.equal(r.kind, 'error');
  assert.equal(prod.store.read(null).calls.find().length, 0);
});

test('/metrics reports live calls and outbound frame pacing', { timeout: 30_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => peer.receivedAudio().length > 8000, 10_000, 'audio flowing');
  const text = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
  assert.equal(metric('switchboard_calls_active'), 1);
  assert.ok(metric('switchboard_media_frames_sent_total') >= 50);
  assert.ok(Number.isFinite(metric('switchboard_media_frames_late_total')));
  assert.ok(metric('switchboard_store_head_seq') > 0);
});

test('/metrics exposes event-loop delay and media tick time after a call, with sane values', { timeout: 30_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => peer.receivedAudio().length > 8000, 10_000, 'audio flowing');
  await peer.hangup();
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'ended', 10_000, 'call ended');
  const text = await (await fetch(`${gw.publicUrl}/metrics`)).text();
  const value = (line: string): number => {
    const m = new RegExp(`^${line.replace(/[{}"+.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `${line} in /metrics`);
    return Number(m[1]);
  };
  const p50 = value('switchboard_event_loop_delay_seconds{stat="p50"}');
  const p99 = value('switchboard_event_loop_delay_seconds{stat="p99"}');
  const max = value('switchboard_event_loop_delay_seconds{stat="max"}');
  assert.ok(p50 >= 0 && p50 <= p99 && p99 <= max, `loop delay p50 ${p50} p99 ${p99} max ${max}`);
  assert.ok(max < 60, `loop delay max ${max} s is a delay, not a clock reading`);
  const ticks = value('switchboard_media_tick_seconds_count');
  // The call streamed for over a second: the clock ticked hundreds of times (every 5 ms on one of 4 phases).
  assert.ok(ticks >= 50, `media ticks counted: ${ticks}`);
  assert.equal(value('switchboard_media_tick_seconds_bucket{le="+Inf"}'), ticks);
  const sum = value('switchboard_media_tick_seconds_sum');
  assert.ok(sum > 0 && sum / ticks < 0.02, `mean tick ${sum / ticks} s`);
  assert.ok(value('switchboard_media_tick_seconds_bucket{le="0.02"}') <= ticks);
});
