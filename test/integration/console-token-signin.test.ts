/**
 * The console's "Sign in with an API token", as a browser sends it to a real
 * gateway: `POST /v1/auth/login` with `{ "token" }` (JSON, same origin) gives
 * a session cookie of its own — not the token — that opens `/v1/auth/me`; a
 * wrong token answers exactly like a wrong password, writes nothing and counts
 * against the same sign-in throttle; the cross-site guard applies; a session
 * never outlives the token it came from.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { BOOTSTRAP_EMAIL } from '../../api/auth/bootstrap.ts';
import { tokenHash } from '../../api/auth/secrets.ts';
import { OPERATOR_TENANT } from '../../schema/index.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { token_created, token_revoked } from '../../schema/reducers.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
});
after(async () => {
  await gw?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Each test uses its own loopback addresses, so per-address budgets do not leak between tests. */
let nextHost = 40;
const freshAddress = (): string => `127.0.0.${nextHost++}`;

/** A request from local address `from`, with the headers a browser on the console page sends (unless overridden). */
function send(from: string, method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(gw.publicUrl + path);
  const headers: Record<string, string> = { origin: gw.publicUrl, 'sec-fetch-site': 'same-origin', accept: 'application/json', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method, localAddress: from, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (k !== 'date' && v !== undefined) out[k] = String(v);
        resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const signIn = (from: string, body: Record<string, string>): Promise<Answer> =>
  send(from, 'POST', '/v1/auth/login', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/** The session cookie's `name=value` from a Set-Cookie header. */
function sessionCookie(a: Answer): string {
  const m = /(sb_session=[^;]+)/.exec(a.headers['set-cookie'] ?? '');
  assert.ok(m, `a session cookie is set: ${JSON.stringify(a.headers)}`);
  return m[1]!;
}

test('the admin token signs the console in: a session cookie of its own opens the API as the admin, and signs out', async () => {
  const from = freshAddress();
  const r = await signIn(from, { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { user: { email: string; role: string }; expires_at: string };
  assert.deepEqual([body.user.email, body.user.role], [BOOTSTRAP_EMAIL, 'admin']);
  const cookie = sessionCookie(r);
  assert.notEqual(cookie, `sb_session=${ADMIN_TOKEN}`, 'the API token itself never becomes the cookie');
  assert.match(r.headers['set-cookie'] ?? '', /HttpOnly/i);
  assert.match(r.headers['set-cookie'] ?? '', /SameSite=Strict/i);

  const me = await send(from, 'GET', '/v1/auth/me', { headers: { cookie } });
  assert.equal(me.status, 200, me.body);
  assert.equal((JSON.parse(me.body) as { email: string }).email, BOOTSTRAP_EMAIL);
  const out = await send(from, 'POST', '/v1/auth/logout', { headers: { cookie } });
  assert.equal(out.status, 200, out.body);
  assert.equal((await send(from, 'GET', '/v1/auth/me', { headers: { cookie } })).status, 401, 'signed out');
  assert.equal((await send(from, 'GET', '/v1/auth/me', { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, origin: '', 'sec-fetch-site': '' } })).status, 200, 'signing out ends the session, not the admin token');
});

test('a wrong token answers exactly like a wrong password, writes nothing, and counts against the sign-in throttle', async () => {
  const before = gw.store.head.seq;
  const wrongToken = await signIn(freshAddress(), { token: 'sbk_not-a-token-0123456789abcdefghij' });
  const wrongPassword = await signIn(freshAddress(), { email: BOOTSTRAP_EMAIL, password: 'not the password' });
  assert.equal(wrongToken.status, 401);
  assert.deepEqual(wrongToken, wrongPassword, 'the same status, headers and body');
  assert.equal(gw.store.head.seq, before, 'a failed sign-in writes nothing');

  const from = freshAddress();
  let last: Answer | null = null;
  for (let i = 0; i < 12 && last?.status !== 429; i++) last = await signIn(from, { token: `sbk_guess-${i}-0123456789abcdefghijkl` });
  assert.equal(last?.status, 429, 'guessing tokens from one address is slowed down');
  assert.match(last!.headers['retry-after'] ?? '', /^\d+$/);
  const right = await signIn(from, { token: ADMIN_TOKEN });
  assert.equal(right.status, 429, 'even the right token waits at that address, like a password would');
  const password = await signIn(from, { email: BOOTSTRAP_EMAIL, password: 'whatever password' });
  assert.equal(password.status, 429, 'token and password attempts share the budget of the address');
  assert.equal((await signIn(freshAddress(), { token: ADMIN_TOKEN })).status, 200, 'another address is not held back');
});

test('the cross-site guard applies: a foreign origin is refused, a form body is refused, nothing is issued', async () => {
  const before = gw.store.head.seq;
  const foreign = await send(freshAddress(), 'POST', '/v1/auth/login', {
    body: JSON.stringify({ token: ADMIN_TOKEN }),
    headers: { 'content-type': 'application/json', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
  });
  assert.equal(foreign.status, 403, foreign.body);
  assert.match(foreign.body, /cross_site_request/);
  const form = await send(freshAddress(), 'POST', '/v1/auth/login', {
    body: `token=${encodeURIComponent(ADMIN_TOKEN)}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(form.status, 415, form.body);
  assert.equal(foreign.headers['set-cookie'] ?? form.headers['set-cookie'], undefined, 'no session cookie');
  assert.equal(gw.store.head.seq, before, 'no session was written');
});

test('a session from a token ends no later than the token; a revoked token signs nothing in', async () => {
  const admin = gw.store.read(OPERATOR_TENANT).users.findOne({ email: BOOTSTRAP_EMAIL })!;
  const short = 'sbk_short-lived-token-0123456789abcdefgh';
  const expiresAt = Date.now() + 3600_000;
  const created = resultOf<{ token_id: string }>(
    await gw.store.submit(token_created, { user_id: admin.id, name: 'one hour', token_hash: tokenHash(short), expires_at: expiresAt }, { tenant: OPERATOR_TENANT, caller: 'system:test' }),
  );
  const r = await signIn(freshAddress(), { token: short });
  assert.equal(r.status, 200, r.body);
  assert.equal(Date.parse((JSON.parse(r.body) as { expires_at: string }).expires_at), expiresAt, 'not 12 hours: the token ends in one');
  resultOf(await gw.store.submit(token_revoked, { token_id: created.token_id }, { tenant: OPERATOR_TENANT, caller: 'system:test' }));
  assert.equal((await signIn(freshAddress(), { token: short })).status, 401);
});
