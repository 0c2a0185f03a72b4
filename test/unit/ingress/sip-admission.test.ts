/**
 * Trunk admission pieces: CIDR allowlists, RFC 2617 digest (its worked example), HMAC nonces (expiry → stale,
 * surviving a restart, tampering), nc replay, no user enumeration, per-source token buckets, env validation.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { TrunkAdmission } from '../../../ingress/sip/admission.ts';
import { CidrList } from '../../../ingress/sip/cidr.ts';
import { DigestVerifier, NonceMint, digestResponse, ha1Of, md5, parseDigest } from '../../../ingress/sip/digest.ts';
import { parseMessage, type SipRequest } from '../../../ingress/sip/message.ts';
import { RateLimiter } from '../../../ingress/sip/rate-limit.ts';
import { loadConfig } from '../../../cli/config/index.ts';
import { loadNonceSecret, type TrunkConfig } from '../../../ingress/sip/trunk-config.ts';
import type { Peer } from '../../../ingress/sip/transport.ts';
import { validateRequest } from '../../../ingress/sip/validate.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const quiet = pino({ level: 'silent' });

test('CIDR allowlist: IPv4, IPv6, bare addresses, IPv4-mapped sources, garbage refused', () => {
  const l = CidrList.parse('127.0.0.1/32, 10.0.0.0/8 2001:db8::/32,::1,192.0.2.1');
  for (const a of ['127.0.0.1', '10.255.0.1', '2001:db8::5', '2001:db8:ffff::1', '::1', '192.0.2.1', '::ffff:10.9.9.9', '::FFFF:127.0.0.1']) assert.ok(l.has(a), a);
  for (const a of ['127.0.0.2', '11.0.0.0', '2001:db9::1', '::2', '192.0.2.2', 'example.com', '']) assert.ok(!l.has(a), a);
  assert.ok(CidrList.parse('0.0.0.0/0').has('203.0.113.9'));
  assert.ok(!CidrList.parse('0.0.0.0/0').has('2001:db8::1'), 'an IPv4 block does not admit IPv6');
  assert.ok(CidrList.parse('10.1.2.3/8').has('10.200.0.1'), 'host bits in the block are masked');
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', 'x', '10.0.0.0/', '1.2.3.4/-1', '']) assert.throws(() => CidrList.parse(bad), /CIDR/, bad);
});

test("digest: RFC 2617 §3.5's worked example", () => {
  const ha1 = ha1Of('Mufasa', 'testrealm@host.com', 'Circle Of Life');
  const r = digestResponse({ ha1, method: 'GET', uri: '/dir/index.html', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', qop: 'auth', nc: '00000001', cnonce: '0a4f113b' });
  assert.equal(r, '6629fae49393a05397450978507c4ef1');
  const h = parseDigest(
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
  );
  assert.equal(h?.username, 'Mufasa');
  assert.equal(h?.nc, '00000001');
  assert.equal(h?.response, r);
  assert.equal(parseDigest('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='), null);
  assert.equal(parseDigest('Digest username="a", username="b"'), null, 'repeated directive');
  assert.equal(parseDigest('Digest realm="a\\"b"')?.realm, 'a"b');
});

test('nonces: verify, expire to stale after the TTL, survive a restart (same key), reject tampering and other keys', () => {
  const key = crypto.randomBytes(32);
  const mint = new NonceMint(key, 300_000);
  const t0 = 1_700_000_000_000;
  const n = mint.issue(t0);
  assert.equal(mint.check(n, t0 + 1000), 'ok');
  assert.equal(mint.check(n, t0 + 300_000), 'ok');
  assert.equal(mint.check(n, t0 + 300_001), 'stale');
  assert.equal(new NonceMint(key).check(n, t0 + 5000), 'ok', 'a restarted node with the same key');
  assert.equal(new NonceMint(crypto.randomBytes(32)).check(n, t0 + 5000), 'invalid');
  const raw = Buffer.from(n, 'base64url');
  raw[3] = (raw[3] as number) ^ 1; // move the issue time
  assert.equal(mint.check(raw.toString('base64url'), t0 + 1000), 'invalid');
  assert.equal(mint.check(mint.issue(t0 + 120_000), t0), 'invalid', 'issued in the future');
  assert.equal(mint.check('dcd98b7102dd2f0e8b11d0f600bfb0c093', t0), 'invalid');
  const dir = tmpDir('sb-sip-key-');
  const k1 = loadNonceSecret(dir);
  assert.deepEqual(loadNonceSecret(dir), k1, 'the key on disk is reused');
  assert.equal(fs.statSync(path.join(dir, 'sip-nonce.key')).mode & 0o777, 0o600);
});

function authorization(p: { user: string; pass: string; realm: string; nonce: string; method?: string; uri?: string; nc?: string; cnonce?: string }): string {
  const method = p.method ?? 'INVITE';
  const uri = p.uri ?? 'sip:15550001111@127.0.0.1';
  const nc = p.nc ?? '00000001';
  const cnonce = p.cnonce ?? 'abcdef01';
  const response = digestResponse({ ha1: ha1Of(p.user, p.realm, p.pass), method, uri, nonce: p.nonce, qop: 'auth', nc, cnonce });
  return `Digest username="${p.user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", response="${response}", algorithm=MD5, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

test('digest verifier: good credentials; nc replay refused, a higher nc accepted; stale only for a right password', () => {
  const realm = 'sb.example';
  const v = new DigestVerifier(realm, new Map([['trunk', ha1Of('trunk', realm, 's3cret')]]), new NonceMint(crypto.randomBytes(32), 300_000));
  const t0 = 1_700_000_000_000;
  const nonce = v.nonces.issue(t0);
  const req = (auth: string) => ({ method: 'INVITE', uri: 'sip:15550001111@127.0.0.1', authorizations: [auth] });
  assert.deepEqual(v.verify(req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce })), t0 + 10), { ok: true, username: 'trunk' });
  assert.equal(v.verify(req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce })), t0 + 20).ok, false, 'the same nc again: a replay');
  assert.equal(v.verify(req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce, nc: '00000002' })), t0 + 30).ok, true);
  assert.equal(v.verify(req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce, nc: '00000001', cnonce: 'other' })), t0 + 40).ok, false, 'a lower nc');
  // A wrong password or an unknown user is refused the same way, whether the nonce is fresh or stale.
  for (const at of [t0 + 50, t0 + 400_000]) {
    const wrong = v.verify(req(authorization({ user: 'trunk', pass: 'nope', realm, nonce, nc: '00000009' })), at);
    const unknown = v.verify(req(authorization({ user: 'ghost', pass: 's3cret', realm, nonce, nc: '00000009' })), at);
    assert.deepEqual(wrong, { ok: false, stale: false, detail: 'bad credentials' });
    assert.deepEqual(unknown, wrong);
  }
  assert.deepEqual(v.verify(req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce, nc: '0000000a' })), t0 + 400_000), { ok: false, stale: true, detail: 'nonce expired' });
  // The digest must be over what the header says: another method or a changed uri does not verify.
  const other = authorization({ user: 'trunk', pass: 's3cret', realm, nonce: v.nonces.issue(t0) }).replace('uri="sip:15550001111@', 'uri="sip:15550002222@');
  assert.equal(v.verify(req(other), t0 + 10).ok, false);
  const sippStyle = authorization({ user: 'trunk', pass: 's3cret', realm, nonce: v.nonces.issue(t0), uri: 'sip:127.0.0.1:5060' });
  assert.equal(v.verify(req(sippStyle), t0 + 10).ok, true, "sipp's uri (host:port of the Request-URI) is accepted");
  const notSip = authorization({ user: 'trunk', pass: 's3cret', realm, nonce: v.nonces.issue(t0), uri: '/dir/index.html' });
  assert.equal(v.verify(req(notSip), t0 + 10).ok, false);
  assert.equal(v.verify({ ...req(authorization({ user: 'trunk', pass: 's3cret', realm, nonce: v.nonces.issue(t0) })), method: 'OPTIONS' }, t0 + 10).ok, false);
  assert.equal(v.verify({ ...req(''), authorizations: [] }, t0).ok, false);
  const ch = v.challenge(true);
  assert.match(ch, /^Digest realm="sb\.example", nonce="[A-Za-z0-9_-]{43}", algorithm=MD5, qop="auth", stale=true$/);
  assert.equal(v.nonces.check(parseDigest(ch)!.nonce!), 'ok');
});

test('rate limiter: a burst, then one 503 a second and silence; refills; sources are independent', () => {
  const rl = new RateLimiter(10, 5);
  const t0 = 1_000_000;
  const a = Array.from({ length: 8 }, () => rl.take('192.0.2.1', t0));
  assert.deepEqual(a, ['ok', 'ok', 'ok', 'ok', 'ok', 'refuse', 'drop', 'drop']);
  assert.equal(rl.take('192.0.2.2', t0), 'ok', 'another source is unaffected');
  assert.equal(rl.take('192.0.2.1', t0 + 100), 'ok', '100 ms refill one token at 10/s');
  assert.equal(rl.take('192.0.2.1', t0 + 100), 'drop');
  assert.equal(rl.take('192.0.2.1', t0 + 1100), 'ok');
  assert.equal(rl.take('192.0.2.1', t0 + 1100), 'ok');
  rl.take('192.0.2.1', t0 + 60_000);
  assert.equal(rl.sources, 1, 'idle full buckets are swept');
});

/** Trunk settings as the SIP ingress gets them: the sip section of the configuration, bound to `d.host`. */
function trunkConfigFromEnv(env: NodeJS.ProcessEnv, d: { host: string; advertise?: string }): TrunkConfig {
  return loadConfig({ ...env, SWITCHBOARD_HOST: d.host, ...(d.advertise ? { SWITCHBOARD_SIP_ADVERTISE: d.advertise } : {}) }).sip.trunk;
}

test('trunk settings from the environment: defaults, and a bad value names its variable', () => {
  const d = trunkConfigFromEnv({}, { host: '127.0.0.1' });
  assert.deepEqual({ allow: d.allow, users: d.users, realm: d.realm, rate: d.rate }, { allow: null, users: null, realm: '127.0.0.1', rate: { rate: 50, burst: 100 } });
  assert.equal(trunkConfigFromEnv({}, { host: '0.0.0.0', advertise: 'sip.example.com' }).realm, 'sip.example.com');
  assert.equal(trunkConfigFromEnv({ SWITCHBOARD_SIP_RATE: 'off' }, { host: 'h' }).rate, null);
  assert.deepEqual(trunkConfigFromEnv({ SWITCHBOARD_SIP_RATE: '5' }, { host: 'h' }).rate, { rate: 5, burst: 10 });
  assert.deepEqual(trunkConfigFromEnv({ SWITCHBOARD_SIP_RATE: '20, 40' }, { host: 'h' }).rate, { rate: 20, burst: 40 });
  const dir = tmpDir('sb-sip-users-');
  const file = path.join(dir, 'users.json');
  fs.writeFileSync(file, JSON.stringify({ trunk: 's3cret', pbx: { ha1: md5('pbx:r:pw').toUpperCase() } }));
  const c = trunkConfigFromEnv({ SWITCHBOARD_SIP_USERS: file, SWITCHBOARD_SIP_REALM: 'r' }, { host: 'h' });
  assert.equal(c.users?.get('trunk'), ha1Of('trunk', 'r', 's3cret'));
  assert.equal(c.users?.get('pbx'), md5('pbx:r:pw'));
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ SWITCHBOARD_SIP_ALLOW: '10.0.0.0/8,nope' }, /SWITCHBOARD_SIP_ALLOW: .*nope/],
    [{ SWITCHBOARD_SIP_USERS: path.join(dir, 'missing.json') }, /SWITCHBOARD_SIP_USERS: cannot read/],
    [{ SWITCHBOARD_SIP_RATE: 'fast' }, /SWITCHBOARD_SIP_RATE: /],
    [{ SWITCHBOARD_SIP_RATE: '0' }, /SWITCHBOARD_SIP_RATE: /],
    [{ SWITCHBOARD_SIP_REALM: 'a"b' }, /SWITCHBOARD_SIP_REALM: /],
  ];
  fs.writeFileSync(path.join(dir, 'empty.json'), '{}');
  fs.writeFileSync(path.join(dir, 'badha1.json'), '{"u":{"ha1":"xyz"}}');
  bad.push([{ SWITCHBOARD_SIP_USERS: path.join(dir, 'empty.json') }, /SWITCHBOARD_SIP_USERS: .*no users/]);
  bad.push([{ SWITCHBOARD_SIP_USERS: path.join(dir, 'badha1.json') }, /SWITCHBOARD_SIP_USERS: .*ha1/]);
  for (const [env, re] of bad) assert.throws(() => trunkConfigFromEnv(env, { host: 'h' }), re, JSON.stringify(env));
});

function request(text: string): ReturnType<typeof validateRequest> & { ok: true } {
  const m = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n')));
  assert.ok(m.ok && m.message.kind === 'request');
  const v = validateRequest(m.message as SipRequest, 'udp');
  assert.ok(v.ok);
  return v;
}

test('admission: 403 outside the allowlist; 401 challenge out of dialog; CANCEL, ACK and in-dialog requests are not challenged', () => {
  const realm = 'r';
  const adm = new TrunkAdmission({ allow: CidrList.parse('192.0.2.0/24'), users: new Map([['trunk', ha1Of('trunk', realm, 'pw')]]), realm, rate: null }, crypto.randomBytes(32), quiet);
  const peer = (address: string): Peer => ({ transport: 'udp', address, port: 5060 });
  const msg = (method: string, toTag = '', extra = '') =>
    request(`${method} sip:1555@192.0.2.100 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nFrom: <sip:a@x>;tag=1\nTo: <sip:1555@x>${toTag}\nCall-ID: c1\nCSeq: 1 ${method}\n${extra}Content-Length: 0\n\n`).value;
  assert.equal(adm.admit(msg('INVITE'), peer('198.51.100.1'))?.status, 403);
  assert.equal(adm.admit(msg('BYE', ';tag=x'), peer('198.51.100.1'))?.status, 403, 'the allowlist applies in dialog too');
  const ch = adm.admit(msg('INVITE'), peer('192.0.2.1'));
  assert.equal(ch?.status, 401);
  const nonce = parseDigest(ch?.headers?.find(([k]) => k === 'WWW-Authenticate')?.[1] ?? '')?.nonce ?? '';
  assert.equal(adm.admit(msg('OPTIONS'), peer('192.0.2.1'))?.status, 401);
  assert.equal(adm.admit(msg('CANCEL'), peer('192.0.2.1')), null);
  assert.equal(adm.admit(msg('BYE', ';tag=x'), peer('192.0.2.1')), null);
  assert.equal(adm.admit(msg('INVITE', ';tag=x'), peer('::ffff:192.0.2.1')), null, 're-INVITE');
  const auth = authorization({ user: 'trunk', pass: 'pw', realm, nonce, uri: 'sip:1555@192.0.2.100' });
  assert.equal(adm.admit(msg('INVITE', '', `Authorization: ${auth}\n`), peer('192.0.2.1')), null);
});

test('admission: requests of a live dialog are never rate-limited (a refused BYE keeps a call up); a forged To tag is counted like any new request', () => {
  const adm = new TrunkAdmission({ allow: null, users: null, realm: 'r', rate: { rate: 1, burst: 2 } }, crypto.randomBytes(32), quiet);
  const peer: Peer = { transport: 'udp', address: '192.0.2.7', port: 5060 };
  const msg = (method: string, toTag = '') =>
    request(`${method} sip:1555@192.0.2.100 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK${method}${toTag}\nFrom: <sip:a@x>;tag=1\nTo: <sip:1555@x>${toTag}\nCall-ID: c1\nCSeq: 1 ${method}\nContent-Length: 0\n\n`).value;
  const t = 1_000_000;
  assert.equal(adm.admit(msg('INVITE'), peer, {}, t), null);
  assert.equal(adm.admit(msg('INVITE'), peer, {}, t), null);
  assert.equal(adm.admit(msg('INVITE'), peer, {}, t)?.status, 503, 'the burst of 2 is spent');
  // The live call's BYE and re-INVITE still pass, however many, and spend nothing.
  for (let i = 0; i < 20; i++) assert.equal(adm.admit(msg(i % 2 ? 'BYE' : 'INVITE', ';tag=live'), peer, { inDialog: true }, t), null);
  // A To tag that matches no dialog is limited (dropped: the one 503 of this second was sent).
  assert.equal(adm.admit(msg('BYE', ';tag=forged'), peer, { inDialog: false }, t)?.status, 0);
  assert.equal(adm.admit(msg('INVITE'), peer, {}, t + 1000), null, 'refilled after a second');
});
