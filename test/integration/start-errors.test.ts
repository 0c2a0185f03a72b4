/**
 * `switchboard start` refuses, with a clear message and exit code 2, a data dir
 * held by another gateway, a corrupt database and an invalid configuration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
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
