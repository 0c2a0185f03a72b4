/**
 * Provider credentials as an API resource (`/v1/provider-accounts`, api/routes/provider-accounts.ts), against the
 * gateway as a process (its log lines captured at `debug`) and the fake Twilio REST API:
 *
 *  - the file (SWITCHBOARD_PROVIDER_ACCOUNTS) names an account the fake does not know: a dial is refused (502);
 *  - PUT twilio with a malformed SID: 400 `invalid_credentials` naming the field; with a token Twilio refuses (the
 *    SDK's account fetch gets 401): 400 too; nothing is set either time;
 *  - PUT with the right credentials: checked (the fake saw the account fetch), 201 with a redacted view; the next
 *    dial is placed with them (the fake sees their Basic auth) and its webhooks, signed with the stored token, pass
 *    (the busy callee's status callback ends it `twilio:busy`); GET shows the SID, never the token;
 *  - a developer may not set or see accounts (403); Vonage (the private key parsed) and SIP (the trunk) accounts;
 *  - DELETE: the file's account is used again (502);
 *  - the auth token and the private key are nowhere in the data dir (database, WAL, keys) nor in the log lines.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api, userToken } from '../helpers/api.ts';
import { startFakeTwilioApi, type FakeTwilioApi } from '../helpers/fake-twilio-api.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15552230000';
const CALLEE = '+15557780001';
const ACCOUNT_SID = `AC${'89abcdef01234567'.repeat(2)}`;
const ACCOUNT_TOKEN = 'Zq7Secr3tT0kenZq7Secr3tT0kenAbCd';
const FILE_SID = `AC${'fedcba9876543210'.repeat(2)}`;
const PRIVATE_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const KEY_BODY = PRIVATE_KEY.split('\n')[5]!;

let gw: GatewayProcess;
let fake: FakeTwilioApi;

before(async () => {
  fake = await startFakeTwilioApi({ accountSid: ACCOUNT_SID, authToken: ACCOUNT_TOKEN, numbers: [NUMBER] });
  fake.callees.set(CALLEE, { kind: 'busy' });
  const dir = tmpDir('sb-provider-accounts-');
  const file = path.join(dir, 'accounts.json');
  fs.writeFileSync(file, JSON.stringify({ twilio: { api_base: fake.url, accounts: [{ tenant: 'default', credentials: { account_sid: FILE_SID, auth_token: 'fileTokenfileTokenfileToken00' } }] } }));
  gw = await spawnGateway({ port: await freePort(), dataDir: path.join(dir, 'data'), logLevel: 'debug', env: { SWITCHBOARD_PROVIDER_ACCOUNTS: file } });
  const n = await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', provider: 'twilio' } });
  assert.equal(n.status, 201, JSON.stringify(n.body));
});
after(async () => {
  await gw?.stop();
  await fake?.close();
});

type ApiError = { error?: { code: string; message: string } };
const put = (provider: string, body: unknown, token?: string) => api<ApiError & Record<string, unknown>>(gw.publicUrl, 'PUT', `/v1/provider-accounts/${provider}`, { body, ...(token ? { token } : {}) });
const dial = () => api<ApiError & { call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { body: { from: NUMBER, to: CALLEE } });
const basic = (sid: string, token: string) => `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`;

async function callEnded(id: string): Promise<{ state: string; end_reason: string | null }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await api<{ call: { state: string; end_reason: string | null } }>(gw.publicUrl, 'GET', `/v1/calls/${id}`);
    if (r.body.call?.state === 'ended') return r.body.call;
    assert.ok(Date.now() < deadline, `call ${id} did not end (${JSON.stringify(r.body.call)})`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

test('before any account is set, the file\'s account (unknown to Twilio) is used: 502 provider_refused', async () => {
  const r = await dial();
  assert.equal(r.status, 502, JSON.stringify(r.body));
  assert.equal(r.body.error?.code, 'provider_refused');
});

test('a malformed SID, then a token Twilio refuses: 400 invalid_credentials with a clear message, nothing set', async () => {
  const bad = await put('twilio', { credentials: { account_sid: 'AC123', auth_token: ACCOUNT_TOKEN } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.equal(bad.body.error?.code, 'invalid_credentials');
  assert.match(bad.body.error?.message ?? '', /credentials\.account_sid: AC \+ 32 hex digits/);
  const fetchesBefore = fake.requests.filter((q) => q.path === `/2010-04-01/Accounts/${ACCOUNT_SID}.json`).length;
  const refused = await put('twilio', { credentials: { account_sid: ACCOUNT_SID, auth_token: 'wrongTokenwrongTokenwrong0' } });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.error?.code, 'invalid_credentials');
  assert.match(refused.body.error?.message ?? '', /Twilio did not accept the account AC[0-9a-f]{32}: HTTP 401/);
  assert.doesNotMatch(JSON.stringify(refused.body), /wrongToken/);
  assert.equal(fake.requests.filter((q) => q.path === `/2010-04-01/Accounts/${ACCOUNT_SID}.json`).length, fetchesBefore + 1, 'checked through the SDK');
  const list = await api<{ accounts: unknown[] }>(gw.publicUrl, 'GET', '/v1/provider-accounts');
  assert.deepEqual(list.body.accounts, []);
});

test('the right credentials: checked, stored, shown redacted; the next dial uses them and their webhooks pass', { timeout: 60_000 }, async () => {
  const r = await put('twilio', { credentials: { account_sid: ACCOUNT_SID, auth_token: ACCOUNT_TOKEN } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual(r.body.credentials, { account_sid: ACCOUNT_SID, auth_token: 'set', friendly_name: 'Fake account' });
  const fetch = fake.requests.filter((q) => q.path === `/2010-04-01/Accounts/${ACCOUNT_SID}.json`).pop();
  assert.equal(fetch?.authorization, basic(ACCOUNT_SID, ACCOUNT_TOKEN));
  const shown = await api(gw.publicUrl, 'GET', '/v1/provider-accounts/twilio');
  assert.equal(shown.status, 200);
  assert.doesNotMatch(JSON.stringify(shown.body), new RegExp(ACCOUNT_TOKEN));

  const d = await dial();
  assert.equal(d.status, 202, JSON.stringify(d.body));
  const create = fake.requests.filter((q) => q.path.endsWith('/Calls.json')).pop()!;
  assert.equal(create.authorization, basic(ACCOUNT_SID, ACCOUNT_TOKEN), 'placed with the stored account, not the file\'s');
  const call = await callEnded(d.body.call_id);
  assert.equal(call.end_reason, 'twilio:busy', 'the status callback, signed with the stored token, was accepted');
});

test('a developer may neither set nor see accounts (403)', async () => {
  const dev = await userToken(gw.publicUrl, 'developer');
  assert.equal((await put('twilio', { credentials: { account_sid: ACCOUNT_SID, auth_token: ACCOUNT_TOKEN } }, dev.token)).status, 403);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/provider-accounts', { token: dev.token })).status, 403);
});

test('Vonage: a private key that does not parse is 400, a PEM key is stored (shown as "set"); SIP: a trunk', async () => {
  const appId = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
  const bad = await put('vonage', { credentials: { application_id: appId, private_key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----' } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.match(bad.body.error?.message ?? '', /credentials\.private_key: not a readable PEM private key/);
  const ok = await put('vonage', { credentials: { application_id: appId, private_key: PRIVATE_KEY }, numbers: [NUMBER] });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.credentials, { application_id: appId, private_key: 'set' });
  assert.deepEqual(ok.body.numbers, [NUMBER]);
  const foreign = await put('vonage', { credentials: { application_id: appId, private_key: PRIVATE_KEY }, numbers: ['+15550009999'] });
  assert.equal(foreign.status, 400);
  assert.match(foreign.body.error?.message ?? '', /numbers: \+15550009999 is not one of your numbers/);
  const sip = await put('sip', { credentials: { trunk: 'carrier.example:5080', transport: 'tcp' } });
  assert.equal(sip.status, 201, JSON.stringify(sip.body));
  assert.deepEqual(sip.body.credentials, { trunk: 'carrier.example:5080', transport: 'tcp' });
  const nobody = await put('webrtc', { credentials: { x: 'y' } });
  assert.equal(nobody.status, 400);
  assert.equal(nobody.body.error?.code, 'provider_cannot_dial');
});

test('DELETE: the account is gone and the file\'s is used again', async () => {
  const del = await api(gw.publicUrl, 'DELETE', '/v1/provider-accounts/twilio');
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/provider-accounts/twilio')).status, 404);
  assert.equal((await api(gw.publicUrl, 'DELETE', '/v1/provider-accounts/twilio')).status, 404);
  const r = await dial();
  assert.equal(r.status, 502, JSON.stringify(r.body));
});

test('no secret in the data dir (database, WAL, keys, recordings) nor in the log lines', () => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  walk(gw.dataDir);
  assert.ok(files.some((f) => /\.(db|sqlite)(-wal)?$/.test(f) || f.endsWith('-wal')), `the database is among ${files.length} files`);
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    for (const secret of [ACCOUNT_TOKEN, KEY_BODY]) assert.equal(bytes.indexOf(secret), -1, `${path.relative(gw.dataDir, f)} holds a secret`);
  }
  const logs = gw.logs.join('\n');
  assert.ok(logs.includes('provider account set'), 'the log lines were captured');
  for (const secret of [ACCOUNT_TOKEN, KEY_BODY]) assert.ok(!logs.includes(secret), 'a secret in the log lines');
});
