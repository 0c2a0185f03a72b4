/**
 * The offline CLI on what a newcomer types: read-only commands on a directory that holds no store refuse it and
 * create nothing (before, `verify --data-dir TYPO` made an empty store and printed "verify: OK"); `calls --json | head`
 * stops quietly; `numbers add` refuses a bare digit string as a phone number and warns of an agent nobody deployed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openTestStore } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_received, tenant_created } from '../../schema/reducers.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

function run(args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.SWITCHBOARD_DATA_DIR;
  delete env.SWITCHBOARD_URL;
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, ...(cwd ? { cwd } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('verify, replay, calls and call refuse a directory with no store, exit 2, and create nothing', () => {
  const parent = tmpDir('sb-cli-nostore-');
  const typo = path.join(parent, 'dtaa');
  for (const args of [['verify'], ['replay'], ['calls'], ['call', 'call_x']]) {
    const r = run([...args, '--data-dir', typo]);
    assert.equal(r.code, 2, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${typo.replace(/[/.]/g, '\\$&')} holds no switchboard store \\(no switchboard\\.db\\)`));
    assert.doesNotMatch(r.stdout, /OK/);
    assert.equal(fs.existsSync(typo), false, `${args[0]} created ${typo}`);
  }
  // Plain `switchboard verify` in a directory without ./data: the same, and no ./data appears.
  const r = run(['verify'], parent);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /holds no switchboard store/);
  assert.deepEqual(fs.readdirSync(parent), []);
});

test('`calls --json | head -1` prints one line and no EPIPE stack trace', async () => {
  const dir = tmpDir('sb-cli-epipe-');
  const store = openTestStore({ dataDir: dir });
  const who = { tenant: 'default', caller: 'test' };
  await store.submit(tenant_created, { id: 'default', name: 'D' }, who);
  // Enough lines to overflow a pipe's buffer after head has gone.
  for (let i = 0; i < 600; i++) await store.submit(call_received, { provider: 'twilio', provider_call_id: `CA${i}`, from: '+15550001111', to: '+15551234567' }, who);
  store.close();
  const env = { ...process.env };
  delete env.SWITCHBOARD_URL;
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${BIN}" calls --json --data-dir "${dir}" | head -1`], { encoding: 'utf8', env });
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.equal(JSON.parse(r.stdout).provider, 'twilio');
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
  assert.equal(r.status, 0, r.stderr);
});

test('numbers add offline: a bare digit string is refused (exit 2), +E.164 routes, an undeployed agent is warned of', async () => {
  const dir = tmpDir('sb-cli-numbers-');
  const store = openTestStore({ dataDir: dir });
  await store.submit(tenant_created, { id: 'default', name: 'D' }, { tenant: 'default', caller: 'test' });
  store.close();
  const bare = run(['numbers', 'add', '12345', '--agent', 'default', '--data-dir', dir]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /12345 is not an E\.164 number: write it with \+ and the country code \(e\.g\. \+12345\), or route it as a SIP user part with provider sip/);
  const builtin = run(['numbers', 'add', '+15551230001', '--agent', 'default', '--data-dir', dir]);
  assert.equal(builtin.code, 0, builtin.stderr);
  assert.equal(builtin.stderr, '');
  const nosuch = run(['numbers', 'add', '+15551230002', '--agent', 'nosuch', '--data-dir', dir]);
  assert.equal(nosuch.code, 0, nosuch.stderr);
  assert.match(nosuch.stderr, /warning: agent nosuch is not deployed in this tenant/);
  const ext = run(['numbers', 'add', '12345', '--agent', 'default', '--provider', 'sip', '--data-dir', dir]);
  assert.equal(ext.code, 0, ext.stderr);
});
