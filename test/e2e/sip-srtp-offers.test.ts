/**
 * SDES-SRTP in the offer/answer cases beyond a plain INVITE, on the real wire with real crypto: the scripted caller
 * (test/helpers/sip-ua.ts, werift's SRTP through ingress/sip/srtp.ts on its side) against a gateway whose SRTP policy
 * requires or prefers SRTP (SWITCHBOARD_SIP_ENCRYPTION per number). sipp cannot do SRTP, so the caller plays the
 * peer. "The gateway decrypted our media" is shown by a DTMF "1" (an RFC 4733 event inside SRTP) granting consent;
 * "we decrypted the gateway's" by its packets authenticating under the agreed keys (none failing).
 *
 *  - late offer (INVITE without SDP): the 200 carries our offer (RTP/SAVP under require, RTP/AVP under prefer) with
 *    GCM, _80 and _32 lines in that order; the ACK's answer picks _32 (require) or _80 (prefer); media both ways.
 *  - re-key mid-call, by re-INVITE and by UPDATE: the caller offers a new key, the media goes on under it (the DTMF
 *    after the re-key can only be read with the new key); a downgrade offer (RTP/AVP, no a=crypto) gets 488 and the
 *    call keeps its SRTP (under prefer: "this call is SRTP"; under require the trunk's policy answers first).
 *  - early media (SWITCHBOARD_SIP_EARLY_MEDIA): the 183's SDP carries a=crypto, the prompt before the 200 is SRTP.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const REQUIRE = '+15557771000';
const PREFER = '+15557772000';
let gw: Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<unknown> | void> = [];

before(async () => {
  const sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_ENCRYPTION: `*=allow, ${REQUIRE}=allow/require, ${PREFER}=allow/prefer` } });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 0 }, who));
  for (const number of [REQUIRE, PREFER]) resultOf(await gw.store.submit(number_added, { number, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  for (const close of open.reverse()) await close();
  await gw?.stop();
});

async function until(fn: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const heard = (ua: SipUa): number => ua.media.silencePackets + ua.media.received.length;
const sdpOf = (r: { body: Buffer } | null): string => r?.body.toString('utf8') ?? '';
const mediaOf = (sdp: string): { address: string; port: number } => ({ address: /^c=IN IP4 (\S+)/m.exec(sdp)?.[1] ?? '', port: Number(/^m=audio (\d+)/m.exec(sdp)?.[1]) });

async function caller(number: string, suite?: 'AES_CM_128_HMAC_SHA1_32'): Promise<SipUa> {
  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: number.slice(1), srtp: true, ...(suite ? { srtpSuite: suite } : {}) });
  open.push(() => ua.close());
  return ua;
}

/** The call of `ua`, by its SIP Call-ID. */
function callOf(ua: SipUa) {
  const read = gw.store.read('default');
  const call = read.calls.find({ provider: 'sip' }).find((c) => c.provider_call_id === ua.callId);
  return { read, call };
}

/** DTMF 1 inside SRTP grants consent: the gateway decrypted the caller's media. */
async function consentByDtmf(ua: SipUa): Promise<void> {
  await until(() => callOf(ua).call?.consent_id != null, 10_000, () => 'the consent prompt');
  assert.ok(ua.media.sendDtmf('1'));
  await until(() => {
    const { read, call } = callOf(ua);
    return read.consents.get(call!.consent_id!)?.outcome === 'granted';
  }, 15_000, () => `consent granted by the DTMF inside SRTP: ${JSON.stringify(callOf(ua).call)}`);
}

for (const level of ['require', 'prefer'] as const) {
  test(`late offer under SRTP ${level}: our offer with a=crypto in the 200, the ACK's answer picks a suite, media decrypts both ways`, { timeout: 60_000 }, async () => {
    const ua = await caller(level === 'require' ? REQUIRE : PREFER, level === 'require' ? 'AES_CM_128_HMAC_SHA1_32' : undefined);
    const ok = await ua.transact(ua.build('INVITE', { toTag: null }));
    assert.equal(ok?.status, 200);
    const offer = sdpOf(ok);
    assert.match(offer, level === 'require' ? /m=audio \d+ RTP\/SAVP / : /m=audio \d+ RTP\/AVP /);
    assert.deepEqual([...offer.matchAll(/^a=crypto:(\d+) (\S+) inline:/gm)].map((m) => `${m[1]} ${m[2]}`), ['1 AEAD_AES_128_GCM', '2 AES_CM_128_HMAC_SHA1_80', '3 AES_CM_128_HMAC_SHA1_32']);
    // The answer: _32 (tag 3) under require, _80 (tag 2) in RTP/AVP under prefer.
    const tag = level === 'require' ? 3 : 2;
    const answer = level === 'require' ? ua.offer({ cryptoTag: tag }) : ua.offer({ cryptoTag: tag }).replace('RTP/SAVP', 'RTP/AVP');
    ua.confirm(ok!);
    ua.ack(ok!, answer);
    ua.useSrtp(offer, tag);
    ua.media.start(mediaOf(offer));
    await until(() => heard(ua) > 50, 10_000, () => `SRTP from the gateway (failures ${ua.media.srtpFailures})`);
    await consentByDtmf(ua);
    assert.equal(ua.media.srtpFailures, 0, 'every gateway packet authenticated under the answer’s suite');
    const { read, call } = callOf(ua);
    assert.equal(call?.media_encryption, 'srtp');
    const leg = read.legs.find({ call_id: call!.id })[0]!;
    assert.equal((leg.resume as { srtp?: { suite: string; tag: number } }).srtp?.suite, level === 'require' ? 'AES_CM_128_HMAC_SHA1_32' : 'AES_CM_128_HMAC_SHA1_80');
    assert.equal(await ua.bye(), 200);
  });
}

// Under prefer the downgrade is refused because the call is SRTP; under require the trunk's policy refuses it first.
for (const [method, number, why] of [['INVITE', PREFER, /this call is SRTP/], ['UPDATE', REQUIRE, /this trunk requires SRTP/]] as const) {
  test(`re-key by ${method} mid-call (${number === PREFER ? 'prefer' : 'require'}): the media goes on under the new key; a downgrade to RTP/AVP gets 488 and the call stays SRTP`, { timeout: 60_000 }, async () => {
    const ua = await caller(number);
    assert.equal((await ua.invite()).status, 200);
    await until(() => heard(ua) > 25, 10_000, () => 'SRTP from the gateway');
    const oldKey = ua.srtpKey;

    ua.rekey();
    const rekeyed = await ua.transact(ua.build(method, { body: ua.offer() }));
    assert.equal(rekeyed?.status, 200);
    if (method === 'INVITE') ua.ack(rekeyed!);
    assert.match(sdpOf(rekeyed), /m=audio \d+ RTP\/SAVP /);
    assert.ok(!ua.srtpKey.key.equals(oldKey.key));
    ua.useSrtp(sdpOf(rekeyed));
    const failures = ua.media.srtpFailures;
    const before = heard(ua);
    await until(() => heard(ua) > before + 25, 10_000, () => 'SRTP from the gateway after the re-key');
    // Only the new key can carry this DTMF: the gateway switched.
    await consentByDtmf(ua);
    assert.equal(ua.media.srtpFailures, failures, 'the gateway’s packets authenticate under the new agreement');

    const plain = ua.offer().replace('RTP/SAVP', 'RTP/AVP').replace(/a=crypto:.*\r\n/, '');
    const refused = await ua.transact(ua.build(method, { body: plain }));
    assert.equal(refused?.status, 488);
    assert.match(refused!.headers.get('warning') ?? '', why);
    const after = heard(ua);
    await until(() => heard(ua) > after + 25, 10_000, () => 'SRTP goes on after the refused downgrade');
    assert.equal(ua.media.srtpFailures, failures);
    const { read, call } = callOf(ua);
    assert.equal(call?.media_encryption, 'srtp');
    assert.notEqual(call?.state, 'ended', 'the call goes on');
    const legs = read.legs.find({ call_id: call!.id });
    assert.equal((legs.at(-1)!.resume as { mediaEncryption?: string }).mediaEncryption, 'srtp');
    assert.equal(await ua.bye(), 200);
  });
}

test('early media under SRTP: the 183 answers with a=crypto and the prompt before the 200 is SRTP under that key', { timeout: 60_000 }, async () => {
  const wav = path.join(tmpDir('sb-early-srtp-'), 'notice.wav');
  toneWav(wav);
  const port = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const early = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(port), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_EARLY_MEDIA: wav, SWITCHBOARD_SIP_ENCRYPTION: 'allow/require' } });
  open.push(() => early.stop());
  resultOf(await early.store.submit(number_added, { number: REQUIRE, agent: 'default' }, { tenant: 'default', caller: 'test' }));
  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port }, to: REQUIRE.slice(1), srtp: true });
  open.push(() => ua.close());
  const raw: Buffer[] = [];
  ua.media.socket.on('message', (m: Buffer) => raw.push(m));

  const progress = ua.next((r) => r.status === 183, 15_000);
  const final = ua.transact(ua.build('INVITE', { body: ua.offer(), toTag: null }), 30_000);
  const p183 = await progress;
  const early183 = sdpOf(p183);
  assert.match(early183, /m=audio \d+ RTP\/SAVP /);
  assert.match(early183, /^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\S+/m);
  ua.useSrtp(early183);
  ua.media.start(mediaOf(early183));
  const ok = await final;
  const answeredAt = performance.now();
  assert.equal(ok?.status, 200);
  assert.equal(/^a=crypto:.*$/m.exec(sdpOf(ok))?.[0], /^a=crypto:.*$/m.exec(early183)?.[0], 'the 200 repeats the 183’s answer (same key)');
  ua.confirm(ok!);
  ua.ack(ok!);

  const prompt = ua.media.arrivals.filter((a) => a.at < answeredAt && !a.silence);
  assert.ok(prompt.length >= 20, `prompt packets decrypted before the 200: ${prompt.length}`);
  assert.equal(ua.media.srtpFailures, 0, 'every early packet authenticated under the 183’s key');
  assert.ok(raw.length >= prompt.length && raw.every((m) => m.length === 12 + 160 + 10), 'every packet on the wire carries the 80-bit SRTP tag');
  assert.equal(await ua.bye(), 200);
});

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
