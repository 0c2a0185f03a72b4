/**
 * Vonage end to end: an in-process gateway against the Vonage peer (signed-JWT
 * webhooks, NCCO, paced binary L16 at 16 kHz, websocket:dtmf, notify, clear,
 * the synchronous event that resumes a dropped socket). The same core as
 * Twilio: routing, consent, recording (kept at 16 kHz), transcripts, agents.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import type { VonageLeg } from '../../ingress/vonage/leg.ts';
import { PocketsphinxStt } from '../../speech/pocketsphinx.ts';
import { speechL16 } from '../helpers/audio-l16.ts';
import { api } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { startTestGateway, VONAGE_SECRET } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { sendRequest, vonageJwt, VonagePeer } from '../helpers/vonage-peer.ts';
import type { ArgsOf } from '../../store/index.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557770000';
const sttAvailable = (await PocketsphinxStt.available()).ok;
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

async function gateway(policy: Omit<ArgsOf<typeof consent_policy_created>, 'name'> = { mode: 'notify', disclosure_text: 'Recorded line.' }, opts: Parameters<typeof startTestGateway>[0] = {}): Promise<Gw> {
  const gw = await startTestGateway(opts);
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'vonage', ...policy }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'vonage', consent_policy_id: p.policy_id }, who));
  return gw;
}

function peerFor(gw: Gw, extra: Partial<ConstructorParameters<typeof VonagePeer>[0]> = {}): VonagePeer {
  const peer = new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to: NUMBER, retryMs: 5000, ...extra });
  open.push(() => peer.close());
  return peer;
}

const read = (gw: Gw) => gw.store.read('default');
const callOf = (gw: Gw, peer: VonagePeer) => gw.store.read('default').calls.findOne({ provider: 'vonage', provider_call_id: peer.uuid });
const succeeded = (gw: Gw, callId: string): number => read(gw).agent_actions.find({ call_id: callId, status: 'succeeded' }).length;

/** Hangs up and waits for the call to end and each of its recordings to settle (no fixed sleep: the box is busy). */
async function endCall(gw: Gw, peer: VonagePeer): Promise<void> {
  await peer.hangup();
  await peer.waitFor(() => callOf(gw, peer)?.state === 'ended', 15_000, 'ended');
  const callId = callOf(gw, peer)!.id;
  const settled = (status: string) => status === 'finalized' || status === 'failed' || status === 'purged';
  await peer.waitFor(() => read(gw).recordings.find({ call_id: callId }).every((r) => settled(r.status)), 30_000, 'recordings finalized');
  await gw.recordings.idle();
}

test('a full call with DTMF consent: recorded in stereo at 16 kHz, transcribed, the agent answers speech and DTMF', { timeout: 90_000 }, async () => {
  const gw = await gateway({ mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 4000, retries: 1 });
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  const ncco = peer.nccos[0]!;
  const connect = ncco[0] as { action: string; eventType: string; eventUrl: string[]; endpoint: Array<Record<string, unknown>> };
  assert.equal(connect.action, 'connect');
  assert.equal(connect.eventType, 'synchronous');
  assert.equal(connect.eventUrl[0], `${gw.publicUrl}/vonage/event`);
  assert.equal(connect.endpoint[0]?.['content-type'], 'audio/l16;rate=16000');
  assert.match(String((connect.endpoint[0]?.headers as { token: string }).token), /^sbm_[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{43}$/);
  await peer.waitFor(() => callOf(gw, peer)?.consent_id != null, 8000, 'consent started');
  await peer.waitFor(() => peer.receivedBytes > 16000, 8000, 'disclosure playing');
  peer.sendDtmf('1');
  const call = () => callOf(gw, peer)!;
  await peer.waitFor(() => read(gw).consents.get(call().consent_id!)?.outcome === 'granted', 10_000, 'granted');
  const consent = read(gw).consents.get(call().consent_id!)!;
  assert.equal(consent.method, 'dtmf');
  assert.deepEqual({ digit: (consent.evidence as { digit: string }).digit, source: (consent.evidence as { source: string }).source }, { digit: '1', source: 'provider' });
  await peer.waitFor(() => succeeded(gw, call().id) >= 1, 15_000, 'greeting');
  assert.ok(peer.notifiesEchoed > 0, 'playout reported through notify');
  await peer.play(speechL16('I would like to pay my bill'));
  await peer.waitFor(() => succeeded(gw, call().id) >= 2, 15_000, 'reply to speech');
  peer.sendDtmf('3');
  await peer.waitFor(() => succeeded(gw, call().id) >= 3, 15_000, 'reply to DTMF');
  await endCall(gw, peer);

  const c = call();
  assert.equal(c.end_reason, 'vonage:completed');
  const leg = read(gw).legs.find({ call_id: c.id })[0]!;
  assert.deepEqual([leg.provider, leg.codec, leg.sample_rate, leg.media_session], ['vonage', 'L16/16000', 16000, peer.conversationUuid]);
  const recs = read(gw).recordings.find({ call_id: c.id });
  assert.equal(recs.length, 1);
  const rec = recs[0]!;
  assert.equal(rec.status, 'finalized', `recording ${rec.status}: ${rec.failure}`);
  assert.equal((rec.segments[0] as { sample_rate: number }).sample_rate, 16000);
  const plain = decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir));
  assert.equal(crypto.createHash('sha256').update(plain).digest('hex'), rec.sha256);
  const file = path.join(tmpDir('sb-vrec-'), 'r.wav');
  fs.writeFileSync(file, plain);
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' })) as {
    streams: Array<{ channels: number; sample_rate: string }>;
    format: { duration: string };
  };
  assert.equal(probe.streams[0]?.channels, 2);
  assert.equal(probe.streams[0]?.sample_rate, '16000', '16 kHz in, 16 kHz recorded');
  // The file spans the call, checked against what was sent, not the wall clock: every 20 ms frame the caller sent
  // is in it, and it is not longer than the call by more than a generous margin.
  const callMs = c.ended_at! - c.answered_at!;
  const fileMs = Number(probe.format.duration) * 1000;
  assert.ok(peer.sentFrames > 0);
  assert.ok(fileMs >= peer.sentFrames * 20 - 40, `recording ${fileMs} ms holds the ${peer.sentFrames} frames (${peer.sentFrames * 20} ms) the caller sent`);
  assert.ok(fileMs <= callMs + 2000, `recording ${fileMs} ms vs call ${callMs} ms`);
  const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-'], { maxBuffer: 64 * 1024 * 1024 });
  let left = 0;
  let right = 0;
  for (let i = 0; i + 3 < pcm.length; i += 4) (left += Math.abs(pcm.readInt16LE(i))), (right += Math.abs(pcm.readInt16LE(i + 2)));
  assert.ok(left / (pcm.length / 4) > 20, 'caller (left) channel has the caller');
  assert.ok(right / (pcm.length / 4) > 20, 'agent (right) channel has the agent');
  const segs = read(gw).transcript_segments.find({ call_id: c.id });
  assert.ok(segs.some((s) => s.channel === 'agent'), 'agent turns transcribed');
  if (sttAvailable) assert.ok(segs.some((s) => s.channel === 'caller'), `the caller's 16 kHz speech transcribed: ${JSON.stringify(segs)}`);
  const order = [...gw.store.events()].map((e) => e.reducer);
  assert.ok(order.indexOf('consent_decided') < order.indexOf('recording_started'));
  assert.equal(peer.protocolErrors.length, 0, peer.protocolErrors.join('; '));
  assert.ok(gw.store.verify().ok && gw.store.replay().ok);
});

test('spoken consent ("yes") at 16 kHz grants through the speech recogniser', { timeout: 60_000, skip: sttAvailable ? false : 'pocketsphinx is not installed' }, async () => {
  const gw = await gateway({ mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 6000, retries: 0 });
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => callOf(gw, peer)?.consent_id != null, 8000, 'consent started');
  // Answer after the disclosure has played (speech over it would barge in, which is fine, but keep it simple).
  await peer.waitFor(() => peer.notifiesEchoed >= 3, 10_000, 'disclosure played');
  await peer.play(speechL16('yes I agree to the recording'));
  const consentOf = () => read(gw).consents.get(callOf(gw, peer)!.consent_id!);
  await peer.waitFor(() => consentOf()?.outcome !== 'pending', 15_000, 'decided');
  assert.equal(consentOf()?.outcome, 'granted');
  assert.equal(consentOf()?.method, 'speech');
  await endCall(gw, peer);
});

test('barge-in: caller speech over the greeting sends clear, Vonage drops its buffer', { timeout: 40_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => callOf(gw, peer)?.state === 'active', 10_000, 'active');
  await peer.waitFor(() => peer.receivedBytes > 64_000, 10_000, 'greeting streaming');
  await peer.play(speechL16('hello hello is anybody there'));
  await peer.waitFor(() => peer.clears >= 1, 10_000, 'clear sent');
  const leg = gw.calls.get(callOf(gw, peer)!.id)?.leg as VonageLeg | undefined;
  await peer.waitFor(() => (leg?.stats.cleared ?? 0) >= 1, 5000, 'websocket:cleared received');
  assert.equal(peer.protocolErrors.length, 0, peer.protocolErrors.join('; '));
  await endCall(gw, peer);
});

test('malformed binary frames (odd length, oversized) and bad text do not end the call', { timeout: 40_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => callOf(gw, peer)?.state === 'active', 10_000, 'active');
  const leg = gw.calls.get(callOf(gw, peer)!.id)!.leg as VonageLeg;
  peer.sendRaw(Buffer.alloc(641, 1));
  peer.sendRaw(Buffer.alloc(33));
  peer.sendRaw(Buffer.alloc(64_000, 2));
  peer.sendRaw('not json');
  peer.sendRaw('{"event":"websocket:dtmf","digit":"xx"}');
  peer.sendRaw('{"event":"websocket:something-new"}');
  await peer.waitFor(() => leg.stats.dropped.malformed >= 4 && leg.stats.dropped.oversized >= 1 && leg.stats.dropped.unknown >= 1, 5000, 'dropped and counted');
  const before = leg.stats.audioMessages;
  await peer.waitFor(() => leg.stats.audioMessages > before + 10, 5000, 'audio keeps flowing');
  assert.equal(leg.closed, false);
  assert.notEqual(callOf(gw, peer)?.state, 'ended');
  const c = callOf(gw, peer)!;
  const n = succeeded(gw, c.id);
  peer.sendDtmf('5');
  await peer.waitFor(() => succeeded(gw, c.id) > n, 15_000, 'the agent still answers');
  await endCall(gw, peer);
});

// The dropped-socket resume (synchronous `disconnected` → same call on a new socket) runs in the shared ingress suite (test/e2e/ingress-suite.test.ts).

test('an unknown number: an NCCO that says so, the call ends, call_rejected is logged', { timeout: 20_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw, { to: '+15550000404', answerMethod: 'GET' });
  const r = await peer.dial();
  assert.equal(r.kind, 'ended');
  assert.equal(peer.talks.length, 1);
  assert.match(peer.talks[0]!, /not in service/);
  const rejected = [...gw.store.events()].filter((e) => e.reducer === 'call_rejected');
  assert.equal(rejected.length, 1);
  assert.equal((rejected[0]!.args as { provider: string }).provider, 'vonage');
  assert.equal((rejected[0]!.args as { to: string }).to, '+15550000404');
});

test('a bad, missing, replayed or body-swapped JWT is refused (403) and nothing is written', { timeout: 20_000 }, async () => {
  const gw = await gateway();
  const head = gw.store.head.seq;
  const url = `${gw.publicUrl}/vonage/answer`;
  const body = JSON.stringify({ to: NUMBER.slice(1), from: '15550001111', uuid: crypto.randomUUID(), conversation_uuid: `CON-${crypto.randomUUID()}` });
  const bearer = (t: string): Record<string, string> => ({ Authorization: `Bearer ${t}` });
  const cases: Array<[string, Record<string, string>, string?]> = [
    ['missing', {}],
    ['wrong secret', bearer(vonageJwt('not-the-secret', body))],
    ['alg none', bearer(`${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iat: Math.floor(Date.now() / 1000), jti: 'x', payload_hash: crypto.createHash('sha256').update(body).digest('hex') })).toString('base64url')}.`)],
    ['old iat', bearer(vonageJwt(VONAGE_SECRET, body, { iat: Math.floor(Date.now() / 1000) - 3600 }))],
    ['payload_hash of another body', bearer(vonageJwt(VONAGE_SECRET, '{"to":"1"}')), body],
  ];
  for (const [what, headers, b] of cases) {
    const res = await sendRequest(url, 'POST', b ?? body, headers);
    assert.ok(!('error' in res) && res.status === 403, `${what}: ${JSON.stringify(res)}`);
  }
  const token = vonageJwt(VONAGE_SECRET, body);
  const first = await sendRequest(url, 'POST', body, bearer(token));
  assert.ok(!('error' in first) && first.status === 200, JSON.stringify(first));
  const headAfterFirst = gw.store.head.seq;
  assert.ok(headAfterFirst > head, 'the genuine request was served');
  const replayed = await sendRequest(url, 'POST', body, bearer(token));
  assert.ok(!('error' in replayed) && replayed.status === 403, `replayed jti: ${JSON.stringify(replayed)}`);
  const ev = await sendRequest(`${gw.publicUrl}/vonage/event`, 'POST', '{"uuid":"00000000-0000-4000-8000-000000000000","status":"completed"}', {});
  assert.ok(!('error' in ev) && ev.status === 403);
  assert.equal(gw.store.head.seq, headAfterFirst, 'nothing written for the refused requests');
  // The media socket's handshake is signed too.
  const ws = new WebSocket(`${gw.publicUrl.replace(/^http/, 'ws')}/vonage/media`);
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => resolve(-1));
  });
  ws.terminate();
  assert.equal(status, 403);
  assert.equal(read(gw).calls.find({ provider: 'vonage' }).length, 1, 'only the genuine call exists');
});

test('a signed webhook replayed after a gateway restart is refused (the jti is claimed durably) and nothing is written', { timeout: 30_000 }, async () => {
  const gw1 = await gateway();
  const dataDir = gw1.dataDir;
  const body = JSON.stringify({ to: NUMBER.slice(1), from: '15550001111', uuid: crypto.randomUUID(), conversation_uuid: `CON-${crypto.randomUUID()}` });
  const headers = { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, body)}` };
  const first = await sendRequest(`${gw1.publicUrl}/vonage/answer`, 'POST', body, headers);
  assert.ok(!('error' in first) && first.status === 200, JSON.stringify(first));
  const wsHeaders = { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, null)}` };
  const ws1 = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${gw1.publicUrl.replace(/^http/, 'ws')}/vonage/media`, { headers: wsHeaders });
    ws.on('open', () => (resolve(101), ws.terminate()));
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
  assert.equal(ws1, 101, 'the signed media handshake was accepted once');
  await gw1.stop();

  // Same data dir, a fresh process state: the in-memory replay cache is empty.
  const gw2 = await startTestGateway({ dataDir });
  open.push(() => gw2.stop());
  const head = gw2.store.head.seq;
  const calls = read(gw2).calls.find().length;
  const replayed = await sendRequest(`${gw2.publicUrl}/vonage/answer`, 'POST', body, headers);
  assert.ok(!('error' in replayed) && replayed.status === 403, `replayed after restart: ${JSON.stringify(replayed)}`);
  assert.match(replayed.body, /replayed/);
  const ws2 = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${gw2.publicUrl.replace(/^http/, 'ws')}/vonage/media`, { headers: wsHeaders });
    ws.on('open', () => (resolve(101), ws.terminate()));
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
  assert.equal(ws2, 403, 'the media handshake token cannot be replayed after a restart either');
  assert.equal(gw2.store.head.seq, head, 'nothing written for the replays');
  assert.equal(read(gw2).calls.find().length, calls);
  assert.equal(gw2.store.read(null).webhook_nonces.find().length, 2, 'the two accepted jtis, durable');
  // A freshly signed request for the same call is served.
  const fresh = await sendRequest(`${gw2.publicUrl}/vonage/answer`, 'POST', body, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, body)}` });
  assert.ok(!('error' in fresh) && fresh.status === 200, JSON.stringify(fresh));
});

test('lifecycle events are idempotent and out-of-order safe', { timeout: 30_000 }, async () => {
  const gw = await gateway();
  const peer = peerFor(gw);
  // Events before the answer webhook (unknown call) are ignored.
  const early = await peer.postEvent({ uuid: peer.uuid, status: 'started' });
  assert.ok(!('error' in early) && early.status === 204);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => callOf(gw, peer)?.state === 'active', 10_000, 'active');
  const done = await peer.postEvent({ uuid: peer.uuid, status: 'completed' });
  assert.ok(!('error' in done) && done.status === 204);
  await peer.waitFor(() => callOf(gw, peer)?.state === 'ended', 5000, 'ended');
  const late = [await peer.postEvent({ uuid: peer.uuid, status: 'completed' }), await peer.postEvent({ uuid: peer.uuid, status: 'answered' }), await peer.postEvent({ uuid: peer.uuid, status: 'ringing' })];
  for (const r of late) assert.ok(!('error' in r) && r.status === 204);
  assert.equal([...gw.store.events()].filter((e) => e.reducer === 'call_ended' && e.outcome.ok).length, 1);
  assert.equal(callOf(gw, peer)?.state, 'ended');
  assert.equal(callOf(gw, peer)?.end_reason, 'vonage:completed');
  // A disconnected event for the ended call's media leg asks for nothing more.
  const after = await peer.postEvent({ uuid: crypto.randomUUID(), status: 'disconnected' });
  assert.ok(!('error' in after) && after.status === 200 && after.body === '[]', JSON.stringify(after));
  await peer.close();
});

test('an agent transfers the caller: the socket closes, the synchronous event answers with a connect to the target', { timeout: 60_000 }, async () => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push(() => gw.stop());
  const number = '+15550125500';
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number, agent: 'concierge', consent_policy: 'short', provider: 'vonage' } })).status, 201);
  assert.equal((await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work: tmpDir('sb-vtransfer-') })).status, 201);
  const peer = peerFor(gw, { to: number });
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = () => callOf(gw, peer)!;
  await peer.waitFor(() => read(gw).agent_actions.find({ call_id: call().id }).some((a) => a.status === 'succeeded'), 15_000, 'greeted');
  peer.sendDtmf('0');
  await peer.waitFor(() => peer.dialed.length === 1, 10_000, 'Vonage told to connect the target');
  assert.deepEqual(peer.dialed, ['15559990000']);
  assert.equal(peer.streams, 1, 'no new media socket: the caller went to the human');
  await peer.waitFor(() => call().state === 'ended', 10_000, 'the call ends when the NCCO runs out');
  assert.ok([...gw.store.events()].some((e) => e.reducer === 'call_transfer_started' && e.outcome.ok));
});
