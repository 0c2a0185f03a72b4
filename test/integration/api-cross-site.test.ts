/**
 * Cross-site requests against a real gateway: the console's session cookie
 * cannot change anything from another origin (403, nothing written), API
 * bodies are JSON only (415 for forms and text, nothing written) while the
 * Twilio form webhooks keep working, bearer clients are unaffected, and the
 * subscription socket takes its token in the first message and refuses a
 * cookie-authenticated upgrade from another origin.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { api, userToken } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { sendWebhook } from '../helpers/twilio-webhook.ts';

const PASSWORD = 'correct horse battery staple';
const EVIL = 'http://evil.example';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
/** The session cookie (`sb_session=…`) of an admin signed in through the console's login. */
let cookie: string;
before(async () => {
  gw = await startTestGateway();
  const admin = await userToken(gw.publicUrl, 'admin');
  const login = await api(gw.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email: admin.email, password: PASSWORD }, headers: { origin: gw.publicUrl } });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  assert.match(cookie, /^sb_session=/);
});
after(async () => {
  await gw?.stop();
});

/** A raw request: `body` is sent as given with `type` as its Content-Type. */
async function send(method: string, path: string, headers: Record<string, string>, body?: { type: string; text: string }) {
  const res = await fetch(gw.publicUrl + path, { method, headers: { ...headers, ...(body ? { 'content-type': body.type } : {}) }, body: body?.text });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as { error?: { code: string; message: string } } & Record<string, unknown>) : null };
}

const userExists = (email: string): boolean => Boolean(gw.store.read(null).users.findOne({ email }));
const tokenCount = (): number => gw.store.read(null).api_tokens.find({}).length;

test('a cookie-only POST from another origin is refused (403 cross_site_request) and writes nothing', async () => {
  const tokensBefore = tokenCount();
  const cases: Array<[string, Record<string, string>]> = [
    ['foreign Origin', { origin: EVIL }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site (a sibling origin)', { 'sec-fetch-site': 'same-site', origin: 'http://other.127.0.0.1.nip.io' }],
    ['Origin: null (sandboxed frame)', { origin: 'null' }],
    ['no proof of origin at all', {}],
  ];
  for (const [name, headers] of cases) {
    const email = `evil-${Math.random().toString(36).slice(2, 8)}@example.com`;
    const r = await send('POST', '/v1/users', { cookie, ...headers }, { type: 'application/json', text: JSON.stringify({ email, role: 'admin', password: 'hijacked account pass' }) });
    assert.equal(r.status, 403, name);
    assert.equal(r.json?.error?.code, 'cross_site_request', name);
    assert.match(r.json?.error?.message ?? '', /Bearer/, `${name}: the message says what to do`);
    assert.equal(userExists(email), false, `${name}: no user was created`);
    const minted = await send('POST', '/v1/tokens', { cookie, ...headers }, { type: 'application/json', text: JSON.stringify({ name: 'stolen' }) });
    assert.equal(minted.status, 403, name);
  }
  const logout = await send('POST', '/v1/auth/logout', { cookie, origin: EVIL });
  assert.equal(logout.status, 403, 'a bodiless state change is checked too');
  assert.equal(tokenCount(), tokensBefore, 'no token was minted or revoked');
  assert.equal((await send('GET', '/v1/auth/me', { cookie, origin: EVIL })).status, 200, 'reads stay open (the cookie is SameSite=Strict)');
});

test('form and text bodies are refused with 415 on the API, cookie or bearer, and write nothing', async () => {
  const email = `form-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const form = { type: 'application/x-www-form-urlencoded', text: new URLSearchParams({ email, role: 'admin', password: 'hijacked account pass' }).toString() };
  const text = { type: 'text/plain', text: JSON.stringify({ email, role: 'admin', password: 'hijacked account pass' }) };
  const multipart = { type: 'multipart/form-data; boundary=x', text: `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--x--\r\n` };
  for (const body of [form, text, multipart]) {
    for (const auth of [{ cookie, origin: gw.publicUrl }, { authorization: `Bearer ${ADMIN_TOKEN}` }] as Array<Record<string, string>>) {
      const r = await send('POST', '/v1/users', auth, body);
      assert.equal(r.status, 415, `${body.type} with ${Object.keys(auth).join('+')}`);
      assert.equal(r.json?.error?.code, 'unsupported_media_type');
      assert.match(r.json?.error?.message ?? '', /application\/json/);
    }
  }
  const login = await send('POST', '/v1/auth/login', {}, { type: form.type, text: new URLSearchParams({ email, password: 'x' }).toString() });
  assert.equal(login.status, 415, 'sign-in takes JSON only');
  const foreignLogin = await send('POST', '/v1/auth/login', { origin: EVIL }, { type: 'application/json', text: JSON.stringify({ email, password: 'x' }) });
  assert.equal(foreignLogin.status, 403, 'a sign-in the browser marks as coming from another site is refused (login CSRF)');
  assert.equal(userExists(email), false);
});

test('same-origin console requests and bearer clients keep working; the deploy route still takes a JS bundle', async () => {
  const viaOrigin = `console-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const a = await send('POST', '/v1/users', { cookie, origin: gw.publicUrl }, { type: 'application/json; charset=utf-8', text: JSON.stringify({ email: viaOrigin, role: 'auditor', password: PASSWORD }) });
  assert.equal(a.status, 201, JSON.stringify(a.json));
  const viaFetchSite = `console-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const b = await send('POST', '/v1/users', { cookie, 'sec-fetch-site': 'same-origin' }, { type: 'application/json', text: JSON.stringify({ email: viaFetchSite, role: 'auditor', password: PASSWORD }) });
  assert.equal(b.status, 201, JSON.stringify(b.json));
  assert.ok(userExists(viaOrigin) && userExists(viaFetchSite));
  const viaBearer = `bearer-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const c = await send('POST', '/v1/users', { authorization: `Bearer ${ADMIN_TOKEN}`, origin: EVIL }, { type: 'application/json', text: JSON.stringify({ email: viaBearer, role: 'auditor', password: PASSWORD }) });
  assert.equal(c.status, 201, 'a bearer request is not subject to the origin check');
  const bundle = await send('POST', '/v1/agents/guarded/deploy', { authorization: `Bearer ${ADMIN_TOKEN}` }, { type: 'application/javascript', text: '   ' });
  assert.equal(bundle.status, 400, 'the bundle type passes the guard on its route');
  assert.match(bundle.json?.error?.message ?? '', /empty/);
  const notThere = await send('POST', '/v1/users', { authorization: `Bearer ${ADMIN_TOKEN}` }, { type: 'application/javascript', text: 'x' });
  assert.equal(notThere.status, 415, 'only on its route');
});

test('the Twilio webhooks (form-encoded, signed, no cookie) are not affected', async () => {
  const r = await sendWebhook({ url: `${gw.publicUrl}/twilio/status`, method: 'POST', params: { CallSid: `CA${'0'.repeat(31)}1`, CallStatus: 'completed', AccountSid: 'ACx' }, idempotency: 'cross-site-1', authToken: TWILIO_TOKEN });
  assert.ok('status' in r, JSON.stringify(r));
  assert.equal(r.status, 204, r.body);
});

// ── WS /v1/subscribe ──────────────────────────────────────────────────────────

type Msg = { type: string; id?: string; code?: string };

function open(headers: Record<string, string> = {}): Promise<{ ws: WebSocket; status: number; inbox: Msg[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`, { headers });
    const inbox: Msg[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (d) => inbox.push(JSON.parse(d.toString()) as Msg));
    ws.once('open', () => resolve({ ws, status: 101, inbox, closed }));
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve({ ws, status: res.statusCode ?? 0, inbox, closed });
    });
    ws.once('error', reject);
    ws.on('error', () => undefined);
  });
}

async function until(inbox: Msg[], pred: (m: Msg) => boolean): Promise<Msg> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = inbox.find(pred);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no matching message: ${JSON.stringify(inbox)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('WS: the token in the first message authenticates the socket; anything else first closes it (4401)', async (t) => {
  const good = await open();
  t.after(() => good.ws.close());
  assert.equal(good.status, 101);
  good.ws.send(JSON.stringify({ type: 'auth', token: ADMIN_TOKEN }));
  good.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls' }));
  assert.equal((await until(good.inbox, () => true)).type, 'authenticated');
  assert.equal((await until(good.inbox, (m) => m.id === 'c')).type, 'snapshot');
  good.ws.send(JSON.stringify({ type: 'auth', token: ADMIN_TOKEN }));
  assert.equal((await until(good.inbox, (m) => m.type === 'error')).code, 'invalid_message', 'auth only as the first message');

  const early = await open();
  early.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls' }));
  assert.equal(await early.closed, 4401);
  assert.deepEqual(early.inbox, [], 'nothing was served before auth');

  const forged = await open();
  forged.ws.send(JSON.stringify({ type: 'auth', token: 'sbk_not-a-real-token-at-all-000' }));
  assert.equal(await forged.closed, 4401);
});

test('WS: a cookie-authenticated upgrade from another origin is refused (403); from the console\'s origin it opens', async (t) => {
  for (const headers of [{ cookie, origin: EVIL }, { cookie }, { cookie, origin: 'null' }] as Array<Record<string, string>>) {
    const hijack = await open(headers);
    assert.equal(hijack.status, 403, JSON.stringify(headers));
  }
  const own = await open({ cookie, origin: gw.publicUrl });
  t.after(() => own.ws.close());
  assert.equal(own.status, 101);
  own.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls' }));
  assert.equal((await until(own.inbox, (m) => m.id === 'c')).type, 'snapshot');
  const bearer = await open({ authorization: `Bearer ${ADMIN_TOKEN}`, origin: EVIL });
  t.after(() => bearer.ws.close());
  assert.equal(bearer.status, 101, 'a bearer socket is not subject to the origin check');
});

test('behind an https public URL the cookie is Secure, and that origin is the one the cookie is accepted from', async (t) => {
  const publicUrl = 'https://switchboard.example';
  const own = await startTestGateway({ env: { SWITCHBOARD_PUBLIC_URL: publicUrl } });
  t.after(() => own.stop());
  const { email } = await userToken(own.publicUrl, 'admin');
  const login = await api(own.publicUrl, 'POST', '/v1/auth/login', { token: null, body: { email, password: PASSWORD } });
  const setCookie = login.headers.get('set-cookie') ?? '';
  for (const attribute of [/HttpOnly/i, /SameSite=Strict/i, /Secure/i, /Path=\//i]) assert.match(setCookie, attribute);
  const session = setCookie.split(';')[0] ?? '';
  const body = { type: 'application/json', text: JSON.stringify({ name: 'from the console' }) };
  const post = (origin: string) => fetch(`${own.publicUrl}/v1/tokens`, { method: 'POST', headers: { cookie: session, origin, 'content-type': body.type }, body: body.text });
  assert.equal((await post(publicUrl)).status, 201, 'the public origin');
  assert.equal((await post('https://switchboard.example.evil.example')).status, 403);
  const logout = await fetch(`${own.publicUrl}/v1/auth/logout`, { method: 'POST', headers: { cookie: session, origin: publicUrl } });
  assert.equal(logout.status, 200);
  assert.match(logout.headers.get('set-cookie') ?? '', /sb_session=;.*Secure/i, 'cleared with the attributes it was set with');
});
