/**
 * `switchboard config` run as a user runs it: the effective configuration with secrets masked, exit 0; a bad
 * variable gives the line `switchboard start` gives, exit 2. And `SWITCHBOARD_TTS=none` (a CONTRACT value) starts a
 * gateway that serves, saying that it has no speech synthesis.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { BIN } from '../helpers/first-start.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

let running: GatewayProcess | null = null;
after(async () => running?.stop());

function run(args: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_LOG_LEVEL: 'error', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('switchboard config prints every variable with its source, secrets masked, exit 0', () => {
  const admin = 'sbk_integration-admin-token-LAST';
  const r = run(['config'], { SWITCHBOARD_PROFILE: 'production', SWITCHBOARD_ADMIN_TOKEN: admin, VONAGE_SIGNATURE_SECRET: 'vonage-signing-secret-0000', SWITCHBOARD_TTS: 'none' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^SWITCHBOARD_ADMIN_TOKEN +\*\*\*\*LAST +env$/m);
  assert.match(r.stdout, /^SWITCHBOARD_FSYNC_POLICY +always +profile production$/m);
  assert.match(r.stdout, /^SWITCHBOARD_TTS +none +env$/m);
  assert.match(r.stdout, /^SWITCHBOARD_HTTP_PORT +8080 +default$/m);
  assert.doesNotMatch(r.stdout, /integration-admin-token|vonage-signing-secret/);

  const json = run(['config', '--json'], { SWITCHBOARD_ADMIN_TOKEN: admin });
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ name: string; value: string | null; source: string; secret: boolean }>;
  assert.deepEqual(rows.find((x) => x.name === 'SWITCHBOARD_ADMIN_TOKEN'), { name: 'SWITCHBOARD_ADMIN_TOKEN', section: 'gateway', value: '****LAST', source: 'env', secret: true });
});

test('switchboard config with a bad variable: the line start gives, exit 2', async () => {
  const env = { SWITCHBOARD_DATA_DIR: tmpDir('sb-config-'), SWITCHBOARD_HTTP_PORT: String(await freePort()), SWITCHBOARD_MAX_CALLS: 'lots' };
  const config = run(['config'], env);
  const start = run(['start'], env);
  assert.equal(config.code, 2, config.stderr);
  assert.equal(start.code, 2, start.stderr);
  assert.match(config.stderr, /SWITCHBOARD_MAX_CALLS must be a whole number ≥ 0/);
  assert.equal(config.stderr, start.stderr, 'the same message');
  assert.doesNotMatch(config.stderr, /^\s+at /m, 'no stack trace');
});

test('SWITCHBOARD_TTS=none starts a gateway that serves, with no speech synthesis', { timeout: 90_000 }, async () => {
  running = await spawnGateway({ port: await freePort(), dataDir: tmpDir('sb-tts-none-'), env: { SWITCHBOARD_TTS: 'none' } });
  const ready = await fetch(`${running.publicUrl}/readyz`);
  assert.equal(ready.status, 200);
  assert.ok(running.logs.some((l) => l.includes('SWITCHBOARD_TTS=none: no speech synthesis')), running.logs.join('\n'));
  assert.ok(running.logs.some((l) => /"tts":"none"/.test(l) && l.includes('speech providers')), running.logs.join('\n'));
});
