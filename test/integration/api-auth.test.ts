/**
 * Sign-in and tokens through the HTTP API of a real gateway: the bootstrap
 * admin token, login with a session cookie, token revocation, and secrets
 * kept only as hashes. Failed sign-ins and their throttling:
 * api-login.test.ts; cross-site use of the cookie: api-cross-site.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { bootstrapAdmin } from '../../api/auth/bootstrap.ts';
import { resolveToken } from '../../api/auth/principal.ts';
import { api, userToken } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { openTestStore } from '../helpers/store.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
});
after(async () => {
  await gw?.stop();
});

const PASSWORD = 'correct horse battery staple';

test('the bootstrap admin token from SWITCHBOARD_ADMIN_TOKEN works; no token or a wrong one is a 401', async () => {
  const me = await api(gw.publicUrl, 'GET', '/v1/auth/me');
  assert.equal(me.status, 200);
  assert.equal(me.body.role, 'admin');
  assert.equal(me.body.tenant, 'default');
  const none = await api(gw.publicUrl, 'GET', '/v1/calls', { token: null });
  assert.equal(none.status, 401);
  assert.equal((none.body as { error: { code: string } }).error.code, 'unauthenticated');
  assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/calls', { token: 'sbk_not-a-real-token-at-all-000' })).status, 401);
});

test('login returns a session token and an HttpOnly SameSite cookie; the cookie alone authenticates; logout revokes it', async () => {
  const { email } = await userToken(gw.publicUrl, 'compliance');
  const login = await api<{ token: string; user: { role: string } }>(gw.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email, password: PASSWORD } });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.user.role, 'compliance');
  const cookie = login.headers.get('set-cookie') ?? '';
  assert.match(cookie, /sb_session=/);
  assert.match(cookie, /HttpOnly/i);
  assert.match(cookie, /SameSite=Strict/i);
  const pair = cookie.split(';')[0] ?? '';
  const viaCookie = await fetch(`${gw.publicUrl}/v1/auth/me`, { headers: { cookie: pair } });
  assert.equal(viaCookie.status, 200);
  assert.equal(((await viaCookie.json()) as { email: string }).email, email);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/auth/logout', { token: login.body.token })).status, 200);
  assert.equal((await fetch(`${gw.publicUrl}/v1/auth/me`, { headers: { cookie: pair } })).status, 401);
});

test('bad login bodies are a 400 naming the field', async () => {
  const own = await startTestGateway();
  try {
    const r = await api<{ error: { code: string; message: string } }>(own.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email: 'not-an-email', password: '' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.match(r.body.error.message, /email/);
    assert.match(r.body.error.message, /password/);
  } finally {
    await own.stop();
  }
});

test('a token is shown once and stored only as a hash; revoking it takes effect at once; a user cannot revoke another user\'s token', async () => {
  const a = await userToken(gw.publicUrl, 'developer');
  const b = await userToken(gw.publicUrl, 'developer');
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token: a.token })).status, 200);
  const db = fs.readFileSync(path.join(gw.dataDir, 'switchboard.db'));
  const wal = fs.existsSync(path.join(gw.dataDir, 'switchboard.db-wal')) ? fs.readFileSync(path.join(gw.dataDir, 'switchboard.db-wal')) : Buffer.alloc(0);
  for (const secret of [a.token, ADMIN_TOKEN, PASSWORD]) {
    assert.equal(db.includes(secret), false, 'a secret is in the database file');
    assert.equal(wal.includes(secret), false, 'a secret is in the WAL');
  }
  const listed = await api<{ tokens: Array<{ id: string; user_id: string }> }>(gw.publicUrl, 'GET', '/v1/tokens', { token: a.token });
  assert.ok(listed.body.tokens.every((t) => t.user_id === a.userId), 'a user lists only their own tokens');
  const own = listed.body.tokens[0]!;
  const bTokens = await api<{ tokens: Array<{ id: string }> }>(gw.publicUrl, 'GET', '/v1/tokens', { token: b.token });
  const foreign = await api(gw.publicUrl, 'DELETE', `/v1/tokens/${bTokens.body.tokens[0]!.id}`, { token: a.token });
  assert.equal(foreign.status, 403);
  assert.equal((await api(gw.publicUrl, 'DELETE', `/v1/tokens/${own.id}`, { token: a.token })).status, 200);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token: a.token })).status, 401);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token: b.token })).status, 200);
});

test('without SWITCHBOARD_ADMIN_TOKEN a token is generated once; changing the variable revokes the old token', async () => {
  const store = openTestStore();
  const log = pino({ level: 'silent' });
  try {
    await ensureTenant(store, 'default');
    const ctx = { store, now: Date.now } as unknown as Parameters<typeof resolveToken>[0];
    const generated = await bootstrapAdmin(store, undefined, log);
    assert.ok(generated && generated.length > 30);
    assert.equal(resolveToken(ctx, generated)?.role, 'admin');
    assert.equal(await bootstrapAdmin(store, undefined, log), null, 'printed once: a restart does not make another');
    const chosen = 'sbk_operator-chosen-token-1234567890';
    assert.equal(await bootstrapAdmin(store, chosen, log), null);
    assert.equal(resolveToken(ctx, chosen)?.role, 'admin');
    assert.equal(resolveToken(ctx, generated), null, 'the old bootstrap token is revoked');
    await assert.rejects(bootstrapAdmin(store, 'short', log), /16–200/);
  } finally {
    store.close();
  }
});

test('disabling a user stops their token and sessions at once, is in the log, and can be undone; nobody disables themselves', async () => {
  const { token, userId, email } = await userToken(gw.publicUrl, 'compliance');
  const login = await api<{ token: string }>(gw.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email, password: PASSWORD } });
  assert.equal(login.status, 200);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token })).status, 200);

  const refused = await api(gw.publicUrl, 'PUT', `/v1/users/${userId}/disabled`, { token });
  assert.equal(refused.status, 403, 'a compliance user may not disable anyone');
  const off = await api(gw.publicUrl, 'PUT', `/v1/users/${userId}/disabled`);
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.deepEqual(off.body, { id: userId, disabled: true });
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token })).status, 401, 'the API token stops');
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token: login.body.token })).status, 401, 'the session stops');
  const relog = await api(gw.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email, password: PASSWORD } });
  assert.equal(relog.status, 401, 'and no new session is given');
  const listed = await api<{ users: Array<{ id: string; disabled: boolean }> }>(gw.publicUrl, 'GET', '/v1/users');
  assert.equal(listed.body.users.find((u) => u.id === userId)?.disabled, true);
  const logged = gw.store.read('default').users.get(userId);
  assert.equal(logged?.disabled, true);

  const on = await api(gw.publicUrl, 'DELETE', `/v1/users/${userId}/disabled`);
  assert.deepEqual(on.body, { id: userId, disabled: false });
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/auth/me', { token })).status, 200, 'enabled again, the token works');

  const me = await api<{ user_id?: string; id?: string }>(gw.publicUrl, 'GET', '/v1/auth/me');
  const adminId = me.body.user_id ?? me.body.id;
  const self = await api<{ error: { code: string } }>(gw.publicUrl, 'PUT', `/v1/users/${adminId}/disabled`);
  assert.equal(self.status, 403, JSON.stringify(self.body));
  assert.equal((await api(gw.publicUrl, 'PUT', '/v1/users/usr_does-not-exist/disabled')).status, 404);
});
