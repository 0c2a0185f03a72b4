/**
 * The one signed-token format (ingress/signed-token.ts) behind the media stream and WebRTC session tokens: what
 * verifies and what does not — a token of another key, of another use (HKDF info) or another prefix, a changed
 * body or signature, an expired or malformed one.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { z } from 'zod';
import { SignedTokens } from '../../../ingress/signed-token.ts';

const Claims = z.object({ v: z.literal(1), who: z.string().min(1), e: z.number().int().positive() });
const key = crypto.randomBytes(32);
let now = 1_000_000;
const clock = () => now;
const tokens = new SignedTokens(key, 'test-token/v1', 'sbt_', Claims, clock);

test('a token verifies to its claims until it expires, on any instance with the same key and use', () => {
  const t = tokens.sign({ v: 1, who: 'alice', e: now + 60_000 });
  assert.match(t, /^sbt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.deepEqual(tokens.verify(t), { v: 1, who: 'alice', e: now + 60_000 });
  assert.deepEqual(new SignedTokens(Buffer.from(key), 'test-token/v1', 'sbt_', Claims, clock).verify(t)?.who, 'alice', 'another node with the same master key');
  now += 60_001;
  assert.equal(tokens.verify(t), null, 'expired');
});

test('refused: another key, another use, another prefix, a changed body or signature, junk', () => {
  const t = tokens.sign({ v: 1, who: 'bob', e: now + 60_000 });
  assert.equal(new SignedTokens(crypto.randomBytes(32), 'test-token/v1', 'sbt_', Claims, clock).verify(t), null);
  assert.equal(new SignedTokens(key, 'other-use/v1', 'sbt_', Claims, clock).verify(t), null, 'each use has its own derived key');
  assert.equal(new SignedTokens(key, 'test-token/v1', 'sbx_', Claims, clock).verify(t), null);
  const [body, sig] = t.slice(4).split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify({ v: 1, who: 'mallory', e: now + 60_000 })).toString('base64url');
  assert.equal(tokens.verify(`sbt_${forged}.${sig}`), null);
  assert.equal(tokens.verify(`sbt_${body}.${sig.slice(0, -2)}AA`), null);
  assert.equal(tokens.verify(`sbt_${body}.${sig}.x`), null);
  for (const junk of [undefined, null, '', 'sbt_', 'sbt_.', `sbt_${'a'.repeat(3000)}.b`]) assert.equal(tokens.verify(junk), null, String(junk));
});

test('genuine but not the schema (a claims shape from an older release): refused', () => {
  const loose = new SignedTokens(key, 'test-token/v1', 'sbt_', z.object({ e: z.number() }), clock);
  assert.equal(tokens.verify(loose.sign({ e: now + 60_000 })), null);
  assert.throws(() => tokens.sign({ v: 1, who: '', e: now } as never), 'sign refuses claims its own schema would refuse');
});
