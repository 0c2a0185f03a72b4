/**
 * `switchboard numbers connect --provider vonage`, the real binary as a child
 * process with the real @vonage/server-sdk, pointed (VONAGE_API_HOST,
 * VONAGE_REST_HOST) at test/helpers/fake-vonage-api.ts. The fake stands in
 * for Vonage, which is unreachable offline: these tests prove the requests
 * the SDK sends and how the command handles the answers, NOT that the
 * command works against live Vonage.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { startFakeVonageApi, type FakeVonageApi, type JsonRecord } from '../helpers/fake-vonage-api.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const API_KEY = 'a1b2c3d4';
const API_SECRET = 'Sup3r-S3cret-Value-77';
const APP_ID = '3f1c2a9e-6b7d-4e21-9c55-0a1b2c3d4e5f';
const NUMBER = '+14155550100';
const PUBLIC = 'https://gw.example.com';

/** The application as Vonage's API answers it (snake_case), with voice and two other capabilities. */
const APPLICATION: JsonRecord = {
  id: APP_ID,
  name: 'front desk',
  keys: { public_key: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n' },
  privacy: { improve_ai: false },
  capabilities: {
    voice: {
      webhooks: {
        answer_url: { address: 'https://old.example.com/answer', http_method: 'GET', connect_timeout: 500, socket_timeout: 3000 },
        event_url: { address: 'https://old.example.com/event', http_method: 'POST' },
        fallback_answer_url: { address: 'https://old.example.com/fallback', http_method: 'GET' },
      },
      signed_callbacks: true,
      conversations_ttl: 48,
      region: 'eu-west',
    },
    messages: {
      webhooks: {
        inbound_url: { address: 'https://msg.example.com/inbound', http_method: 'POST' },
        status_url: { address: 'https://msg.example.com/status', http_method: 'POST' },
      },
      version: 'v1',
      authenticate_inbound_media: true,
    },
    rtc: { webhooks: { event_url: { address: 'https://rtc.example.com/event', http_method: 'POST' } }, signed_callbacks: false },
  },
};

let fake: FakeVonageApi;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with the fake as Vonage and every credential set; `env` overrides, `null` removes. */
function cli(args: string[], env: Record<string, string | null> = {}): Promise<Run> {
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    VONAGE_API_KEY: API_KEY,
    VONAGE_API_SECRET: API_SECRET,
    VONAGE_APPLICATION_ID: APP_ID,
    SWITCHBOARD_PUBLIC_URL: PUBLIC,
    VONAGE_API_HOST: fake.url,
    VONAGE_REST_HOST: fake.url,
  };
  delete full.DEBUG;
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

function assertNoSecret(r: Run): void {
  assert.ok(!r.stdout.includes(API_SECRET) && !r.stderr.includes(API_SECRET), `the API secret was printed\n${show(r)}`);
  const basic = Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64');
  assert.ok(!r.stdout.includes(basic) && !r.stderr.includes(basic), `the Basic credentials were printed\n${show(r)}`);
}

before(async () => {
  fake = await startFakeVonageApi({ apiKey: API_KEY, apiSecret: API_SECRET });
});
after(async () => {
  await fake?.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  fake.applications.clear();
  fake.applications.set(APP_ID, structuredClone(APPLICATION));
  fake.numbers.length = 0;
  fake.numbers.push({ country: 'US', msisdn: '14155550100' }, { country: 'US', msisdn: '141555501009' });
});

test('missing credentials: exit 2 naming each missing variable and what the command would do; nothing sent', async () => {
  const r = await cli([NUMBER, '--provider', 'vonage'], { VONAGE_API_KEY: null, VONAGE_API_SECRET: '', VONAGE_APPLICATION_ID: null });
  assert.equal(r.code, 2, show(r));
  const first = r.stderr.split('\n')[0] ?? '';
  assert.match(first, /not set: VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_APPLICATION_ID; nothing was sent\./);
  assert.match(r.stderr, /answer_url {2}POST https:\/\/gw\.example\.com\/vonage\/answer/);
  assert.match(r.stderr, /event_url {3}POST https:\/\/gw\.example\.com\/vonage\/event/);
  assert.match(r.stderr, /Vonage number \+14155550100: link it to application \$VONAGE_APPLICATION_ID/);
  assert.equal(fake.requests.length, 0);

  const onlySecret = await cli(['--provider', 'vonage'], { VONAGE_API_SECRET: null, SWITCHBOARD_PUBLIC_URL: null });
  assert.equal(onlySecret.code, 2, show(onlySecret));
  assert.match(onlySecret.stderr, /not set: VONAGE_API_SECRET, SWITCHBOARD_PUBLIC_URL \(or --public-url\); nothing was sent\./);
  assert.doesNotMatch(onlySecret.stderr, /VONAGE_API_KEY|VONAGE_APPLICATION_ID/, 'only the missing variables are named');
  assert.doesNotMatch(onlySecret.stderr, /Vonage number/, 'no number given: no link planned');
  assert.match(onlySecret.stderr, /answer_url {2}POST \$SWITCHBOARD_PUBLIC_URL\/vonage\/answer/);
  assert.equal(fake.requests.length, 0);
});

test('--dry-run prints the plan and sends nothing', async () => {
  const r = await cli([NUMBER, '--provider', 'vonage', '--dry-run', '--public-url', 'https://edge.example.org/']);
  assert.equal(r.code, 0, show(r));
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'dry run: nothing sent. A run would:',
    `  Vonage application ${APP_ID}: set the voice webhooks`,
    '    answer_url  POST https://edge.example.org/vonage/answer',
    '    event_url   POST https://edge.example.org/vonage/event',
    '    (its other capabilities and settings are kept as they are)',
    `  Vonage number ${NUMBER}: link it to application ${APP_ID}`,
  ]);
  assert.equal(fake.requests.length, 0);
  assertNoSecret(r);
});

test('invalid inputs: exit 2 before anything is sent', async () => {
  const cases: Array<{ args: string[]; env?: Record<string, string | null>; error: RegExp }> = [
    { args: ['--provider', 'vonage', '--public-url', 'http://gw.example.com'], error: /--public-url: must be https:\/\/ \(http:\/\/ only for localhost\)/ },
    { args: ['--provider', 'vonage'], env: { SWITCHBOARD_PUBLIC_URL: 'http://gw.example.com' }, error: /SWITCHBOARD_PUBLIC_URL: must be https:\/\// },
    { args: ['4155550100', '--provider', 'vonage'], error: /NUMBER: not an E\.164 number/ },
    { args: ['--provider', 'vonage'], env: { VONAGE_APPLICATION_ID: 'my-app' }, error: /VONAGE_APPLICATION_ID: not an application id/ },
    { args: ['--provider', 'vonage'], env: { VONAGE_API_HOST: 'http://api.example.com' }, error: /VONAGE_API_HOST: must be https:\/\// },
    { args: [], error: /pass --provider vonage/ },
    { args: ['--provider', 'vonage'], env: { DEBUG: 'express,vonage:*' }, error: /DEBUG=express,vonage:\* makes @vonage\/server-sdk log its request headers/ },
  ];
  for (const c of cases) {
    const r = await cli(c.args, c.env);
    assert.equal(r.code, 2, `${c.args.join(' ')}: ${show(r)}`);
    assert.match(r.stderr, c.error);
  }
  assert.equal(fake.requests.length, 0);
});

// Twilio is configured through its API too: test/integration/twilio-connect.test.ts.
test('other providers: one line with the URLs to set by hand, exit 2, nothing sent', async () => {
  const sip = await cli(['--provider', 'sip']);
  assert.equal(sip.code, 2, show(sip));
  assert.match(sip.stderr, /SIP trunks are pointed at the gateway by the carrier: .*sip:gw\.example\.com:5060/);
  assert.equal(fake.requests.length, 0);
});

test('the SDK on the wire: reads, then PUTs the application with only the voice webhooks changed, then links the number', async () => {
  const r = await cli([NUMBER, '--provider', 'vonage']);
  assert.equal(r.code, 0, show(r));
  assertNoSecret(r);
  const basic = `Basic ${Buffer.from(`${API_KEY}:${API_SECRET}`).toString('base64')}`;

  assert.deepEqual(
    fake.requests.map((q) => `${q.method} ${q.path}`),
    [`GET /v2/applications/${APP_ID}`, 'GET /account/numbers?pattern=14155550100&search_pattern=0', `PUT /v2/applications/${APP_ID}`, 'POST /number/update'],
  );
  for (const q of fake.requests) assert.equal(q.authorization, basic, `${q.method} ${q.path}: Basic auth with the API key and secret`);

  const put = fake.requests[2];
  assert.ok(put);
  assert.equal(put.contentType, 'application/json');
  const expected = structuredClone(APPLICATION) as { capabilities: { voice: { webhooks: JsonRecord } } } & JsonRecord;
  expected.capabilities.voice.webhooks.answer_url = { address: `${PUBLIC}/vonage/answer`, http_method: 'POST', connect_timeout: 500, socket_timeout: 3000 };
  expected.capabilities.voice.webhooks.event_url = { address: `${PUBLIC}/vonage/event`, http_method: 'POST' };
  assert.deepEqual(JSON.parse(put.body), expected, 'the whole application, only answer_url/event_url changed');

  const update = fake.requests[3];
  assert.ok(update);
  assert.equal(update.contentType, 'application/x-www-form-urlencoded');
  assert.deepEqual(Object.fromEntries(new URLSearchParams(update.body)), { app_id: APP_ID, country: 'US', msisdn: '14155550100' });
  assert.deepEqual(fake.numbers[0], { country: 'US', msisdn: '14155550100', app_id: APP_ID });
  assert.equal(fake.numbers[1]?.app_id, undefined, 'only the exact number is linked');

  assert.match(r.stdout, /Vonage application front desk \(3f1c2a9e-[^)]+\): voice webhooks set/);
  assert.match(r.stdout, /answer_url {2}POST https:\/\/gw\.example\.com\/vonage\/answer {3}\(was GET https:\/\/old\.example\.com\/answer\)/);
  assert.match(r.stdout, /Vonage number \+14155550100: linked to application 3f1c2a9e-/);

  // Again: nothing left to change, so only the two reads are sent.
  fake.requests.length = 0;
  const again = await cli([NUMBER, '--provider', 'vonage']);
  assert.equal(again.code, 0, show(again));
  assert.deepEqual(fake.requests.map((q) => q.method), ['GET', 'GET']);
  assert.match(again.stdout, /already point at https:\/\/gw\.example\.com/);
  assert.match(again.stdout, /already linked/);
});

test('401 from the API: one line with the status and Vonage\'s error title, exit 1, nothing written', async () => {
  const r = await cli([NUMBER, '--provider', 'vonage'], { VONAGE_API_SECRET: 'wrong-secret-123' });
  assert.equal(r.code, 1, show(r));
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, show(r));
  assert.match(r.stderr, new RegExp(`^switchboard: Vonage API: reading application ${APP_ID} failed: HTTP 401 Unauthorized \\(You did not provide correct credentials\\.\\)$`, 'm'));
  assert.ok(!r.stderr.includes('wrong-secret-123'), 'the secret is not printed');
  assert.deepEqual(fake.requests.map((q) => q.method), ['GET']);
});

test('a number not on the account, or an unknown application: exit 1 and no write', async () => {
  const r = await cli(['+442071838750', '--provider', 'vonage']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /\+442071838750 is not a number of this Vonage account .*nothing was changed/);
  assert.deepEqual(fake.requests.map((q) => q.method), ['GET', 'GET']);

  fake.requests.length = 0;
  const other = '00000000-0000-4000-8000-000000000000';
  const missing = await cli(['--provider', 'vonage'], { VONAGE_APPLICATION_ID: other });
  assert.equal(missing.code, 1, show(missing));
  assert.match(missing.stderr, new RegExp(`reading application ${other} failed: HTTP 404 Not Found \\(Application ${other} not found\\)`));
  assert.deepEqual(fake.requests.map((q) => q.method), ['GET']);
});

test('the Vonage API unreachable: exit 1 naming the host, no secret printed', async () => {
  const r = await cli(['--provider', 'vonage'], { VONAGE_API_HOST: 'http://127.0.0.1:1' });
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /reading application .* failed: cannot reach http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  assertNoSecret(r);
});
