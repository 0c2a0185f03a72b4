/**
 * A WebSocket upgrade whose request target `new URL` refuses (`GET //`,
 * `GET //[`) is answered 400 and the gateway keeps serving: the upgrade
 * listener runs outside fastify's error handling, where one such request used
 * to end the process (so the gateway runs as its own process here).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort, spawnGateway } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

function upgrade(port: number, target: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    s.write(
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    setTimeout(() => s.destroy(), 10_000).unref();
  });
}

test('an upgrade with a request target URL cannot parse gets 400; the gateway keeps serving', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const gw = await spawnGateway({ port, dataDir: tmpDir('sb-upgrade-') });
  t.after(() => gw.stop());
  for (const target of ['//', '//[', '//a:99999/v1/subscribe']) {
    const res = await upgrade(port, target);
    assert.match(res, /^HTTP\/1\.1 400 /, `GET ${target}`);
  }
  assert.match(await upgrade(port, '/no-such-socket'), /^HTTP\/1\.1 404 /);
  const health = await fetch(`${gw.publicUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(gw.child.exitCode, null, `the gateway is running:\n${gw.logs.join('\n')}`);
});
