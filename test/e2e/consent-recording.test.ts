/**
 * Consent first, then dual-channel recording and transcripts — end to end
 * through the Twilio peer, checked in the store and on the decrypted file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553330000';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface PolicyOpts {
  mode?: 'opt-in' | 'opt-out' | 'notify';
  on_decline?: 'continue-unrecorded' | 'hangup';
  recording_format?: 'wav' | 'ogg' | 'mp3';
  timeout_ms?: number;
  retries?: number;
}

async function setup(policy: PolicyOpts = {}, gwOpts: Parameters<typeof startTestGateway>[0] & { env?: Record<string, string> } = {}) {
  const gw = await startTestGateway(gwOpts);
  cleanup.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 2000, retries: 0, ...policy }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550003333', redirectRetryMs: 5000 });
  cleanup.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider_call_id: peer.callSid })!;
  await peer.waitFor(() => read().calls.findOne({ provider_call_id: peer.callSid })?.consent_id != null, 5000, 'consent started');
  return { gw, peer, read, call };
}

/** Hangs up and waits for the call to end and each of its recordings to settle (no fixed sleep: the box is busy). */
async function endCall(gw: Gw, peer: TwilioPeer): Promise<void> {
  await peer.hangup();
  const read = () => gw.store.read('default');
  await peer.waitFor(() => read().calls.findOne({ provider_call_id: peer.callSid })?.state === 'ended', 15_000, 'ended');
  const callId = read().calls.findOne({ provider_call_id: peer.callSid })!.id;
  const settled = (status: string) => status === 'finalized' || status === 'failed' || status === 'purged';
  await peer.waitFor(() => read().recordings.find({ call_id: callId }).every((r) => settled(r.status)), 30_000, 'recordings finalized');
  await gw.recordings.idle();
}

/** Decrypts the recording and checks it against its row; returns the WAV's stereo PCM channels' energy. */
function checkRecording(gw: Gw, recordingId: string) {
  const rec = gw.store.read('default').recordings.get(recordingId)!;
  assert.equal(rec.status, 'finalized', `recording ${rec.status}: ${rec.failure}`);
  const blob = fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!));
  const plain = decryptRecording(blob, loadOrCreateMasterKey(gw.dataDir));
  assert.equal(crypto.createHash('sha256').update(plain).digest('hex'), rec.sha256, 'sha256 of the decrypted file equals the row');
  assert.equal(plain.length, rec.bytes);
  assert.notEqual(crypto.createHash('sha256').update(blob).digest('hex'), rec.sha256, 'stored encrypted, not in the clear');
  const file = path.join(tmpDir('sb-rec-'), `r.${rec.format}`);
  fs.writeFileSync(file, plain);
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' })) as {
    streams: Array<{ channels: number; codec_name: string; sample_rate: string }>;
    format: { duration: string };
  };
  const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
  let left = 0;
  let right = 0;
  for (let i = 0; i + 3 < pcm.length; i += 4) {
    left += Math.abs(pcm.readInt16LE(i));
    right += Math.abs(pcm.readInt16LE(i + 2));
  }
  const frames = pcm.length / 4;
  return { rec, probe, leftEnergy: left / frames, rightEnergy: right / frames, durationMs: Number(probe.format.duration) * 1000 };
}

test('DTMF 1 grants consent; the call is recorded in two channels; the file decrypts, matches its sha256 and the call length', { timeout: 60_000 }, async () => {
  const { gw, peer, read, call } = await setup();
  peer.sendDtmf('1');
  await peer.waitFor(() => read().consents.get(call().consent_id!)?.outcome === 'granted', 8000, 'granted');
  const consent = read().consents.get(call().consent_id!)!;
  assert.equal(consent.method, 'dtmf');
  assert.equal((consent.evidence as { digit: string }).digit, '1');
  assert.match(String(consent.disclosure_sha256), /^[0-9a-f]{64}$/, 'the hash of the disclosure audio played is on the consent row');
  await peer.waitFor(() => read().agent_actions.find({ call_id: call().id, status: 'succeeded' }).length >= 1, 10_000, 'greeting');
  await peer.play(speechUlaw('I would like to pay my bill'));
  await peer.waitFor(() => read().agent_actions.find({ call_id: call().id, status: 'succeeded' }).length >= 2, 12_000, 'reply');
  await endCall(gw, peer);
  const c = call();
  const recs = read().recordings.find({ call_id: c.id });
  assert.equal(recs.length, 1);
  const { rec, probe, leftEnergy, rightEnergy, durationMs } = checkRecording(gw, recs[0]!.id);
  assert.equal(probe.streams[0]?.channels, 2);
  assert.equal(probe.streams[0]?.codec_name, 'pcm_mulaw');
  assert.ok(leftEnergy > 50, `caller (left) channel has the caller's speech (${leftEnergy})`);
  assert.ok(rightEnergy > 50, `agent (right) channel has the agent's speech (${rightEnergy})`);
  // The file spans the call (silence where nobody spoke), checked against what was sent, not the wall clock: every
  // 20 ms frame the caller sent is in it (the caller's clock runs from the stream's start, after the answer, to the
  // hang-up), and it is not longer than the call by more than a generous margin (the recorder closes on the end).
  const callMs = c.ended_at! - c.answered_at!;
  assert.ok(peer.sentFrames > 0);
  assert.ok(durationMs >= peer.sentFrames * 20 - 40, `recording ${durationMs} ms holds the ${peer.sentFrames} frames (${peer.sentFrames * 20} ms) the caller sent`);
  assert.ok(durationMs <= callMs + 2000, `recording ${durationMs} ms vs call ${callMs} ms`);
  assert.equal(rec.duration_ms !== null && Math.abs(rec.duration_ms - durationMs) <= 25, true);
  // Agent turns are transcribed from the text it spoke; consent came before all of it.
  const segs = read().transcript_segments.find({ call_id: c.id });
  assert.ok(segs.some((s) => s.channel === 'agent' && /Switchboard/.test(s.text)));
  const order = [...gw.store.events()].map((e) => e.reducer);
  assert.ok(order.indexOf('consent_decided') < order.indexOf('recording_started'));
  assert.ok(gw.store.verify().ok && gw.store.replay().ok);
});

test('DTMF 2 declines: no recording and no transcript rows; the call continues unrecorded per policy', { timeout: 40_000 }, async () => {
  const { gw, peer, read, call } = await setup({ on_decline: 'continue-unrecorded' });
  peer.sendDtmf('2');
  await peer.waitFor(() => read().consents.get(call().consent_id!)?.outcome === 'declined', 8000, 'declined');
  await peer.waitFor(() => read().agent_actions.find({ call_id: call().id, status: 'succeeded' }).length >= 1, 10_000, 'the agent still serves the call');
  await endCall(gw, peer);
  assert.equal(read().recordings.find({ call_id: call().id }).length, 0);
  assert.equal(read().transcript_segments.find({ call_id: call().id }).length, 0);
  // the blob store's only entry may be the call's content key (content-keys/: its consent evidence is sealed)
  const blobs = fs.existsSync(path.join(gw.dataDir, 'recordings')) ? fs.readdirSync(path.join(gw.dataDir, 'recordings')) : [];
  assert.deepEqual(blobs.filter((f) => f !== 'content-keys'), [], 'no media on disk');
});

test('a declining caller is hung up on when the policy says so', { timeout: 30_000 }, async () => {
  const { peer, read, call } = await setup({ on_decline: 'hangup' });
  peer.sendDtmf('2');
  await peer.waitFor(() => call().state === 'ended', 10_000, 'hung up');
  assert.equal(call().end_reason, 'consent declined');
  assert.equal(read().agent_actions.find({ call_id: call().id }).length, 0, 'the agent never took a turn');
});

test('silence: no_response after the timeout; opt-in means nothing is recorded', { timeout: 45_000 }, async () => {
  const { gw, peer, read, call } = await setup({ timeout_ms: 1500, retries: 1 });
  await peer.waitFor(() => read().consents.get(call().consent_id!)?.outcome === 'no_response', 30_000, 'no_response (two prompts of ~6 s + timeouts)');
  assert.equal(read().consents.get(call().consent_id!)?.method, 'implied');
  await endCall(gw, peer);
  assert.equal(read().recordings.find({ call_id: call().id }).length, 0);
});

test('withdrawal mid-call (*9): a withdrawn consent row, recording paused for good, no transcript after it', { timeout: 60_000 }, async () => {
  const { gw, peer, read, call } = await setup();
  peer.sendDtmf('1');
  await peer.waitFor(() => read().recordings.find({ call_id: call().id }).length === 1, 8000, 'recording');
  await peer.waitFor(() => read().agent_actions.find({ call_id: call().id, status: 'succeeded' }).length >= 1, 10_000, 'greeting');
  peer.sendDtmf('*');
  peer.sendDtmf('9');
  await peer.waitFor(() => read().consents.find({ call_id: call().id, outcome: 'withdrawn' }).length === 1, 5000, 'withdrawn');
  const rec = read().recordings.find({ call_id: call().id })[0]!;
  assert.equal(rec.status, 'paused');
  const segsAt = read().transcript_segments.find({ call_id: call().id }).length;
  const withdrawnAt = Date.now();
  await peer.play(speechUlaw('what is my balance'));
  await new Promise((r) => setTimeout(r, 2500));
  await endCall(gw, peer);
  assert.equal(read().transcript_segments.find({ call_id: call().id }).length, segsAt, 'no transcript after the withdrawal');
  const { rec: done } = checkRecording(gw, rec.id);
  const pauses = done.pauses as Array<{ reason: string; start_ms: number }>;
  assert.ok(pauses.some((p) => /withdrawn/.test(p.reason)), JSON.stringify(pauses));
  void withdrawnAt;
});

test('ffmpeg missing: an Ogg policy keeps the recording as WAV, with a clear warning', { timeout: 40_000 }, async () => {
  const { gw, peer, read, call } = await setup({ recording_format: 'ogg' }, { env: { SWITCHBOARD_FFMPEG: '/nonexistent/ffmpeg' } });
  peer.sendDtmf('1');
  await peer.waitFor(() => read().recordings.find({ call_id: call().id }).length === 1, 8000, 'recording');
  await new Promise((r) => setTimeout(r, 1500));
  await endCall(gw, peer);
  const { rec, probe } = checkRecording(gw, read().recordings.find({ call_id: call().id })[0]!.id);
  assert.equal(rec.format, 'wav');
  assert.equal(probe.streams[0]?.codec_name, 'pcm_mulaw');
});

test('an Ogg/Opus policy stores Ogg/Opus through ffmpeg', { timeout: 40_000 }, async () => {
  const { gw, peer, read, call } = await setup({ recording_format: 'ogg' });
  peer.sendDtmf('1');
  await peer.waitFor(() => read().recordings.find({ call_id: call().id }).length === 1, 8000, 'recording');
  await new Promise((r) => setTimeout(r, 1500));
  await endCall(gw, peer);
  const { rec, probe } = checkRecording(gw, read().recordings.find({ call_id: call().id })[0]!.id);
  assert.equal(rec.format, 'ogg');
  assert.equal(probe.streams[0]?.codec_name, 'opus');
  assert.equal(probe.streams[0]?.channels, 2);
});

test('the stream drops during the consent prompt: the consent stays pending, the resumed call asks again and DTMF 1 grants', { timeout: 40_000 }, async () => {
  const { gw, peer, read, call } = await setup({ timeout_ms: 3000 });
  await peer.waitFor(() => peer.receivedAudio().length > 4000, 8000, 'prompt playing');
  gw.calls.get(call().id)!.detach('network drop (test)');
  await peer.waitFor(() => peer.streams === 2, 10_000, 'resumed on a new stream');
  assert.equal(read().consents.get(call().consent_id!)?.outcome, 'pending', 'nothing decided for the dropped stream');
  const before = peer.receivedAudio().length;
  await peer.waitFor(() => peer.receivedAudio().length > before + 4000, 8000, 'prompt played again');
  peer.sendDtmf('1');
  await peer.waitFor(() => read().consents.get(call().consent_id!)?.outcome === 'granted', 8000, 'granted on the resumed stream');
  assert.equal(read().consents.find({ call_id: call().id }).length, 1, 'one consent row, continued');
  assert.notEqual(call().state, 'ended');
  await peer.waitFor(() => read().recordings.find({ call_id: call().id }).length === 1, 8000, 'recording started');
  await endCall(gw, peer);
  assert.equal(read().recordings.find({ call_id: call().id })[0]?.status, 'finalized');
});
