/**
 * Vonage signed-webhook verification: HS256 pinned, signature, iat age,
 * payload_hash against the raw body, jti replay, fail-closed policy.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import jsonwebtoken from 'jsonwebtoken';
import { bearerToken, loadJsonwebtoken, MAX_AGE_S, ReplayCache, verifyVonageRequest, type JwtPolicy } from '../../../ingress/vonage/jwt.ts';

// The library is imported on first use (the adapter awaits it before its first check): load it once here.
await loadJsonwebtoken();

const SECRET = 'unit-test-signature-secret-0123456789';
const policy: JwtPolicy = { secret: SECRET, allowUnsigned: false };
const body = Buffer.from(JSON.stringify({ to: '15550001111', from: '15550002222', uuid: randomUUID(), conversation_uuid: `CON-${randomUUID()}` }));
const hash = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const now = Date.now();
const iat = Math.floor(now / 1000);

function sign(claims: Record<string, unknown>, opts: jsonwebtoken.SignOptions = { algorithm: 'HS256' }, key: jsonwebtoken.Secret = SECRET): string {
  return jsonwebtoken.sign({ iat, jti: randomUUID(), iss: 'Vonage', payload_hash: hash(body), ...claims }, key, opts);
}
const verify = (auth: string | undefined, b: Uint8Array | null = body, replay = new ReplayCache(), p = policy) => verifyVonageRequest(p, auth, b, replay, now);

test('a Vonage-signed request passes and yields its claims', () => {
  const r = verify(`Bearer ${sign({})}`);
  assert.ok(r.ok && !r.bypassed, JSON.stringify(r));
  assert.equal(r.claims.iss, 'Vonage');
  // GET / WebSocket handshake: no body, no payload_hash.
  const get = verify(`Bearer ${sign({ payload_hash: undefined })}`, null);
  assert.ok(get.ok, JSON.stringify(get));
});

test('signature, algorithm and claims are enforced (every refusal is a 403)', () => {
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iat, jti: 'a', payload_hash: hash(body) })).toString('base64url')}.`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['missing header', undefined, /missing/],
    ['not a bearer', `Basic ${Buffer.from('a:b').toString('base64')}`, /missing or malformed/],
    ['wrong secret', `Bearer ${sign({}, { algorithm: 'HS256' }, 'another-secret')}`, /invalid signature/],
    ['alg none', `Bearer ${none}`, /JWT refused/],
    ['HS512 (not pinned)', `Bearer ${sign({}, { algorithm: 'HS512' })}`, /invalid algorithm/],
    ['RS256', `Bearer ${sign({}, { algorithm: 'RS256' }, privateKey.export({ type: 'pkcs8', format: 'pem' }))}`, /invalid algorithm/],
    ['too old', `Bearer ${sign({ iat: iat - MAX_AGE_S - 120 })}`, /maxAge exceeded/],
    ['from the future', `Bearer ${sign({ iat: iat + 3600 })}`, /future|not active/],
    ['expired', `Bearer ${sign({ exp: iat - 120 })}`, /expired/],
    ['no jti', `Bearer ${sign({ jti: undefined })}`, /no jti/],
    ['no iat', `Bearer ${jsonwebtoken.sign({ jti: 'x', payload_hash: hash(body) }, SECRET, { algorithm: 'HS256', noTimestamp: true })}`, /iat/],
    ['no payload_hash with a body', `Bearer ${sign({ payload_hash: undefined })}`, /no payload_hash/],
    ['payload_hash of another body', `Bearer ${sign({ payload_hash: hash('{"to":"1"}') })}`, /does not match/],
  ];
  void publicKey;
  for (const [what, auth, re] of cases) {
    const r = verify(auth);
    assert.ok(!r.ok, `${what} must be refused`);
    assert.equal(r.status, 403, what);
    assert.match(r.reason, re, `${what}: ${r.reason}`);
  }
});

test('a replayed jti is refused; the cache forgets it only once the token is too old anyway', () => {
  let t = now;
  const replay = new ReplayCache(100_000, () => t);
  const token = `Bearer ${sign({})}`;
  assert.ok(verifyVonageRequest(policy, token, body, replay, t).ok);
  const again = verifyVonageRequest(policy, token, body, replay, t);
  assert.ok(!again.ok && /replayed/.test(again.reason));
  t += (MAX_AGE_S + 60) * 1000;
  const late = verifyVonageRequest(policy, token, body, replay, t);
  assert.ok(!late.ok && /maxAge/.test(late.reason), 'past the age limit the signature check refuses it');
});

test('a full replay cache refuses rather than forgets live entries', () => {
  const replay = new ReplayCache(2, () => now);
  assert.equal(replay.claim('a', now + 1000), true);
  assert.equal(replay.claim('b', now + 1000), true);
  assert.equal(replay.claim('c', now + 1000), false);
  assert.equal(replay.claim('a', now + 1000), false);
});

test('fail closed without a secret; development may bypass', () => {
  const prod = verifyVonageRequest({ secret: undefined, allowUnsigned: false }, `Bearer ${sign({})}`, body, new ReplayCache());
  assert.ok(!prod.ok && prod.status === 403 && /not configured/.test(prod.reason));
  const dev = verifyVonageRequest({ secret: undefined, allowUnsigned: true }, undefined, body, new ReplayCache());
  assert.deepEqual(dev, { ok: true, bypassed: true });
  // With a secret, development checks signatures like production.
  assert.ok(!verifyVonageRequest({ secret: SECRET, allowUnsigned: true }, undefined, body, new ReplayCache()).ok);
});

test('bearerToken extracts only a compact JWT', () => {
  assert.equal(bearerToken('Bearer a.b.c'), 'a.b.c');
  assert.equal(bearerToken('bearer   a.b.c '), 'a.b.c');
  assert.equal(bearerToken('Bearer a.b'), null);
  assert.equal(bearerToken(['Bearer a.b.c']), null);
  assert.equal(bearerToken(undefined), null);
});
