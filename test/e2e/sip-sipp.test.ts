/**
 * SIP trunk end to end against sipp (a real SIP UAC), in-process gateway on
 * free ports (SWITCHBOARD_SIP_PORT, SWITCHBOARD_RTP_PORTS): the built-in
 * `uac_pcap` call (PCMA + RFC 4733) is answered and its DTMF 1 grants opt-in
 * consent; a call that presses 1 and then talks is recorded with the caller's
 * audio; a UAC that never ACKs gets 2xx retransmissions and then a BYE; CANCEL
 * before the answer; OPTIONS over UDP and TCP.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { runSipp } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553330000';
const SERVICE = '15553330000';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let sipPort: number;

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({
    env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 199}`, SWITCHBOARD_SIP_RING_MS: '1500' },
  });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 25_000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  await gw?.stop();
});

const read = () => gw.store.read('default');
const callBy = (sipCallId: string) => read().calls.findOne({ provider: 'sip', provider_call_id: sipCallId });
const sippCallId = (run: Awaited<ReturnType<typeof runSipp>>): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';

async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Decrypts the finalized recording; energies of the caller (left) and agent (right) channels. */
function recordingEnergy(recordingId: string): { left: number; right: number; status: string } {
  const rec = read().recordings.get(recordingId)!;
  if (rec.status !== 'finalized') return { left: 0, right: 0, status: rec.status };
  const plain = decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir));
  const file = path.join(tmpDir('sb-sip-rec-'), `r.${rec.format}`);
  fs.writeFileSync(file, plain);
  const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
  let left = 0;
  let right = 0;
  for (let i = 0; i + 3 < pcm.length; i += 4) {
    left += Math.abs(pcm.readInt16LE(i));
    right += Math.abs(pcm.readInt16LE(i + 2));
  }
  return { left: left / (pcm.length / 4), right: right / (pcm.length / 4), status: rec.status };
}

test('sipp uac_pcap (PCMA + RFC 4733): answered, DTMF 1 grants consent, BYE ends the call, the recording is finalized', { timeout: 90_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_pcap', port: sipPort, service: SERVICE });
  assert.equal(run.code, 0, run.output);
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 10_000, 'call ended');
  assert.equal(call.end_reason, 'sip:bye');
  assert.ok(call.answered_at !== null);
  const consent = read().consents.get(call.consent_id!)!;
  assert.equal(consent.outcome, 'granted');
  assert.equal(consent.method, 'dtmf');
  assert.equal((consent.evidence as { digit: string }).digit, '1');
  const leg = read().legs.find({ call_id: call.id })[0]!;
  assert.equal(leg.codec, 'PCMA');
  assert.equal(leg.media_session, sippCallId(run));
  await gw.recordings.idle();
  const recs = read().recordings.find({ call_id: call.id });
  assert.equal(recs.length, 1, 'recording after consent');
  const e = await waitFor(() => {
    const r = recordingEnergy(recs[0]!.id);
    return r.status === 'finalized' && r;
  }, 20_000, 'recording finalized');
  assert.ok(e.right > 20, `the agent's greeting is in the recording (${e.right})`);
  assert.ok(gw.store.verify().ok);
});

test('DTMF 1 then speech (custom sipp scenario): the caller channel of the recording carries the caller audio', { timeout: 90_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_dtmf_audio.xml', port: sipPort, service: SERVICE });
  assert.equal(run.code, 0, run.output);
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 10_000, 'call ended');
  assert.equal(read().consents.get(call.consent_id!)?.outcome, 'granted');
  await gw.recordings.idle();
  const rec = read().recordings.find({ call_id: call.id })[0];
  assert.ok(rec, 'recording row');
  const e = await waitFor(() => {
    const r = recordingEnergy(rec.id);
    return r.status === 'finalized' && r;
  }, 20_000, 'recording finalized');
  assert.ok(e.left > 50, `caller (left) channel has the pcap speech (${e.left})`);
  const order = [...gw.store.events()].map((ev) => ev.reducer);
  assert.ok(order.lastIndexOf('consent_decided') < order.lastIndexOf('recording_started'));
});

test('a UAC that never ACKs: the 200 is retransmitted (0.5, 1, 2, 4 s… ) and after 64·T1 the call ends with BYE', { timeout: 90_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_no_ack.xml', port: sipPort, service: SERVICE, timeoutS: 60 });
  assert.equal(run.code, 0, run.output);
  const oks = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 INVITE/i.test(m.text));
  const bye = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('BYE '));
  assert.ok(oks.length >= 8, `200 OK received ${oks.length} times`);
  const t0 = oks[0]!.at;
  const gaps = oks.slice(1, 5).map((m, i) => m.at - oks[i]!.at);
  // Each retransmission is timed from the previous one, so a busy event loop can only delay it. But sipp stamps a
  // message when it reads it: a loaded sipp that reads one late makes the next gap look that much shorter. So the
  // lower bounds (T1, 2·T1, 4·T1, T2) allow SLACK for the reader, still far apart enough to show the doubling; the
  // upper bounds are generous (twice the interval + 1 s), there only to catch a schedule that starts too slow.
  const SLACK = 400;
  for (const [i, expected] of [500, 1000, 2000, 4000].entries()) {
    const lower = expected === 500 ? expected - 150 : expected - SLACK;
    assert.ok(gaps[i]! >= lower && gaps[i]! <= 2 * expected + 1000, `retransmission ${i + 1} after ${gaps[i]} ms, expected ≥ ${expected}`);
  }
  // Capped at T2 = 4 s after that (RFC 3261 §13.3.1.4): never early (but for the reader's slack), never past the cap's doubling.
  for (let i = 5; i < oks.length; i++) {
    const gap = oks[i]!.at - oks[i - 1]!.at;
    assert.ok(gap >= 4000 - SLACK && gap < 8000 + 1000, `retransmission ${i} after ${gap} ms, expected ≥ 4000 (T2)`);
  }
  assert.ok(bye, 'BYE received');
  // Timer H = 64·T1 = 32 s after the first 200: not before it; the upper bound only guards against never.
  assert.ok(bye.at - t0 >= 32_000 - 50 && bye.at - t0 < 45_000, `BYE ${bye.at - t0} ms after the 200`);
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 5000, 'call ended');
  assert.equal(call.end_reason, 'sip:no-ack');
});

test('CANCEL while ringing: 200 to the CANCEL, 487 to the INVITE, the call is recorded as cancelled', { timeout: 60_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_cancel.xml', port: sipPort, service: SERVICE });
  assert.equal(run.code, 0, run.output);
  const got = run.messages.filter((m) => m.dir === 'received').map((m) => `${m.first.split(' ')[1]} ${/CSeq:\s*\d+ (\w+)/i.exec(m.text)?.[1]}`);
  assert.ok(got.includes('200 CANCEL'), got.join(','));
  assert.ok(got.includes('487 INVITE'), got.join(','));
  assert.ok(!got.includes('200 INVITE'), 'never answered');
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 5000, 'call row ended');
  assert.equal(call.end_reason, 'sip:cancel');
  assert.equal(call.answered_at, null);
});

test('in-dialog: SIP INFO DTMF 1 grants consent; re-INVITE sendonly holds (answer recvonly), sendrecv unholds', { timeout: 60_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_info_hold.xml', port: sipPort, service: SERVICE });
  assert.equal(run.code, 0, run.output);
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 10_000, 'call ended');
  assert.equal(call.end_reason, 'sip:bye');
  const consent = read().consents.get(call.consent_id!)!;
  assert.equal(consent.outcome, 'granted');
  assert.equal((consent.evidence as { digit: string }).digit, '1');
  const answers = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*[34] INVITE/i.test(m.text));
  assert.equal(answers.length >= 2, true, 'both re-INVITEs answered');
  assert.match(answers.find((m) => /CSeq:\s*3 /.test(m.text))!.text, /a=recvonly/);
  assert.match(answers.find((m) => /CSeq:\s*4 /.test(m.text))!.text, /a=sendrecv/);
  const mine = [...gw.store.events()].filter((e) => (e.args as { call_id?: string }).call_id === call.id).map((e) => e.reducer);
  assert.ok(mine.indexOf('call_held') > 0 && mine.indexOf('call_unheld') > mine.indexOf('call_held'), mine.join(','));
});

test('OPTIONS is answered 200 with Allow over UDP and TCP', { timeout: 60_000 }, async () => {
  for (const transport of ['u1', 't1'] as const) {
    const run = await runSipp({ scenario: 'uac_options.xml', port: sipPort, service: SERVICE, transport });
    assert.equal(run.code, 0, `${transport}: ${run.output}`);
  }
});
