/**
 * TLS and SRTP together with a real softphone (issue 24's acceptance call): baresip (libre's TLS and SRTP, not
 * ours) calls the gateway over SIP/TLS (`;transport=tls`, the gateway's self-signed certificate as its CA) with
 * `mediaenc=srtp-mand`, on a gateway that requires both (SWITCHBOARD_SIP_ENCRYPTION=require). The caller says "yes"
 * to the recording disclosure and asks the agent something.
 * Checked: the INVITE and the 200 went over TLS; the call row records transport `tls` and media encryption `srtp`,
 * the leg's stored dialog the suite (AES_CM_128_HMAC_SHA1_80, what baresip 1.0 offers; baresip says SRTP is on);
 * consent granted by speech and the agent answered (the gateway decrypted baresip's SRTP); the two-channel
 * recording decodes with audio on both channels; baresip heard the agent (it decrypted ours); a tcpdump capture of
 * the gateway's RTP ports shows SRTP only, no clear-text stretch of the agent's audio. Inside `unshare -n`.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startBaresip, speechWav8k } from '../helpers/baresip.ts';
import { assertNoClearAudio, captureUdp, energy, pcm8k, recordingStereo, seedNumber, waitFor } from '../helpers/baresip-secure.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { selfSigned } from '../helpers/sip-tls-ua.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15553330000';
const GW_TLS_PORT = 5061;
const BARESIP_SIP_PORT = 5070;
const RTP = { low: 20000, high: 20099 };
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test('baresip with TLS and srtp-mand: consent and agent, recording decodes, the wire carries no clear audio, the call row says tls + srtp', { timeout: 200_000 }, async () => {
    const cert = selfSigned(tmpDir('sb-baresip-tls-srtp-'), 'gateway');
    const gw = await startTestGateway({
      env: {
        SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_SIP_TLS_PORT: String(GW_TLS_PORT), SWITCHBOARD_SIP_TLS_CERT: cert.cert, SWITCHBOARD_SIP_TLS_KEY: cert.key,
        SWITCHBOARD_RTP_PORTS: `${RTP.low}-${RTP.high}`, SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_SIP_ENCRYPTION: 'require',
      },
    });
    open.push(() => gw.stop());
    await seedNumber(gw, NUMBER);
    const capture = await captureUdp(`udp portrange ${RTP.low}-${RTP.high}`);
    open.push(() => capture.stop());

    const mic = speechWav8k([
      [null, 11],
      ['yes I agree to the recording', 12],
      ['I would like to check my account balance please', 12],
    ]);
    const target = `sip:${NUMBER.slice(1)}@127.0.0.1:${GW_TLS_PORT};transport=tls`;
    const phone = startBaresip({ dial: target, micWav: mic, sipPort: BARESIP_SIP_PORT, rtpPorts: { low: 21000, high: 21019 }, quitAfterS: 150, dumpAudio: true, mediaenc: 'srtp-mand', tlsCaFile: cert.cert });
    open.push(() => phone.stop());
    const said = (): string => `baresip output:\n${phone.output().slice(-6000)}`;

    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'sip' })[0];
    await waitFor(() => call()?.answered_at != null, 30_000, 'the call answered', said);
    const callId = call()!.id;
    assert.equal(call()!.transport, 'tls');
    assert.equal(call()!.media_encryption, 'srtp');
    const leg = await waitFor(() => read().legs.find({ call_id: callId })[0], 5000, 'the leg attached', said);
    const resume = leg.resume as { mediaEncryption?: string; srtp?: { suite: string; sealed: string } };
    assert.equal(resume.srtp?.suite, 'AES_CM_128_HMAC_SHA1_80');
    // The gateway records the answer when it sends the 200; baresip prints its SRTP line once it has taken it.
    await waitFor(() => /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/.test(phone.output()), 15_000, 'baresip to report SRTP enabled with AES_CM_128_HMAC_SHA1_80', said);
    // baresip's SIP trace: its INVITE (RTP/SAVP) went over TLS, and the 200 came back over it.
    const trace = phone.output().split('#');
    assert.ok(trace.some((m) => /^\s*TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:5061\s+INVITE /.test(m) && /RTP\/SAVP/.test(m)), said());
    assert.ok(trace.some((m) => /^\s*TLS 127\.0\.0\.1:5061 -> /.test(m) && /SIP\/2\.0 200 OK/.test(m) && /a=crypto:/.test(m)), said());

    await waitFor(() => call()?.consent_id != null && read().consents.get(call()!.consent_id!)?.outcome !== 'pending', 45_000, 'consent decided', said);
    const consent = read().consents.get(call()!.consent_id!)!;
    assert.equal(consent.outcome, 'granted', JSON.stringify(consent));
    assert.equal(consent.method, 'speech');
    await waitFor(() => read().agent_actions.find({ call_id: callId, status: 'succeeded' }).length >= 2, 60_000, 'the agent answered the spoken turn', said);
    await waitFor(() => call()?.state === 'ended', 60_000, 'baresip hung up at the end of its WAV', said);
    assert.equal(call()!.end_reason, 'sip:bye', said());
    assert.equal(call()!.transport, 'tls');
    assert.equal(call()!.media_encryption, 'srtp');

    const stereo = await recordingStereo(gw, callId);
    assert.ok(energy(stereo, 2, 0) > 30, `caller channel has baresip's speech (${energy(stereo, 2, 0)})`);
    assert.ok(energy(stereo, 2, 1) > 30, `agent channel has the agent's speech (${energy(stereo, 2, 1)})`);
    await phone.stop();
    const heard = phone.dumps('dec');
    assert.equal(heard.length, 1, said());
    assert.ok(energy(pcm8k(heard[0]!, 1), 1, 0) > 30, 'baresip decrypted and heard the agent');

    assertNoClearAudio(await capture.stop(), RTP, stereo);
    assert.ok(gw.store.verify().ok);
  });
}
