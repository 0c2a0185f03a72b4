/**
 * Size limits and unusable routing on real sockets: a request with a header
 * field over 8 KiB or more than 128 fields gets 513 Message Too Large (RFC 3261
 * §21.5.14); over TCP a Content-Length beyond 64 KiB gets 513 and the
 * connection is closed, an unreadable one 400; a Via whose rport or address no
 * socket accepts is answered at the source instead of throwing. The server
 * keeps answering OPTIONS after each.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { parseMessage } from '../../../ingress/sip/message.ts';
import { SipUas, type UasHandler } from '../../../ingress/sip/uas.ts';

const quiet = pino({ level: 'silent' });

function request(o: { method?: string; callId: string; via: string; extra?: string[]; contentLength?: string }): string {
  const method = o.method ?? 'OPTIONS';
  return [
    `${method} sip:x@127.0.0.1 SIP/2.0`,
    `Via: ${o.via};branch=z9hG4bK${o.callId}`,
    'Max-Forwards: 70',
    'From: <sip:t@test>;tag=1',
    'To: <sip:x@127.0.0.1>',
    `Call-ID: ${o.callId}`,
    `CSeq: 1 ${method}`,
    ...(o.extra ?? []),
    `Content-Length: ${o.contentLength ?? '0'}`,
    '',
    '',
  ].join('\r\n');
}

async function udpClient(t: { after(fn: () => void): void }) {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.after(() => sock.close());
  const got: Array<{ status: number; callId: string }> = [];
  sock.on('message', (raw) => {
    const p = parseMessage(raw);
    if (p.ok && p.message.kind === 'response') got.push({ status: p.message.status, callId: p.message.headers.get('call-id') ?? '' });
  });
  const wait = async (callId: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const r = got.filter((g) => g.callId === callId && g.status >= 200);
      if (r.length) return r[0]!.status;
      await new Promise((res) => setTimeout(res, 10));
    }
    return null;
  };
  return { sock, port: sock.address().port, wait };
}

test('UDP: a header field over 8 KiB, or more than 128 fields, gets 513; a Via rport or address no socket takes is answered at the source', { timeout: 30_000 }, async (t) => {
  const handler: UasHandler = { invite: (tx) => void uas.respond(tx, 486), ack: () => undefined, bye: () => undefined, info: () => undefined, cancel: () => undefined };
  const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger: quiet, handler });
  t.after(() => uas.close());
  const c = await udpClient(t);
  const via = `SIP/2.0/UDP 127.0.0.1:${c.port}`;
  const send = (s: string) => c.sock.send(Buffer.from(s), uas.port, '127.0.0.1');

  send(request({ callId: 'long', via, extra: [`Subject: ${'x'.repeat(9000)}`] }));
  assert.equal(await c.wait('long'), 513);
  send(request({ callId: 'many', via, extra: Array.from({ length: 130 }, (_, i) => `X-H${i}: y`) }));
  assert.equal(await c.wait('many'), 513);
  send(request({ callId: 'fine', via, extra: Array.from({ length: 100 }, (_, i) => `X-H${i}: ${'y'.repeat(600)}`) }));
  assert.equal(await c.wait('fine'), 200, 'within the limits: answered as usual');

  // Responses routed by the Via (RFC 3581 rport, received) must not hand a socket a port or address it refuses.
  for (const [id, v] of [
    ['rport-big', `${via};rport=99999`],
    ['rport-zero', `${via};rport=0`],
    ['received-name', `${via};received=example.com;rport=${c.port}`],
    ['port-zero', 'SIP/2.0/UDP 127.0.0.1:0'],
  ] as const) {
    send(request({ method: 'INVITE', callId: id, via: v }));
    assert.equal(await c.wait(id), 486, `${id}: the final response reaches the source`);
  }
  // Timer G retransmissions of those 486s run in timers: give them a round, then the server still answers.
  await new Promise((r) => setTimeout(r, 1200));
  send(request({ callId: 'alive', via }));
  assert.equal(await c.wait('alive'), 200);
});

test('TCP: a Content-Length beyond 64 KiB gets 513 and the connection closes; an unreadable one gets 400; the listener keeps serving', { timeout: 30_000 }, async (t) => {
  const idle: UasHandler = { invite: () => undefined, ack: () => undefined, bye: () => undefined, info: () => undefined, cancel: () => undefined };
  const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger: quiet, handler: idle });
  t.after(() => uas.close());
  const exchange = async (text: string): Promise<{ data: string; closed: boolean }> => {
    const sock = net.connect(uas.port, '127.0.0.1');
    t.after(() => sock.destroy());
    let data = '';
    sock.on('data', (d) => (data += d.toString('latin1')));
    const closed = new Promise<boolean>((r) => sock.once('close', () => r(true)));
    await new Promise((r) => sock.once('connect', r));
    sock.write(text);
    const end = Date.now() + 5000;
    while (!/\r\n\r\n/.test(data) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    const isClosed = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
    return { data, closed: isClosed };
  };
  const via = 'SIP/2.0/TCP 127.0.0.1:5999';
  const big = await exchange(request({ callId: 'big', via, contentLength: String(70 * 1024) }));
  assert.match(big.data, /^SIP\/2\.0 513 /);
  assert.match(big.data, /Call-ID: big\r\n/);
  assert.equal(big.closed, true, 'the stream lost its framing: closed');
  const bad = await exchange(request({ callId: 'bad', via, contentLength: '12abc' }));
  assert.match(bad.data, /^SIP\/2\.0 400 /);
  assert.equal(bad.closed, true);
  const ok = await exchange(request({ callId: 'ok', via }));
  assert.match(ok.data, /^SIP\/2\.0 200 /);
});
