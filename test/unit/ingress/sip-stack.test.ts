/**
 * Transport, transactions and RTP on real sockets: TCP framing by
 * Content-Length, retransmitted requests answered from the transaction, 100
 * Trying at once, the jitter buffer, RFC 4733 digits and symmetric RTP.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { muLawEncode } from '../../../media/g711.ts';
import { JitterBuffer } from '../../../ingress/sip/jitter.ts';
import { parseMessage } from '../../../ingress/sip/message.ts';
import { RtpPortPool, RtpSession } from '../../../ingress/sip/rtp.ts';
import { SipUas, type UasHandler } from '../../../ingress/sip/uas.ts';

const quiet = pino({ level: 'silent' });
const idle: UasHandler = { invite: () => undefined, ack: () => undefined, bye: () => undefined, info: () => undefined, cancel: () => undefined };

const request = (method: string, callId: string, branch: string, viaHost = '127.0.0.1:9', transport = 'UDP'): string =>
  `${method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} ${viaHost};branch=z9hG4bK${branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:t@test>;tag=1\r\n` +
  `To: <sip:x@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`;

test('TCP: messages are framed by Content-Length, whether coalesced or split across segments', { timeout: 20_000 }, async () => {
  const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger: quiet, handler: idle });
  try {
    const sock = net.connect(uas.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.write(`\r\n${request('OPTIONS', 'c1', 'a', '127.0.0.1:1', 'TCP')}${request('OPTIONS', 'c2', 'b', '127.0.0.1:1', 'TCP')}`);
    const third = request('OPTIONS', 'c3', 'c', '127.0.0.1:1', 'TCP');
    sock.write(third.slice(0, 50));
    await new Promise((r) => setTimeout(r, 100));
    sock.write(third.slice(50));
    const end = Date.now() + 5000;
    while ((got.match(/SIP\/2\.0 200 OK/g) ?? []).length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal((got.match(/SIP\/2\.0 200 OK/g) ?? []).length, 3);
    for (const id of ['c1', 'c2', 'c3']) assert.match(got, new RegExp(`Call-ID: ${id}\\r\\n`));
    sock.destroy();
  } finally {
    await uas.close();
  }
});

test('UDP: the transaction answers 100 Trying on its own (the TU never answers); a retransmitted INVITE gets the stored response, the TU sees it once', { timeout: 30_000 }, async () => {
  let invites = 0;
  const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger: quiet, handler: { ...idle, invite: () => void invites++ } });
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const got: Array<{ status: number }> = [];
  client.on('message', (raw) => {
    const p = parseMessage(raw);
    if (p.ok && p.message.kind === 'response') got.push({ status: p.message.status });
  });
  try {
    const inv = Buffer.from(request('INVITE', 'inv1', 'i1', `127.0.0.1:${client.address().port}`));
    client.send(inv, uas.port, '127.0.0.1');
    // Waiting for the event with a generous bound (how fast it comes is not asserted: the box is shared). The TU
    // (idle handler) never answers, so a 100 can only come from the server transaction itself (RFC 3261 §17.2.1).
    const end = Date.now() + 10_000;
    while (got.length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got[0]?.status, 100);
    assert.equal(invites, 1, 'the TU holds the INVITE and has not answered');
    client.send(inv, uas.port, '127.0.0.1');
    while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got[1]?.status, 100, 'the retransmission is answered with the last response');
    assert.equal(invites, 1);
    assert.deepEqual(got.map((g) => g.status), [100, 100], 'no final response: nothing but the transaction spoke');
  } finally {
    client.close();
    await uas.close();
  }
});

test('jitter buffer: reorders, drops duplicates and late packets, skips a lost one, survives the 16-bit wrap', async (t) => {
  const out: number[] = [];
  const jb = new JitterBuffer<number>((p) => out.push(p.item), 3, 40);
  t.after(() => jb.close());
  for (const s of [65533, 65535, 65534, 0, 2, 3, 3, 4, 1]) jb.push(s, s * 160, s);
  assert.deepEqual(out, [65533, 65534, 65535, 0, 2, 3, 4]);
  assert.equal(jb.stats.duplicates, 1);
  assert.equal(jb.stats.lost, 1);
  assert.equal(jb.stats.late, 1);
  jb.push(6, 0, 6);
  assert.deepEqual(out.slice(-1), [4], '6 waits for the missing 5 …');
  const end = Date.now() + 10_000;
  while (out.at(-1) !== 6 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(out.slice(-1), [6], '… until the gap is given up after maxWait');
});

test('RTP: PCMU in, RFC 4733 digits once each (no marker bit, repeated end packets), symmetric RTP latching', { timeout: 20_000 }, async () => {
  const pool = new RtpPortPool(42000, 42999, '127.0.0.1');
  const sockets = await pool.bind();
  const far = dgram.createSocket('udp4');
  await new Promise<void>((r) => far.bind(0, '127.0.0.1', () => r()));
  const session = new RtpSession(sockets, { codec: 'PCMU', payloadType: 0, eventPayloadType: 101, remote: { address: '127.0.0.1', port: 9 }, direction: 'sendrecv', held: false }, 'test');
  const audio: number[] = [];
  const digits: string[] = [];
  session.on('audio', (s) => audio.push(s.length));
  session.on('dtmf', (d) => digits.push(d));
  const rtp = (pt: number, seq: number, ts: number, payload: Uint8Array, marker = false): Buffer => {
    const b = Buffer.alloc(12 + payload.length);
    b[0] = 0x80;
    b[1] = (marker ? 0x80 : 0) | pt;
    b.writeUInt16BE(seq, 2);
    b.writeUInt32BE(ts, 4);
    b.writeUInt32BE(0x1234, 8);
    b.set(payload, 12);
    return b;
  };
  const tone = muLawEncode(new Int16Array(160).fill(1000));
  const received: Buffer[] = [];
  far.on('message', (m) => received.push(m));
  try {
    for (const seq of [1, 3, 2, 4]) far.send(rtp(0, seq, seq * 160, tone), sockets.port, '127.0.0.1');
    // Digit 5: three progress packets without a marker, then the end packet three times; then digit 9.
    for (const [dur, end] of [[160, false], [320, false], [480, false], [640, true], [640, true], [640, true]] as const) {
      far.send(rtp(101, 10, 5000, Uint8Array.from([5, end ? 0x8a : 0x0a, dur >> 8, dur & 0xff])), sockets.port, '127.0.0.1');
    }
    for (let i = 0; i < 3; i++) far.send(rtp(101, 20, 9000, Uint8Array.from([9, 0x8a, 2, 128])), sockets.port, '127.0.0.1');
    const end = Date.now() + 3000;
    while ((audio.length < 4 || digits.length < 2) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(audio, [160, 160, 160, 160]);
    assert.deepEqual(digits, ['5', '9']);
    assert.deepEqual(session.remote, { address: '127.0.0.1', port: far.address().port }, 'latched to the source');
    session.send(new Int16Array(160));
    while (received.length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(received[0]?.length, 172, 'our RTP reached the latched address');
    assert.equal((received[0]![1]! & 0x7f), 0);
  } finally {
    session.close();
    pool.release(sockets.port);
    far.close();
  }
});
