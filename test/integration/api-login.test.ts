/**
 * `POST /v1/auth/login` against a real gateway, from several client addresses
 * (127.0.0.x on the loopback): every failure answers the same, whether the
 * e-mail is unknown, the password wrong, the user token-only or the e-mail in
 * several tenants; an e-mail in several tenants signs in to the account the
 * password opens; failures slow an address and an account down (429 +
 * Retry-After, for unknown e-mails alike) but an attacker cannot lock the
 * owner out; nothing is written to the store for a failed attempt.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { hashPassword } from '../../api/auth/secrets.ts';
import { BOOTSTRAP_EMAIL } from '../../api/auth/bootstrap.ts';
import { userToken } from '../helpers/api.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { user_created } from '../../schema/reducers.ts';

const PASSWORD = 'correct horse battery staple';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
  await ensureTenant(gw.store, 'other');
});
after(async () => {
  await gw?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Each test signs in from its own loopback addresses, so per-address budgets do not leak between tests. */
let nextHost = 10;
const freshAddress = (): string => `127.0.0.${nextHost++}`;

/** POST /v1/auth/login from the local address `from`. */
function login(from: string, body: Record<string, string>): Promise<Answer> {
  const url = new URL(`${gw.publicUrl}/v1/auth/login`);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: from, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (k !== 'date' && v !== undefined) headers[k] = String(v);
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString() });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const unique = (prefix: string): string => `${prefix}-${Math.random().toString(36).slice(2, 8)}@example.com`;

/** A user with `email` and a password in tenant `tenant`, written as the gateway's admin tooling would. */
async function userIn(tenant: string, email: string, password: string): Promise<string> {
  const r = resultOf<{ user_id: string }>(await gw.store.submit(user_created, { email, role: 'auditor', password_hash: await hashPassword(password) }, { tenant, caller: 'system:test' }));
  return r.user_id;
}

test('every failure answers the same: unknown e-mail, wrong password, token-only user, e-mail in several tenants', async () => {
  const known = (await userToken(gw.publicUrl, 'auditor')).email;
  const shared = unique('shared');
  await userIn('default', shared, 'the default tenant password');
  await userIn('other', shared, 'the other tenant password');
  const commandsBefore = gw.store.head.seq;
  const answers = new Map<string, Answer>();
  for (const [name, body] of [
    ['unknown e-mail', { email: unique('nobody'), password: PASSWORD }],
    ['wrong password', { email: known, password: 'not the password' }],
    ['token-only user', { email: BOOTSTRAP_EMAIL, password: PASSWORD }],
    ['e-mail in several tenants, wrong password', { email: shared, password: 'neither password' }],
    ['e-mail in several tenants, the other tenant named', { email: shared, password: 'the default tenant password', tenant: 'other' }],
    ['unknown tenant', { email: known, password: PASSWORD, tenant: 'nope' }],
  ] as const) {
    answers.set(name, await login(freshAddress(), body));
  }
  const [first, ...rest] = [...answers.entries()];
  assert.equal(first![1].status, 401);
  assert.match(first![1].body, /invalid_credentials/);
  for (const [name, a] of rest) {
    assert.deepEqual(a, first![1], `${name} answers exactly like ${first![0]}`);
  }
  assert.equal(gw.store.head.seq, commandsBefore, 'a failed sign-in writes nothing');
});

test('an e-mail in several tenants signs in to the account its password opens; the tenant is asked only when the password opens several', async () => {
  const email = unique('two-tenants');
  await userIn('default', email, 'the default tenant password');
  await userIn('other', email, 'the other tenant password');
  const toOther = await login(freshAddress(), { email, password: 'the other tenant password' });
  assert.equal(toOther.status, 200, toOther.body);
  assert.equal((JSON.parse(toOther.body) as { user: { tenant: string } }).user.tenant, 'other');
  const toDefault = await login(freshAddress(), { email, password: 'the default tenant password' });
  assert.equal((JSON.parse(toDefault.body) as { user: { tenant: string } }).user.tenant, 'default');

  const same = unique('same-password');
  await userIn('default', same, PASSWORD);
  await userIn('other', same, PASSWORD);
  const ambiguous = await login(freshAddress(), { email: same, password: PASSWORD });
  assert.equal(ambiguous.status, 409);
  assert.match(ambiguous.body, /tenant_required/);
  assert.match(ambiguous.body, /default, other/);
  const chosen = await login(freshAddress(), { email: same, password: PASSWORD, tenant: 'other' });
  assert.equal(chosen.status, 200, chosen.body);
});

test('per-address backoff: after a few failures from one address every further attempt there is 429 with Retry-After, even with the right password', async () => {
  const { email } = await userToken(gw.publicUrl, 'auditor');
  const address = freshAddress();
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await login(address, { email: unique(`spray${i}`), password: 'x' })).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
  const throttled = await login(address, { email, password: PASSWORD });
  assert.equal(throttled.status, 429, throttled.body);
  assert.match(throttled.body, /rate_limited/);
  assert.ok(Number(throttled.headers['retry-after']) >= 1);
  const elsewhere = await login(freshAddress(), { email, password: PASSWORD });
  assert.equal(elsewhere.status, 200, 'the account itself was never failing');
  // Parallel attempts cannot slip past while their hashes run: each is charged before the password is checked.
  const burst = freshAddress();
  const parallel = await Promise.all(Array.from({ length: 10 }, (_, i) => login(burst, { email: unique(`burst${i}`), password: 'x' })));
  assert.deepEqual(parallel.map((r) => r.status).sort(), [401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
});

test('an attacker\'s failures slow the account down for every new address, known e-mail or not, but do not lock out the owner', async () => {
  const { email } = await userToken(gw.publicUrl, 'compliance');
  const ownersAddress = freshAddress();
  assert.equal((await login(ownersAddress, { email, password: PASSWORD })).status, 200, 'the owner signs in as usual');
  const unknown = unique('ghost');
  for (const target of [email, unknown]) {
    const attacker = freshAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await login(attacker, { email: target, password: `guess-${i}` })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429], target);
  }
  // From an address that has never failed, the account's backoff answers — the same for the real and the made-up e-mail.
  const onKnown = await login(freshAddress(), { email, password: 'one more guess' });
  const onUnknown = await login(freshAddress(), { email: unknown, password: 'one more guess' });
  assert.equal(onKnown.status, 429, onKnown.body);
  assert.ok(Number(onKnown.headers['retry-after']) >= 1);
  assert.equal(onUnknown.status, 429, onUnknown.body);
  assert.deepEqual({ ...onUnknown, headers: { ...onUnknown.headers, 'retry-after': '' } }, { ...onKnown, headers: { ...onKnown.headers, 'retry-after': '' } });
  const owner = await login(ownersAddress, { email, password: PASSWORD });
  assert.equal(owner.status, 200, `the owner is not locked out: ${owner.body}`);
  assert.equal((await login(freshAddress(), { email, password: PASSWORD })).status, 200, 'their success cleared the account\'s backoff');
});
