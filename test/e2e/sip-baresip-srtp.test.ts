/**
 * SDES-SRTP end to end with a real softphone: baresip with `mediaenc=srtp-mand` (its srtp module, libre's SRTP —
 * not werift, so both ends are independent implementations) calls a gateway that requires SRTP
 * (SWITCHBOARD_SIP_ENCRYPTION=allow/require: the SRTP half required). The caller says "yes" to the recording disclosure and asks the agent something.
 * Checked: the call was answered as SRTP (leg resume `mediaEncryption: srtp`, the keys only sealed), consent granted
 * by speech (so the gateway really decrypted baresip's SRTP), the agent answered, the two-channel recording decodes
 * with audio on both channels, baresip heard the agent (so baresip decrypted ours), and a tcpdump capture of the
 * gateway's RTP ports shows SRTP only: no run of G.711 silence, payload bytes indistinguishable from random, and no
 * 32-byte stretch of the agent's audio (from the recording, G.711-encoded) anywhere on the wire. A plain RTP/AVP
 * call to the same gateway is refused with 488 and nothing is recorded.
 * AES_CM_128_HMAC_SHA1_32 against libre: baresip 1.0 offers only _80, so a second call goes through a UDP relay that
 * renames the suite in baresip's INVITE to _32 (same key length; the key is baresip's own). The gateway answers _32,
 * baresip runs its _32 (it says so), and the media decrypts both ways: the recording's caller channel has baresip's
 * speech, and baresip heard the gateway's disclosure. Runs inside `unshare -n`: fixed ports.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, test } from 'node:test';
import { startBaresip, speechWav8k, type Baresip } from '../helpers/baresip.ts';
import { assertNoClearAudio, captureUdp, energy, pcm8k, recordingStereo, seedNumber, waitFor } from '../helpers/baresip-secure.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';

const NUMBER = '+15553330000';
const GW_SIP_PORT = 5060;
const BARESIP_SIP_PORT = 5070;

/** One re-run inside `unshare -n` for both tests. */
const inside = insidePrivateNetwork(import.meta.filename, 360_000);
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

if (inside) {
  test('baresip srtp-mand: SRTP both ways, consent and agent, recording decodes, the wire carries no clear audio; plain RTP refused', { timeout: 200_000 }, async () => {
    const gw = await startTestGateway({
      env: { SWITCHBOARD_SIP_PORT: String(GW_SIP_PORT), SWITCHBOARD_RTP_PORTS: '20000-20099', SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_SIP_ENCRYPTION: 'allow/require' },
    });
    open.push(() => gw.stop());
    await seedNumber(gw, NUMBER);
    const capture = await captureUdp('udp portrange 20000-20099');
    open.push(() => capture.stop());

    const mic = speechWav8k([
      [null, 11],
      ['yes I agree to the recording', 12],
      ['I would like to check my account balance please', 12],
    ]);
    const phone: Baresip = startBaresip({ dial: `sip:${NUMBER.slice(1)}@127.0.0.1:${GW_SIP_PORT}`, micWav: mic, sipPort: BARESIP_SIP_PORT, rtpPorts: { low: 21000, high: 21019 }, quitAfterS: 150, dumpAudio: true, mediaenc: 'srtp-mand' });
    open.push(() => phone.stop());
    const said = (): string => `baresip output:\n${phone.output().slice(-6000)}`;

    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'sip' })[0];
    await waitFor(() => call()?.answered_at != null, 20_000, 'the call answered', said);
    const callId = call()!.id;
    assert.match(phone.output(), /RTP\/SAVP/, 'baresip offered RTP/SAVP');
    const leg = await waitFor(() => read().legs.find({ call_id: callId })[0], 5000, 'the leg attached', said);
    const resume = leg.resume as { mediaEncryption?: string; srtp?: { suite: string; sealed: string } };
    assert.equal(resume.mediaEncryption, 'srtp');
    assert.ok(resume.srtp && resume.srtp.sealed.length > 40, 'the keys are stored sealed');
    // baresip 1.0 (Debian) offers one line, AES_CM_128_HMAC_SHA1_80, and says when its SRTP is up.
    assert.equal(resume.srtp.suite, 'AES_CM_128_HMAC_SHA1_80');
    // The gateway records the answer when it sends the 200; baresip prints its SRTP line once it has taken it.
    await waitFor(() => /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/.test(phone.output()), 15_000, 'baresip to report SRTP enabled with AES_CM_128_HMAC_SHA1_80', said);
    const offeredKeys = [...phone.output().matchAll(/a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)/g)].map((m) => m[1]!);
    assert.ok(offeredKeys.length > 0, said());
    for (const k of offeredKeys) assert.ok(!JSON.stringify(leg.resume).includes(k.slice(0, 16)), 'no SDES key in the store in clear');

    // Consent by the spoken "yes": the gateway decrypted baresip's SRTP well enough for the recogniser.
    await waitFor(() => call()?.consent_id != null && read().consents.get(call()!.consent_id!)?.outcome !== 'pending', 45_000, 'consent decided', said);
    const consent = read().consents.get(call()!.consent_id!)!;
    assert.equal(consent.outcome, 'granted', JSON.stringify(consent));
    assert.equal(consent.method, 'speech');
    await waitFor(() => read().agent_actions.find({ call_id: callId, status: 'succeeded' }).length >= 2, 60_000, 'the agent answered the spoken turn', said);
    await waitFor(() => call()?.state === 'ended', 60_000, 'baresip hung up at the end of its WAV', said);
    assert.equal(call()!.end_reason, 'sip:bye', said());

    const stereo = await recordingStereo(gw, callId);
    assert.ok(energy(stereo, 2, 0) > 30, `caller channel has baresip's speech (${energy(stereo, 2, 0)})`);
    assert.ok(energy(stereo, 2, 1) > 30, `agent channel has the agent's speech (${energy(stereo, 2, 1)})`);

    await phone.stop();
    const heard = phone.dumps('dec');
    assert.equal(heard.length, 1, said());
    assert.ok(energy(pcm8k(heard[0]!, 1), 1, 0) > 30, 'baresip decrypted and heard the agent');

    // The wire: every packet from the gateway's RTP port is SRTP.
    assertNoClearAudio(await capture.stop(), { low: 20000, high: 20099 }, stereo);

    // A plain RTP/AVP offer to this gateway: 488 with a Warning, and no call recorded for it.
    const plainPhone = startBaresip({ dial: `sip:${NUMBER.slice(1)}@127.0.0.1:${GW_SIP_PORT}`, micWav: mic, sipPort: BARESIP_SIP_PORT + 2, rtpPorts: { low: 21020, high: 21039 }, quitAfterS: 20 });
    open.push(() => plainPhone.stop());
    await waitFor(() => /488 Not Acceptable Here/.test(plainPhone.output()), 20_000, 'the plain offer refused', () => plainPhone.output().slice(-4000));
    assert.match(plainPhone.output(), /Warning: 399 switchboard "this trunk requires SRTP/);
    await plainPhone.stop();
    assert.equal(read().calls.find({ provider: 'sip' }).filter((c) => c.id !== callId && c.answered_at != null).length, 0, 'the refused call was not answered');
    assert.equal(read().recordings.find({}).length, 1, 'nothing recorded for the refused call');
    assert.ok(gw.store.verify().ok);
  });
}

/** A UDP relay between baresip and the gateway that renames AES_CM_128_HMAC_SHA1_80 to _32 in what baresip sends. */
async function suiteRenamingRelay(listen: number, gateway: number, phone: number): Promise<{ renamed: () => number; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  let renamed = 0;
  sock.on('message', (m, from) => {
    if (from.port !== phone) return void sock.send(m, phone, '127.0.0.1');
    const text = m.toString('latin1');
    const out = text.replaceAll('AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32');
    if (out !== text) renamed++;
    sock.send(Buffer.from(out, 'latin1'), gateway, '127.0.0.1');
  });
  await new Promise<void>((r) => sock.bind(listen, '127.0.0.1', () => r()));
  return { renamed: () => renamed, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

if (inside) {
  test('baresip with AES_CM_128_HMAC_SHA1_32 (its offer renamed by a relay): the gateway answers _32, media decrypts both ways', { timeout: 90_000 }, async () => {
    const gwPort = 5062;
    const phonePort = 5074;
    const relayPort = 5082;
    const gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(gwPort), SWITCHBOARD_RTP_PORTS: '20200-20299', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_SIP_ENCRYPTION: 'allow/require' } });
    open.push(() => gw.stop());
    await seedNumber(gw, NUMBER, 'notify');
    const relay = await suiteRenamingRelay(relayPort, gwPort, phonePort);
    open.push(() => relay.close());
    const mic = speechWav8k([
      [null, 2],
      ['hello, this is a test of the short authentication tag, one two three four five', 4],
    ]);
    const phone = startBaresip({ dial: `sip:${NUMBER.slice(1)}@127.0.0.1:${relayPort}`, micWav: mic, sipPort: phonePort, rtpPorts: { low: 21040, high: 21059 }, quitAfterS: 60, dumpAudio: true, mediaenc: 'srtp-mand' });
    open.push(() => phone.stop());
    const said = (): string => `baresip output:\n${phone.output().slice(-6000)}`;

    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'sip' })[0];
    await waitFor(() => call()?.answered_at != null, 20_000, 'the call answered', said);
    assert.ok(relay.renamed() >= 1, 'the relay renamed the suite in baresip’s INVITE');
    const callId = call()!.id;
    assert.equal(call()!.media_encryption, 'srtp');
    const resume = (await waitFor(() => read().legs.find({ call_id: callId })[0], 5000, 'the leg attached', said)).resume as { srtp?: { suite: string } };
    assert.equal(resume.srtp?.suite, 'AES_CM_128_HMAC_SHA1_32');
    await waitFor(() => /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_32\)/.test(phone.output()), 10_000, 'baresip running _32', said);
    await waitFor(() => call()?.state === 'ended', 40_000, 'baresip hung up at the end of its WAV', said);
    assert.equal(call()!.end_reason, 'sip:bye', said());

    const stereo = await recordingStereo(gw, callId);
    assert.ok(energy(stereo, 2, 0) > 30, `caller channel has baresip's speech: the gateway decrypted libre's _32 (${energy(stereo, 2, 0)})`);
    await phone.stop();
    const heard = phone.dumps('dec');
    assert.equal(heard.length, 1, said());
    assert.ok(energy(pcm8k(heard[0]!, 1), 1, 0) > 30, 'baresip decrypted our _32 and heard the disclosure');
  });
}
