/**
 * WebRTC end to end with a real browser: headless Chromium on the /phone page,
 * a fake microphone playing espeak-ng speech, werift on the gateway — inside a
 * private network namespace (helpers/netns.ts re-runs this file under
 * `unshare -n`). The built-in demo number (no `?to=`) reaches the default
 * agent under the opt-in demo policy: consent by saying yes, the agent
 * answers, hang up; the recording has both channels and the transcript rows
 * exist. Key 2 on the keypad declines. A bad SDP is a 400 with the reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { PHONE_CSP } from '../../api/phone.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import type { WebrtcLeg } from '../../ingress/webrtc/leg.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, openPhone, remoteLevel, waitFor } from '../helpers/softphone.ts';
import { tmpDir } from '../helpers/tmp.ts';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function gateway(): Promise<Gw> {
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_WEBRTC_DEMO: 'on' } });
  open.push(() => gw.stop());
  return gw;
}

async function browser(wav: string): Promise<Browser> {
  const b = await launchChromium(wav);
  open.push(() => b.close());
  return b;
}

const OFFER_PARTS = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:0123456789abcdef012345',
  'a=fingerprint:sha-256 ' + Array.from({ length: 32 }, () => 'AB').join(':'),
  'a=setup:actpass',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
];

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test('a bad SDP offer is refused with 400 and the reason; nothing is written', async () => {
    const gw = await gateway();
    const head = gw.store.head.seq;
    const post = (body: string, type = 'application/sdp', query = '') =>
      fetch(`${gw.publicUrl}/webrtc/offer${query}`, { method: 'POST', headers: { 'content-type': type }, body });
    const cases: Array<[string, RegExp]> = [
      ['hello', /v=0/],
      [OFFER_PARTS.filter((l) => !l.startsWith('a=rtpmap')).join('\r\n') + '\r\n', /opus\/48000/],
      [OFFER_PARTS.filter((l) => !l.startsWith('a=fingerprint')).join('\r\n') + '\r\n', /fingerprint/],
      [OFFER_PARTS.filter((l) => !l.startsWith('a=ice-')).join('\r\n') + '\r\n', /ICE credentials/],
      [OFFER_PARTS.map((l) => (l === 'a=sendrecv' ? 'a=recvonly' : l)).join('\r\n') + '\r\n', /sendrecv/],
      [OFFER_PARTS.map((l) => (l.startsWith('m=audio') ? 'm=audio 9 RTP/AVP 111' : l)).join('\r\n') + '\r\n', /DTLS-SRTP/],
    ];
    for (const [sdp, reason] of cases) {
      const res = await post(sdp);
      assert.equal(res.status, 400, sdp.slice(0, 40));
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'invalid_sdp');
      assert.match(body.error.message, reason);
    }
    assert.equal((await post('v=0', 'text/plain')).status, 415);
    const badTo = await post(OFFER_PARTS.join('\r\n') + '\r\n', 'application/sdp', '?to=' + encodeURIComponent('<script>'));
    assert.equal(badTo.status, 400);
    const badToken = await post(OFFER_PARTS.join('\r\n') + '\r\n', 'application/sdp', '?resume=sbw_forged.sig');
    assert.equal(badToken.status, 401);
    assert.equal((await fetch(`${gw.publicUrl}/webrtc/wrtc_${'a'.repeat(32)}`, { method: 'DELETE' })).status, 404);
    assert.equal(gw.store.head.seq, head, 'nothing written');
    // An unknown number is a 404 (logged as call_rejected, like every ingress).
    const unknown = await post(OFFER_PARTS.join('\r\n') + '\r\n', 'application/sdp', '?to=%2B15559990000');
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'unknown_number');
    assert.ok([...gw.store.events()].some((e) => e.reducer === 'call_rejected'));
  });

  test('softphone: call the demo agent, consent by saying yes, the agent answers, hang up; two-channel recording and transcript rows', { timeout: 150_000 }, async () => {
    const gw = await gateway();
    const wav = micWav([
      [null, 5],
      ['yes I agree to the recording', 14],
      ['I would like to check my account balance please', 8],
    ]);
    const b = await browser(wav);
    const { page, problems } = await openPhone(b, gw.publicUrl);
    for (const p of ['/phone', '/phone/app.js', '/phone/sdk.js', '/phone/style.css']) {
      const res = await fetch(gw.publicUrl + p);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get('content-security-policy'), PHONE_CSP, p);
    }
    assert.doesNotMatch(await (await fetch(`${gw.publicUrl}/phone`)).text(), /<script>|<script [^>]*>[^<]/, 'no inline script');

    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'webrtc' })[0];
    await waitFor(() => call() !== undefined, 5_000, 'call row');
    const callId = call()!.id;
    assert.equal(call()!.to_uri, 'demo');
    assert.equal(call()!.agent, 'default');

    // Consent by voice ("yes"), shown on the page through the scoped subscription.
    await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 40_000 });
    const consent = read().consents.get(call()!.consent_id!)!;
    assert.equal(consent.outcome, 'granted');
    assert.equal(consent.method, 'speech');
    assert.equal(consent.mode, 'opt-in');

    // The agent greets (audible in the browser), then answers the caller's turn.
    await waitFor(() => read().agent_actions.find({ call_id: callId }).length >= 1, 15_000, 'greeting requested');
    const level = await remoteLevel(page, 2500);
    assert.ok(level > 0.01, `the agent is audible in the browser (peak RMS ${level})`);
    await page.locator('#transcript .line.agent').first().waitFor({ timeout: 20_000 });
    await waitFor(() => read().agent_actions.find({ call_id: callId, status: 'succeeded' }).length >= 2, 40_000, 'the agent answered the spoken turn');
    await waitFor(() => read().transcript_segments.find({ call_id: callId, channel: 'caller' }).length >= 1, 20_000, 'caller transcript row');
    const leg = gw.calls.get(callId)?.leg as WebrtcLeg | undefined;
    assert.ok(leg && leg.stats.framesIn > 200 && leg.stats.framesOut > 100, `media both ways: ${JSON.stringify(leg?.stats)}`);
    assert.equal(leg.description.inputRate, 16000);

    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor();
    assert.equal(await page.locator('#console-link').getAttribute('href'), `/console#/calls/${callId}`);
    assert.equal(await page.locator('#ended-call').textContent(), callId);
    await waitFor(() => call()?.state === 'ended', 10_000, 'call ended');
    assert.equal(call()!.end_reason, 'webrtc:hangup');

    // The recording: finalized, both channels carry audio.
    await waitFor(() => read().recordings.find({ call_id: callId })[0]?.status === 'finalized', 30_000, 'recording finalized');
    const rec = read().recordings.find({ call_id: callId })[0]!;
    assert.equal(rec.channels, 2);
    const plain = decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir));
    const file = path.join(tmpDir('sb-wrtc-rec-'), `r.${rec.format}`);
    fs.writeFileSync(file, plain);
    const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
    let left = 0;
    let right = 0;
    for (let i = 0; i + 3 < pcm.length; i += 4) {
      left += Math.abs(pcm.readInt16LE(i));
      right += Math.abs(pcm.readInt16LE(i + 2));
    }
    assert.ok(left / (pcm.length / 4) > 30, `caller channel has audio (${left / (pcm.length / 4)})`);
    assert.ok(right / (pcm.length / 4) > 30, `agent channel has audio (${right / (pcm.length / 4)})`);
    const rows = read().transcript_segments.find({ call_id: callId });
    assert.ok(rows.some((r) => r.channel === 'agent') && rows.some((r) => r.channel === 'caller'), 'transcript rows for both sides');
    // The softphone's reads of its own transcript were logged.
    assert.ok(read().access_log.find({ call_id: callId, action: 'transcript_accessed' }).length >= 1);
    assert.deepEqual(problems, []);
    assert.ok(gw.store.verify().ok);
  });

  test('softphone: key 2 on the keypad declines consent; no recording, no transcript; the call goes on unrecorded', { timeout: 90_000 }, async () => {
    const gw = await gateway();
    const b = await browser(micWav([[null, 30]]));
    const { page, problems } = await openPhone(b, gw.publicUrl);
    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'webrtc' })[0];
    await waitFor(() => call()?.consent_id != null && read().consents.get(call()!.consent_id!)?.outcome === 'pending', 15_000, 'consent prompt running');
    await page.getByRole('button', { name: 'Key 2' }).click();
    await page.locator('#recording', { hasText: 'declined' }).waitFor({ timeout: 15_000 });
    const consent = read().consents.get(call()!.consent_id!)!;
    assert.equal(consent.outcome, 'declined');
    assert.equal(consent.method, 'dtmf');
    assert.deepEqual({ digit: (consent.evidence as { digit: string }).digit, source: (consent.evidence as { source: string }).source }, { digit: '2', source: 'rfc4733' });
    await waitFor(() => read().agent_actions.find({ call_id: call()!.id }).length >= 1, 15_000, 'the agent still talks (continue-unrecorded)');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await waitFor(() => call()?.state === 'ended', 10_000, 'ended');
    assert.equal(read().recordings.find({ call_id: call()!.id }).length, 0, 'no recording');
    assert.equal(read().transcript_segments.find({ call_id: call()!.id }).length, 0, 'no transcript');
    assert.deepEqual(problems, []);
  });
}
