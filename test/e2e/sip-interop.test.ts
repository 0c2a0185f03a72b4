/**
 * SIP interop against sipp (a real SIP UAC), in-process gateway on free ports: late offer (the 200 offers, the ACK
 * answers; an ACK without an answer gets BYE), `Require: 100rel` with PRACK, UPDATE mid-call (hold, refresh,
 * unhold), and session timers (RFC 4028) with a short Session-Expires (6 s; SWITCHBOARD_SIP_MIN_SE=2 for the test):
 * the gateway refreshes as refresher with UPDATE or re-INVITE, hangs up `sip:session-expired` when the peer's
 * refresh never comes, and answers 422 below its Min-SE. Early media (SWITCHBOARD_SIP_EARLY_MEDIA, a second
 * gateway): 183 + SDP and the prompt's RTP before the 200. No duration is asserted: each run waits for the message.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553340000';
const SERVICE = '15553340000';
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let sipPort: number;

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({
    env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 199}`, SWITCHBOARD_SIP_RING_MS: '300', SWITCHBOARD_SIP_MIN_SE: '2' },
  });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  await gw?.stop();
});

const read = () => gw.store.read('default');
const callBy = (sipCallId: string) => read().calls.findOne({ provider: 'sip', provider_call_id: sipCallId });
const sippCallId = (run: SippRun): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
const received = (run: SippRun, first: RegExp) => run.messages.filter((m) => m.dir === 'received' && first.test(m.first));

async function ended(run: SippRun) {
  const end = Date.now() + 10_000;
  for (;;) {
    const c = callBy(sippCallId(run));
    if (c?.state === 'ended') return c;
    if (Date.now() > end) throw new Error(`call ${sippCallId(run)} not ended (${c?.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sipp = (scenario: string) => runSipp({ scenario, port: sipPort, service: SERVICE, timeoutS: 45 });

test('late offer: an INVITE without SDP gets our offer in the 200 and its answer from the ACK; the call runs and ends by BYE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_late_offer.xml');
  assert.equal(run.code, 0, run.output);
  const ok = received(run, /^SIP\/2.0 200/).find((m) => /CSeq:\s*1 INVITE/i.test(m.text));
  assert.match(ok!.text, /a=rtpmap:0 PCMU\/8000/);
  const call = await ended(run);
  assert.equal(call.end_reason, 'sip:bye');
  assert.ok(call.answered_at !== null);
  assert.equal(read().legs.find({ call_id: call.id })[0]?.codec, 'PCMU');
});

test('late offer with no answer in the ACK: the gateway hangs up with BYE (Reason) and the call ends sip:bad-answer', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_late_offer_no_answer.xml');
  assert.equal(run.code, 0, run.output);
  const bye = received(run, /^BYE /)[0];
  assert.match(bye!.text, /Reason:.*sip:bad-answer/i);
  assert.equal((await ended(run)).end_reason, 'sip:bad-answer');
});

test('Require: 100rel: a reliable 180 (Require: 100rel, RSeq), PRACK answered 200, then the 200 to the INVITE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_100rel.xml');
  assert.equal(run.code, 0, run.output);
  const got = run.messages.filter((m) => m.dir === 'received').map((m) => `${m.first.split(' ')[1]} ${/CSeq:\s*\d+ (\w+)/i.exec(m.text)?.[1]}`);
  assert.ok(got.indexOf('200 PRACK') >= 0 && got.indexOf('200 PRACK') < got.indexOf('200 INVITE'), got.join(','));
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('UPDATE mid-call: an offer a=sendonly holds (answer recvonly), no body refreshes, a=sendrecv unholds', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_update.xml');
  assert.equal(run.code, 0, run.output);
  const call = await ended(run);
  assert.equal(call.end_reason, 'sip:bye');
  const mine = [...gw.store.events()].filter((e) => (e.args as { call_id?: string }).call_id === call.id).map((e) => e.reducer);
  assert.ok(mine.indexOf('call_held') > 0 && mine.indexOf('call_unheld') > mine.indexOf('call_held'), mine.join(','));
});

test('session timer, the gateway is refresher and the peer allows UPDATE: it refreshes with UPDATE (Session-Expires, refresher=uac)', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_update.xml');
  assert.equal(run.code, 0, run.output);
  const updates = received(run, /^UPDATE /);
  assert.equal(updates.length, 2);
  for (const u of updates) {
    assert.match(u.text, /Session-Expires:\s*6;refresher=uac/i);
    assert.match(u.text, /Supported:.*timer/i);
  }
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('session timer, the gateway is refresher and the peer does not allow UPDATE: it refreshes with a re-INVITE and ACKs its 200', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_reinvite.xml');
  assert.equal(run.code, 0, run.output);
  const reinvite = received(run, /^INVITE /)[0];
  assert.match(reinvite!.text, /Session-Expires:\s*6;refresher=uac/i);
  assert.match(reinvite!.text, /m=audio \d+ RTP\/AVP/);
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('session timer, the peer is refresher and never refreshes: BYE before expiry, the call ends sip:session-expired', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_expire.xml');
  assert.equal(run.code, 0, run.output);
  assert.match(received(run, /^BYE /)[0]!.text, /Reason:.*sip:session-expired/i);
  assert.equal((await ended(run)).end_reason, 'sip:session-expired');
});

test('Session-Expires below the Min-SE: 422 with Min-SE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_timer_too_small.xml');
  assert.equal(run.code, 0, run.output);
  assert.match(received(run, /^SIP\/2.0 422/)[0]!.text, /Min-SE:\s*2/i);
});

/** A 1 s 400 Hz tone as a 16-bit PCM, mono, 8 kHz WAV. */
function toneWav(file: string): void {
  const n = 8000;
  const data = Buffer.alloc(2 * n);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 400 * i) / 8000)), 2 * i);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

test('early media (SWITCHBOARD_SIP_EARLY_MEDIA): 183 with the SDP answer, the prompt arrives as RTP before the 200 OK', { timeout: 90_000 }, async () => {
  const wav = path.join(tmpDir('sb-early-'), 'notice.wav');
  toneWav(wav);
  const port = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const early = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(port), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_EARLY_MEDIA: wav } });
  const media = dgram.createSocket('udp4');
  try {
    resultOf(await early.store.submit(number_added, { number: NUMBER, agent: 'default' }, { tenant: 'default', caller: 'test' }));
    const packets: Array<{ at: number; pt: number; payload: Buffer }> = [];
    media.on('message', (m) => packets.push({ at: Date.now(), pt: (m[1] as number) & 0x7f, payload: m.subarray(12) }));
    await new Promise<void>((r) => media.bind(0, '127.0.0.1', () => r()));
    const run = await runSipp({ scenario: 'uac_early_media.xml', port, service: SERVICE, timeoutS: 45, extra: ['-key', 'rtpport', String(media.address().port)] });
    assert.equal(run.code, 0, run.output);
    const p183 = received(run, /^SIP\/2.0 183/)[0]!;
    assert.match(p183.text, /Content-Type:\s*application\/sdp/i);
    const ok = received(run, /^SIP\/2.0 200/).find((m) => /CSeq:\s*1 INVITE/i.test(m.text))!;
    const before = packets.filter((p) => p.at <= ok.at + 5 && p.pt === 0 && p.payload.some((b) => b !== 0xff && b !== 0x7f));
    assert.ok(before.length >= 40, `prompt packets before the 200: ${before.length} of ${packets.length}`);
  } finally {
    media.close();
    await early.stop();
  }
});
