/**
 * `switchboard start` refuses, with a clear message and exit code 2, a data dir
 * held by another gateway, a corrupt database, an invalid configuration, and a
 * port that is taken (HTTP, SIP, the RTP range) — one line naming the variable,
 * no stack trace — and a start that failed on a port has made no admin token,
 * so the next start shows one that works.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { BOOTSTRAP_EMAIL } from '../../api/auth/bootstrap.ts';
import { api } from '../helpers/api.ts';
import { firstStartEnv, startProcess } from '../helpers/first-start.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
let running: GatewayProcess | null = null;
after(async () => running?.stop());

function start(env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, 'start'], {
    env: { ...process.env, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_LOG_LEVEL: 'error', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a second gateway on the same data dir is refused while the first serves on', async () => {
  const dataDir = tmpDir('sb-start-');
  running = await spawnGateway({ port: await freePort(), dataDir });
  const second = start({ SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_HTTP_PORT: String(await freePort()) });
  assert.equal(second.code, 2);
  assert.match(second.out, /locked by another process: is another switchboard running on this data directory\?/);
  const health = await fetch(`${running.publicUrl}/healthz`);
  assert.equal(health.status, 200, 'the first gateway is unaffected');
});

test('a corrupt database refuses to start and is left untouched', async () => {
  const dataDir = tmpDir('sb-start-');
  const file = path.join(dataDir, 'switchboard.db');
  fs.writeFileSync(file, Buffer.alloc(16_384, 0x41));
  const r = start({ SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_HTTP_PORT: String(await freePort()) });
  assert.equal(r.code, 2);
  assert.match(r.out, /not a valid Switchboard database.*refusing to start/);
  assert.deepEqual(fs.readFileSync(file), Buffer.alloc(16_384, 0x41));
});

test('invalid configuration names the variable', () => {
  const r = start({ SWITCHBOARD_DATA_DIR: tmpDir('sb-start-'), SWITCHBOARD_FSYNC_POLICY: 'sometimes', SWITCHBOARD_HTTP_PORT: '0' });
  assert.equal(r.code, 2);
  assert.match(r.out, /SWITCHBOARD_FSYNC_POLICY/);
});

/** Holds a TCP port (and, for SIP, the UDP one) on 127.0.0.1, as another program would. */
async function holdTcp(port: number): Promise<net.Server> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  return srv;
}
async function holdUdp(port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => sock.once('error', reject).bind(port, '127.0.0.1', () => resolve()));
  return sock;
}

/** A first start (no SWITCHBOARD_ADMIN_TOKEN) that is expected to fail: its exit code and everything it printed. */
function failedFirstStart(env: NodeJS.ProcessEnv): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, 'start'], { env, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The failure is one `switchboard: …` line naming `variable`, with no stack trace. */
function assertOneLine(out: string, variable: string): void {
  const lines = out.split('\n').filter((l) => l.startsWith('switchboard: '));
  assert.equal(lines.length, 1, out);
  assert.match(lines[0]!, new RegExp(`\\(${variable}\\)`));
  assert.doesNotMatch(out, /^\s+at /m, `no stack trace:\n${out}`);
}

test('a taken HTTP port is one line naming SWITCHBOARD_HTTP_PORT, exit 2; no token is lost: the next start shows one that works', { timeout: 90_000 }, async (t) => {
  const dataDir = tmpDir('sb-start-');
  const port = await freePort();
  const env = firstStartEnv(port, dataDir);
  const holder = await holdTcp(port);
  const r = failedFirstStart(env);
  await new Promise<void>((resolve) => holder.close(() => resolve()));
  assert.equal(r.code, 2, r.out);
  assertOneLine(r.out, 'SWITCHBOARD_HTTP_PORT');
  assert.match(r.out, new RegExp(`HTTP port ${port} on 127\\.0\\.0\\.1 is already in use`));
  assert.doesNotMatch(r.out, /generated an admin token/, 'no token is made before the ports listen');

  const next = await startProcess(env);
  t.after(() => next.stop());
  // The token goes to stderr, a pipe of its own: it can arrive after stdout's "listening" line.
  const shown = /admin token for \S+ \(shown once; only its hash is kept\): (sbk_\S+)/;
  for (const until = Date.now() + 20_000; !shown.test(next.stderr()) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
  const token = shown.exec(next.stderr())?.[1];
  assert.ok(token, `the next start shows the admin token:\n${next.stderr()}`);
  const me = await api<{ email: string }>(next.publicUrl, 'GET', '/v1/auth/me', { token });
  assert.equal(me.body.email, BOOTSTRAP_EMAIL);
});

test('a taken SIP port is one line naming SWITCHBOARD_SIP_PORT, exit 2, and makes no token', { timeout: 60_000 }, async () => {
  const sipPort = await freePort();
  const holder = await holdUdp(sipPort);
  const r = failedFirstStart(firstStartEnv(await freePort(), tmpDir('sb-start-'), { SWITCHBOARD_SIP_PORT: String(sipPort) }));
  holder.close();
  assert.equal(r.code, 2, r.out);
  assertOneLine(r.out, 'SWITCHBOARD_SIP_PORT');
  assert.match(r.out, new RegExp(`SIP port ${sipPort} on 127\\.0\\.0\\.1 is already in use`));
  assert.doesNotMatch(r.out, /generated an admin token/);
});

test('an RTP range with no free pair is one line naming SWITCHBOARD_RTP_PORTS, exit 2', { timeout: 60_000 }, async () => {
  // An even port whose pair is free: hold both, then offer exactly that pair as the range.
  let low = 0;
  let held: dgram.Socket[] = [];
  for (let tries = 0; tries < 20 && held.length < 2; tries++) {
    const p = await freePort();
    low = p % 2 === 0 ? p : p + 1;
    held = [];
    try {
      held.push(await holdUdp(low), await holdUdp(low + 1));
    } catch {
      for (const s of held) s.close();
      held = [];
    }
  }
  assert.equal(held.length, 2, 'found a free even/odd UDP pair to hold');
  const r = failedFirstStart(firstStartEnv(await freePort(), tmpDir('sb-start-'), { SWITCHBOARD_RTP_PORTS: `${low}-${low + 1}` }));
  for (const s of held) s.close();
  assert.equal(r.code, 2, r.out);
  assertOneLine(r.out, 'SWITCHBOARD_RTP_PORTS');
  assert.match(r.out, new RegExp(`every RTP port pair in ${low}-${low + 1} on 127\\.0\\.0\\.1 is already in use`));
});
