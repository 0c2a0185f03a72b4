/**
 * SDES-SRTP end to end with a real softphone: baresip with `mediaenc=srtp-mand` (its srtp module, libre's SRTP —
 * not werift, so both ends are independent implementations) calls a gateway that requires SRTP
 * (SWITCHBOARD_SIP_ENCRYPTION=allow/require: the SRTP half required). The caller says "yes" to the recording disclosure and asks the agent something.
 * Checked: the call was answered as SRTP (leg resume `mediaEncryption: srtp`, the keys only sealed), consent granted
 * by speech (so the gateway really decrypted baresip's SRTP), the agent answered, the two-channel recording decodes
 * with audio on both channels, baresip heard the agent (so baresip decrypted ours), and a tcpdump capture of the
 * gateway's RTP ports shows SRTP only: no run of G.711 silence, payload bytes indistinguishable from random, and no
 * 32-byte stretch of the agent's audio (from the recording, G.711-encoded) anywhere on the wire. A plain RTP/AVP
 * call to the same gateway is refused with 488 and nothing is recorded. Runs inside `unshare -n`: fixed ports.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { aLawEncode } from '../../media/g711.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { startBaresip, speechWav8k, type Baresip } from '../helpers/baresip.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553330000';
const GW_SIP_PORT = 5060;
const BARESIP_SIP_PORT = 5070;

const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string, detail: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pcm8k(file: string, channels: 1 | 2): Int16Array {
  const buf = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
  return new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
}

function energy(pcm: Int16Array, channels: number, c: number): number {
  let sum = 0;
  const frames = Math.floor(pcm.length / channels);
  for (let f = 0; f < frames; f++) sum += Math.abs(pcm[f * channels + c] ?? 0);
  return frames ? sum / frames : 0;
}

/** UDP payloads of a pcap file (Ethernet, Linux cooked v1/v2 or raw IP link types; IPv4). */
function udpPayloads(file: string): Array<{ srcPort: number; dstPort: number; data: Buffer }> {
  const b = fs.readFileSync(file);
  const linkType = b.readUInt32LE(20);
  const linkLen = ({ 1: 14, 113: 16, 276: 20, 101: 0, 12: 0 } as Record<number, number>)[linkType];
  assert.ok(linkLen !== undefined, `pcap link type ${linkType}`);
  const out: Array<{ srcPort: number; dstPort: number; data: Buffer }> = [];
  for (let off = 24; off + 16 <= b.length; ) {
    const incl = b.readUInt32LE(off + 8);
    const frame = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ip = frame.subarray(linkLen);
    if (ip.length < 28 || ip[0]! >> 4 !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0]! & 0x0f) * 4);
    out.push({ srcPort: udp.readUInt16BE(0), dstPort: udp.readUInt16BE(2), data: udp.subarray(8, udp.readUInt16BE(4)) });
  }
  return out;
}

/** Shannon entropy in bits per byte. */
function entropy(bytes: Buffer): number {
  const counts = new Array<number>(256).fill(0);
  for (const x of bytes) counts[x]!++;
  let h = 0;
  for (const c of counts) if (c) h -= (c / bytes.length) * Math.log2(c / bytes.length);
  return h;
}

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test('baresip srtp-mand: SRTP both ways, consent and agent, recording decodes, the wire carries no clear audio; plain RTP refused', { timeout: 200_000 }, async () => {
    const gw = await startTestGateway({
      env: { SWITCHBOARD_SIP_PORT: String(GW_SIP_PORT), SWITCHBOARD_RTP_PORTS: '20000-20099', SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_SIP_ENCRYPTION: 'allow/require' },
    });
    open.push(() => gw.stop());
    const who = { tenant: 'default', caller: 'test' };
    const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 20_000, retries: 0 }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: policy.policy_id }, who));

    const pcap = path.join(tmpDir('sb-srtp-pcap-'), 'rtp.pcap');
    const dump = spawn('tcpdump', ['-i', 'lo', '-U', '-n', '-s', '0', '-w', pcap, 'udp portrange 20000-20099'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let dumpErr = '';
    dump.stderr.on('data', (d: Buffer) => (dumpErr += d.toString()));
    const dumpExit = new Promise((r) => dump.once('exit', r));
    open.push(async () => {
      dump.kill('SIGTERM');
      await dumpExit;
    });
    await waitFor(() => /listening on/.test(dumpErr), 10_000, 'tcpdump listening', () => dumpErr);

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
    const leg = read().legs.find({ call_id: callId })[0]!;
    const resume = leg.resume as { mediaEncryption?: string; srtp?: { suite: string; sealed: string } };
    assert.equal(resume.mediaEncryption, 'srtp');
    assert.ok(resume.srtp && resume.srtp.sealed.length > 40, 'the keys are stored sealed');
    // baresip 1.0 (Debian) offers one line, AES_CM_128_HMAC_SHA1_80, and says when its SRTP is up.
    assert.equal(resume.srtp.suite, 'AES_CM_128_HMAC_SHA1_80');
    assert.match(phone.output(), /SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_80\)/);
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

    await waitFor(() => read().recordings.find({ call_id: callId })[0]?.status === 'finalized', 30_000, 'recording finalized');
    const rec = read().recordings.find({ call_id: callId })[0]!;
    assert.equal(rec.channels, 2);
    const file = path.join(tmpDir('sb-srtp-rec-'), `r.${rec.format}`);
    fs.writeFileSync(file, decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir)));
    const stereo = pcm8k(file, 2);
    assert.ok(energy(stereo, 2, 0) > 30, `caller channel has baresip's speech (${energy(stereo, 2, 0)})`);
    assert.ok(energy(stereo, 2, 1) > 30, `agent channel has the agent's speech (${energy(stereo, 2, 1)})`);

    await phone.stop();
    const heard = phone.dumps('dec');
    assert.equal(heard.length, 1, said());
    assert.ok(energy(pcm8k(heard[0]!, 1), 1, 0) > 30, 'baresip decrypted and heard the agent');

    // The wire: every packet from the gateway's RTP port is SRTP.
    await new Promise((r) => setTimeout(r, 300));
    dump.kill('SIGTERM');
    await dumpExit;
    const sent = udpPayloads(pcap).filter((p) => p.srcPort >= 20000 && p.srcPort <= 20099 && p.srcPort % 2 === 0 && p.data.length >= 12 + 160);
    assert.ok(sent.length > 500, `captured ${sent.length} RTP packets from the gateway`);
    const payloads = Buffer.concat(sent.map((p) => p.data.subarray(12)));
    const silence = Buffer.alloc(32, aLawEncode(new Int16Array(1))[0]);
    assert.equal(payloads.indexOf(silence), -1, 'no run of clear G.711 silence (the gateway sends silence frames between turns)');
    assert.ok(entropy(payloads) > 7.9, `payload bytes look random (entropy ${entropy(payloads).toFixed(3)} bits/byte)`);
    const agent = new Int16Array(Math.floor(stereo.length / 2));
    for (let i = 0; i < agent.length; i++) agent[i] = stereo[2 * i + 1]!;
    const agentALaw = Buffer.from(aLawEncode(agent));
    let probes = 0;
    for (let i = 0; i + 32 <= agentALaw.length; i += 800) {
      const chunk = agentALaw.subarray(i, i + 32);
      if (chunk.every((x) => x === chunk[0])) continue;
      probes++;
      assert.equal(payloads.indexOf(chunk), -1, `agent audio at sample ${i} appears in clear on the wire`);
    }
    assert.ok(probes > 20, `${probes} stretches of agent audio looked for`);

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
