/**
 * What the baresip TLS/SRTP e2e tests share (sip-baresip-tls, sip-baresip-srtp, sip-baresip-tls-srtp): the number
 * with its consent policy, waiting with baresip's output on failure, the two-channel recording decrypted and read
 * as PCM, a tcpdump capture of the gateway's RTP ports, and the check that the wire carries SRTP only.
 *
 *   tcpdump -i lo 'udp portrange …' ─► pcap ─► udpPayloads ─► assertNoClearAudio(payloads, recording)
 *                                                               no run of G.711 silence, random-looking bytes,
 *                                                               no 32-byte stretch of the agent's audio (A-law)
 * Run inside `unshare -n` (netns.ts): fixed ports, and `lo` carries only the test's traffic.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { aLawEncode } from '../../media/g711.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';
import type { startTestGateway } from './gateway.ts';
import { resultOf } from './store.ts';
import { tmpDir } from './tmp.ts';

type Gateway = Awaited<ReturnType<typeof startTestGateway>>;

export async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string, detail: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `number` routed to the default agent under a recording consent policy (`opt-in`: a spoken "yes" grants it). */
export async function seedNumber(gw: Gateway, number: string, mode: 'opt-in' | 'notify' = 'opt-in'): Promise<void> {
  const who = { tenant: 'default', caller: 'test' };
  const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, mode === 'opt-in' ? { name: 'record', mode, disclosure_text: 'We record calls.', timeout_ms: 20_000, retries: 0 } : { name: 'notify', mode, disclosure_text: 'This call is recorded.' }, who));
  resultOf(await gw.store.submit(number_added, { number, agent: 'default', consent_policy_id: policy.policy_id }, who));
}

/** A media file as 8 kHz 16-bit PCM (ffmpeg). */
export function pcm8k(file: string, channels: 1 | 2): Int16Array {
  const buf = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
  return new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
}

/** Mean absolute sample of channel `c`. */
export function energy(pcm: Int16Array, channels: number, c: number): number {
  let sum = 0;
  const frames = Math.floor(pcm.length / channels);
  for (let f = 0; f < frames; f++) sum += Math.abs(pcm[f * channels + c] ?? 0);
  return frames ? sum / frames : 0;
}

/** The call's finalized recording, decrypted with the gateway's master key: two channels (caller, agent) of PCM. */
export async function recordingStereo(gw: Gateway, callId: string): Promise<Int16Array> {
  const read = () => gw.store.read('default');
  await waitFor(() => read().recordings.find({ call_id: callId })[0]?.status === 'finalized', 30_000, 'recording finalized');
  const rec = read().recordings.find({ call_id: callId })[0]!;
  assert.equal(rec.channels, 2);
  const file = path.join(tmpDir('sb-baresip-rec-'), `r.${rec.format}`);
  fs.writeFileSync(file, decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir)));
  return pcm8k(file, 2);
}

export type UdpPayload = { srcPort: number; dstPort: number; data: Buffer };

/** tcpdump on `lo` for `filter` (e.g. `udp portrange 20000-20099`); `stop()` returns the UDP payloads captured. */
export async function captureUdp(filter: string): Promise<{ stop(): Promise<UdpPayload[]> }> {
  const pcap = path.join(tmpDir('sb-srtp-pcap-'), 'rtp.pcap');
  const dump = spawn('tcpdump', ['-i', 'lo', '-U', '-n', '-s', '0', '-w', pcap, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  dump.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise((r) => dump.once('exit', r));
  await waitFor(() => /listening on/.test(err), 10_000, 'tcpdump listening', () => err);
  let stopped: Promise<UdpPayload[]> | null = null;
  return {
    stop: () =>
      (stopped ??= (async () => {
        await new Promise((r) => setTimeout(r, 300));
        dump.kill('SIGTERM');
        await exited;
        return udpPayloads(pcap);
      })()),
  };
}

/** UDP payloads of a pcap file (Ethernet, Linux cooked v1/v2 or raw IP link types; IPv4). */
export function udpPayloads(file: string): UdpPayload[] {
  const b = fs.readFileSync(file);
  const linkType = b.readUInt32LE(20);
  const linkLen = ({ 1: 14, 113: 16, 276: 20, 101: 0, 12: 0 } as Record<number, number>)[linkType];
  assert.ok(linkLen !== undefined, `pcap link type ${linkType}`);
  const out: UdpPayload[] = [];
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
export function entropy(bytes: Buffer): number {
  const counts = new Array<number>(256).fill(0);
  for (const x of bytes) counts[x]!++;
  let h = 0;
  for (const c of counts) if (c) h -= (c / bytes.length) * Math.log2(c / bytes.length);
  return h;
}

/**
 * The gateway's RTP packets (even source ports in `range`) carry SRTP only: no run of clear G.711 silence (the
 * gateway sends silence frames between turns), payload bytes that look random, and no 32-byte stretch of the agent's
 * audio (the recording's agent channel, A-law encoded) anywhere on the wire.
 */
export function assertNoClearAudio(captured: UdpPayload[], range: { low: number; high: number }, stereo: Int16Array): void {
  const sent = captured.filter((p) => p.srcPort >= range.low && p.srcPort <= range.high && p.srcPort % 2 === 0 && p.data.length >= 12 + 160);
  assert.ok(sent.length > 500, `captured ${sent.length} RTP packets from the gateway`);
  const payloads = Buffer.concat(sent.map((p) => p.data.subarray(12)));
  const silence = Buffer.alloc(32, aLawEncode(new Int16Array(1))[0]);
  assert.equal(payloads.indexOf(silence), -1, 'no run of clear G.711 silence');
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
}
