/**
 * `switchboard numbers connect NUMBER --provider twilio`, the real binary as a child process with the real `twilio`
 * package, pointed (TWILIO_API_BASE) at test/helpers/fake-twilio-api.ts. The fake stands in for Twilio, which is
 * unreachable offline: these tests prove the requests the package sends and how the command handles the answers,
 * NOT that the command works against live Twilio.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { startFakeTwilioApi, type FakeTwilioApi } from '../helpers/fake-twilio-api.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const ACCOUNT_SID = `AC${'abcdef0123456789'.repeat(2)}`;
const AUTH_TOKEN = 'c0ffeec0ffeec0ffeec0ffeec0ffee00';
const NUMBER = '+14155550100';
const PUBLIC = 'https://gw.example.com';

let fake: FakeTwilioApi;
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string | null> = {}): Promise<Run> {
  const full: NodeJS.ProcessEnv = { ...process.env, TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN, SWITCHBOARD_PUBLIC_URL: PUBLIC, TWILIO_API_BASE: fake.url };
  for (const [k, v] of Object.entries(env)) {
    if (v === null) delete full[k];
    else full[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'numbers', 'connect', ...args], { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const show = (r: Run): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const noSecret = (r: Run): void => assert.ok(!`${r.stdout}${r.stderr}`.includes(AUTH_TOKEN), `the auth token was printed\n${show(r)}`);

before(async () => {
  fake = await startFakeTwilioApi({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, numbers: [NUMBER] });
});
after(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  for (const n of fake.numbers) Object.assign(n, { voice_url: 'https://old.example.com/voice', voice_method: 'GET', status_callback: null });
});

test('the package on the wire: looks the number up, then sets its voice URL and status callback; again: already set', async () => {
  const r = await cli([NUMBER, '--provider', 'twilio']);
  assert.equal(r.code, 0, show(r));
  noSecret(r);
  const pn = fake.numbers[0]!.sid;
  assert.deepEqual(fake.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`), [`GET /2010-04-01/Accounts/${ACCOUNT_SID}/IncomingPhoneNumbers.json`, `POST /2010-04-01/Accounts/${ACCOUNT_SID}/IncomingPhoneNumbers/${pn}.json`]);
  assert.match(fake.requests[0]!.path, /PhoneNumber=%2B14155550100/);
  for (const q of fake.requests) assert.equal(q.authorization, `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`);
  assert.deepEqual(fake.requests[1]!.form, { VoiceUrl: [`${PUBLIC}/twilio/voice`], VoiceMethod: ['POST'], StatusCallback: [`${PUBLIC}/twilio/status`], StatusCallbackMethod: ['POST'] });
  assert.match(r.stdout, /voice webhooks set/);
  assert.match(r.stdout, /voice_url\s+POST https:\/\/gw\.example\.com\/twilio\/voice\s+\(was GET https:\/\/old\.example\.com\/voice\)/);
  fake.requests.length = 0;
  const again = await cli([NUMBER, '--provider', 'twilio']);
  assert.equal(again.code, 0, show(again));
  assert.match(again.stdout, /already point at https:\/\/gw\.example\.com/);
  assert.equal(fake.requests.filter((q) => q.method === 'POST').length, 0, 'nothing written when already set');
});

test('dry run, missing and invalid inputs: exit 2 (dry run 0), nothing sent', async () => {
  const dry = await cli([NUMBER, '--provider', 'twilio', '--dry-run']);
  assert.equal(dry.code, 0, show(dry));
  assert.match(dry.stdout, /dry run: nothing sent[\s\S]*voice_url\s+POST https:\/\/gw\.example\.com\/twilio\/voice/);
  const cases: Array<[string[], Record<string, string | null>, RegExp]> = [
    [[NUMBER, '--provider', 'twilio'], { TWILIO_ACCOUNT_SID: null, TWILIO_AUTH_TOKEN: null }, /not set: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN; nothing was sent/],
    [['--provider', 'twilio'], {}, /not set: NUMBER/],
    [['14155550100', '--provider', 'twilio'], {}, /NUMBER: not an E\.164 number/],
    [[NUMBER, '--provider', 'twilio'], { TWILIO_ACCOUNT_SID: 'nope' }, /TWILIO_ACCOUNT_SID: not an account SID/],
    [[NUMBER, '--provider', 'twilio'], { TWILIO_API_BASE: 'http://api.example.com' }, /TWILIO_API_BASE: must be https:\/\//],
    [[NUMBER, '--provider', 'twilio', '--public-url', 'http://gw.example.com'], {}, /--public-url: must be https:\/\//],
  ];
  for (const [args, env, error] of cases) {
    const r = await cli(args, env);
    assert.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)}: ${show(r)}`);
    assert.match(r.stderr, error);
    noSecret(r);
  }
  assert.equal(fake.requests.length, 0);
});

test('API failures: a number not on the account and bad credentials are one line, exit 1; an unreachable API names the host', async () => {
  const missing = await cli(['+14155550199', '--provider', 'twilio']);
  assert.equal(missing.code, 1, show(missing));
  assert.match(missing.stderr, /Twilio API: \+14155550199 is not a number of this Twilio account \(TWILIO_ACCOUNT_SID\); nothing was changed/);
  const wrong = await cli([NUMBER, '--provider', 'twilio'], { TWILIO_AUTH_TOKEN: 'ffffffffffffffffffffffffffffffff' });
  assert.equal(wrong.code, 1, show(wrong));
  assert.equal(wrong.stderr.split('\n').filter((l) => l.startsWith('switchboard: Twilio API')).length, 1, 'one line');
  assert.doesNotMatch(wrong.stderr, /^\s+at /m, 'no stack trace');
  assert.match(wrong.stderr, /Twilio API: looking up \+14155550100 failed: HTTP 401 Authenticate \(error 20003\)/);
  const down = await cli([NUMBER, '--provider', 'twilio'], { TWILIO_API_BASE: 'http://127.0.0.1:9' });
  assert.equal(down.code, 1, show(down));
  assert.match(down.stderr, /Twilio API: looking up \+14155550100 failed: cannot reach http:\/\/127\.0\.0\.1:9: ECONNREFUSED/);
  assert.equal(fake.numbers[0]!.status_callback, null, 'nothing changed');
});
