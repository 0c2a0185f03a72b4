/**
 * Early media per route and UPDATE in the early dialog, against sipp (a real SIP UAC), in-process gateway on free
 * ports. SWITCHBOARD_SIP_EARLY_MEDIA names one number (`+15553340200=notice.wav`): a call to it gets 183 + SDP and
 * the prompt as RTP before the 200; a call to the other number a plain 180 then 200 (route-rules.ts). UPDATE before
 * the answer (RFC 3311 §5.2, early-update.ts): after our 183 + SDP an UPDATE's offer is answered 200 and the prompt
 * follows its new address and codec; in an early dialog whose offer/answer is not complete (a late offer) it gets
 * 491. (A 1 s ring time, so the 491 comes before the 200.) No duration is asserted: each run waits for the message
 * or the packets.
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
import { number_added } from '../../schema/reducers.ts';

const EARLY = '15553340200';
const PLAIN = '15553340201';
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let sipPort: number;

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

before(async () => {
  const wav = path.join(tmpDir('sb-early-routes-'), 'notice.wav');
  toneWav(wav);
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_RING_MS: '1000', SWITCHBOARD_SIP_EARLY_MEDIA: `+${EARLY}=${wav}` } });
  for (const n of [EARLY, PLAIN]) resultOf(await gw.store.submit(number_added, { number: `+${n}`, agent: 'default' }, { tenant: 'default', caller: 'test' }));
});
after(async () => {
  await gw?.stop();
});

const received = (run: SippRun, first: RegExp) => run.messages.filter((m) => m.dir === 'received' && first.test(m.first));
const okToInvite = (run: SippRun) => received(run, /^SIP\/2.0 200/).find((m) => /CSeq:\s*1 INVITE/i.test(m.text))!;

/** A UDP socket standing in for sipp's media: the RTP packets that reach it (PCMU payloads that are not silence). */
async function mediaSocket() {
  const sock = dgram.createSocket('udp4');
  const packets: Array<{ at: number; pt: number; payload: Buffer }> = [];
  sock.on('message', (m) => packets.push({ at: Date.now(), pt: (m[1] as number) & 0x7f, payload: m.subarray(12) }));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const sound = (until: number, pt: number) => packets.filter((p) => p.at <= until && p.pt === pt && p.payload.some((b) => b !== 0xff && b !== 0x7f && b !== 0xd5 && b !== 0x55));
  return { sock, packets, port: sock.address().port, sound };
}

test('early media per route: the number with a rule gets 183 + SDP and the prompt before the 200; the other a plain 180/200', { timeout: 90_000 }, async () => {
  const media = await mediaSocket();
  try {
    const early = await runSipp({ scenario: 'uac_early_media.xml', port: sipPort, service: EARLY, timeoutS: 45, extra: ['-key', 'rtpport', String(media.port)] });
    assert.equal(early.code, 0, early.output);
    assert.match(received(early, /^SIP\/2.0 183/)[0]!.text, /Content-Type:\s*application\/sdp/i);
    const before = media.sound(okToInvite(early).at + 5, 0);
    assert.ok(before.length >= 40, `prompt packets before the 200: ${before.length} of ${media.packets.length}`);
    const other = await mediaSocket(); // its own socket: the first call's last packets may still arrive
    try {
      const plain = await runSipp({ scenario: 'uac_plain_ringing.xml', port: sipPort, service: PLAIN, timeoutS: 45, extra: ['-key', 'rtpport', String(other.port)] });
      assert.equal(plain.code, 0, plain.output);
      assert.equal(received(plain, /^SIP\/2.0 183/).length, 0);
      assert.equal(received(plain, /^SIP\/2.0 180/).length, 1);
      assert.equal(other.sound(okToInvite(plain).at, 0).length, 0, 'no prompt before the 200 on the plain route');
    } finally {
      other.sock.close();
    }
  } finally {
    media.sock.close();
  }
});

test('UPDATE in the early dialog after our 183: 200 with a PCMA answer, the prompt moves to the new address in PCMA before the 200', { timeout: 90_000 }, async () => {
  const first = await mediaSocket();
  const second = await mediaSocket();
  try {
    const run = await runSipp({ scenario: 'uac_early_update.xml', port: sipPort, service: EARLY, timeoutS: 45, extra: ['-key', 'rtpport', String(first.port), '-key', 'rtpport2', String(second.port)] });
    assert.equal(run.code, 0, run.output);
    const updated = received(run, /^SIP\/2.0 200/).find((m) => /CSeq:\s*2 UPDATE/i.test(m.text))!;
    assert.match(updated.text, /m=audio \d+ RTP\/AVP 8/);
    const ok = okToInvite(run);
    assert.ok(ok.at >= updated.at);
    const moved = second.sound(ok.at + 5, 8);
    assert.ok(moved.length >= 20, `PCMA prompt packets at the new address before the 200: ${moved.length} of ${second.packets.length}`);
    assert.equal(second.packets.filter((p) => p.pt === 0).length, 0, 'nothing in PCMU at the new address');
    const call = gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '' });
    assert.ok(call);
    assert.equal(gw.store.read('default').legs.find({ call_id: call.id })[0]?.codec, 'PCMA');
  } finally {
    first.sock.close();
    second.sock.close();
  }
});

test('UPDATE in an early dialog whose offer/answer is not complete (late offer, 180): 491; the call then goes on', { timeout: 90_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_early_update_491.xml', port: sipPort, service: PLAIN, timeoutS: 45 });
  assert.equal(run.code, 0, run.output);
  assert.equal(received(run, /^SIP\/2.0 491/).length, 1);
});
