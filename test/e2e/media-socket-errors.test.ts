/**
 * Protocol errors on a provider media socket before its stream starts — a
 * frame over the 1 MiB limit, a text frame that is not UTF-8 — close that
 * socket with the protocol's code (1009, 1007) and nothing else: the gateway
 * keeps serving (before, ws's 'error' event had no listener there and ended
 * the process).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import twilio from 'twilio';
import WebSocket from 'ws';
import { startTestGateway, TWILIO_TOKEN, VONAGE_SECRET } from '../helpers/gateway.ts';
import { vonageJwt } from '../helpers/vonage-peer.ts';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw | null = null;
after(async () => {
  await gw?.stop();
});

function closeCodeAfter(url: string, headers: Record<string, string>, frame: string | Buffer, binary: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const timer = setTimeout(() => (ws.terminate(), reject(new Error('the socket stayed open'))), 15_000);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', () => undefined);
    ws.on('open', () => ws.send(frame, { binary }));
    ws.on('close', (code) => (clearTimeout(timer), resolve(code)));
  });
}

test('an oversized frame or a text frame that is not UTF-8 before the stream starts closes only that socket', { timeout: 60_000 }, async () => {
  gw = await startTestGateway();
  const base = gw.publicUrl.replace('http', 'ws');
  const twilioUrl = `${base}/twilio/media`;
  const sockets: Array<[string, () => Record<string, string>]> = [
    [twilioUrl, () => ({ 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, twilioUrl, {}) })],
    [`${base}/vonage/media`, () => ({ Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, null)}` })],
  ];
  const notUtf8 = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]);
  for (const [url, headers] of sockets) {
    assert.equal(await closeCodeAfter(url, headers(), Buffer.alloc(1_100_000, 0x20), false), 1009, `${url}: oversized text frame`);
    assert.equal(await closeCodeAfter(url, headers(), Buffer.alloc(1_100_000, 1), true), 1009, `${url}: oversized binary frame`);
    assert.equal(await closeCodeAfter(url, headers(), notUtf8, false), 1007, `${url}: invalid UTF-8`);
  }
  const res = await fetch(`${gw.publicUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, 'the gateway still serves');
});

test('a WebSocket upgrade whose request target is no URL path (GET //) is refused with 400; the gateway keeps serving', { timeout: 60_000 }, async () => {
  const g = await startTestGateway();
  after(() => g.stop());
  const { port } = new URL(g.publicUrl);
  for (const target of ['//', '//%', '//a:b@', '//[']) {
    const status = await new Promise<string>((resolve) => {
      const s = net.connect(Number(port), '127.0.0.1', () =>
        s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`),
      );
      let got = '';
      s.on('data', (d) => (got += String(d)));
      s.on('error', () => undefined);
      s.setTimeout(10_000, () => s.destroy());
      s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    });
    assert.equal(status, 'HTTP/1.1 400 Bad Request', target);
  }
  const res = await fetch(`${g.publicUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, 'the gateway still serves');
});
