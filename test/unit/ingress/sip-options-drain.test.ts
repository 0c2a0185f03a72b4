/**
 * SIP OPTIONS while the node drains (ingress/sip/uas.ts, bridge/drain.ts): 200 while it takes calls, 503 with
 * Retry-After while `unavailable()` says it does not, so a dispatcher probing with OPTIONS (Kamailio) marks it
 * inactive; 200 again when it takes calls.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import pino from 'pino';
import { SipUas, type UasHandler } from '../../../ingress/sip/uas.ts';

const request = (callId: string, branch: string): string =>
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK${branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@test>;tag=1\r\n` +
  `To: <sip:x@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;

test('OPTIONS: 200 while the node takes calls, 503 + Retry-After while it drains', { timeout: 20_000 }, async () => {
  let retryAfter: number | null = null;
  const handler: UasHandler = {
    invite: () => undefined,
    ack: () => undefined,
    bye: () => undefined,
    info: () => undefined,
    cancel: () => undefined,
    unavailable: () => retryAfter,
  };
  const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), handler });
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const ask = (callId: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${callId}`)), 5000);
      sock.once('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString());
      });
      sock.send(request(callId, callId), uas.port, '127.0.0.1');
    });
  try {
    assert.match(await ask('p1'), /^SIP\/2\.0 200 OK\r\n/);
    retryAfter = 30;
    const busy = await ask('p2');
    assert.match(busy, /^SIP\/2\.0 503 /);
    assert.match(busy, /\r\nRetry-After: 30\r\n/);
    retryAfter = null;
    assert.match(await ask('p3'), /^SIP\/2\.0 200 OK\r\n/);
  } finally {
    sock.close();
    await uas.close();
  }
});
