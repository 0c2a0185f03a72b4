/**
 * Media stream tokens (ingress/stream-tokens.ts): stateless, so a token issued on one node is accepted on
 * another that has the same master key; one use on every node (the nonce claim, shared here as the log would
 * share it); void once the call's media epoch moved on; the issuing node answers a retry with the same token
 * and revokes an unused one when it issues a newer.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { PENDING_MS, StreamTokens, type StreamTokenDeps } from '../../../ingress/stream-tokens.ts';
import type { NonceVerdict } from '../../../ingress/webhook-nonces.ts';

const KEY = crypto.randomBytes(32);

/** What the log gives every node: one claim table and one calls table. */
function cluster() {
  const claimed = new Set<string>();
  const calls = new Map<string, { media_epoch: number; state: string }>([['call_1', { media_epoch: 0, state: 'answered' }]]);
  let down = false;
  const nonces = {
    claim: async (nonce: string): Promise<NonceVerdict> => {
      if (down) return { ok: false, status: 503, reason: 'replay protection unavailable: no quorum' };
      if (claimed.has(nonce)) return { ok: false, status: 403, reason: 'replayed' };
      claimed.add(nonce);
      return { ok: true };
    },
  };
  const clock = { t: 1_000_000 };
  const node = (over: Partial<StreamTokenDeps> = {}) => new StreamTokens({ masterKey: KEY, nonces, call: (id) => calls.get(id), now: () => clock.t, ...over });
  return { node, calls, clock, setDown: (v: boolean) => (down = v) };
}

const GRANT = { tenant: 'default', callId: 'call_1', providerCallId: 'CA00' };

test('a token issued on one node is accepted once, on another node', async () => {
  const c = cluster();
  const a = c.node();
  const b = c.node();
  const token = a.issue(GRANT);
  const first = await b.consume(token);
  assert.deepEqual(first, { ok: true, grant: { ...GRANT, expiresAt: 1_060_000 } });
  const again = await a.consume(token);
  assert.equal(again.ok, false, 'used on B: refused on A too');
  assert.equal(again.ok === false && again.reason, 'token already used');
});

test('forged, foreign-keyed, tampered or expired tokens are refused before anything is claimed', async () => {
  const c = cluster();
  let claims = 0;
  const a = c.node({ nonces: { claim: async () => (claims++, { ok: true }) } });
  const foreign = c.node({ masterKey: crypto.randomBytes(32) }).issue(GRANT);
  assert.equal((await a.consume(foreign)).ok, false, 'another cluster’s key');
  const t = a.issue(GRANT);
  const [body, sig] = t.slice(4).split('.') as [string, string];
  const other = { ...JSON.parse(Buffer.from(body, 'base64url').toString()), c: 'call_2' };
  assert.equal((await a.consume(`sbm_${Buffer.from(JSON.stringify(other)).toString('base64url')}.${sig}`)).ok, false, 'another call under the same signature');
  assert.equal((await a.consume(`${t}.x`)).ok, false);
  assert.equal((await a.consume(undefined)).ok, false);
  c.clock.t += 60_001;
  assert.equal((await a.consume(t)).ok, false, 'expired');
  assert.equal(claims, 0, 'nothing reached the log');
});

test('a retry within PENDING_MS gets the same token; a later one revokes the unused one on the issuing node', async () => {
  const c = cluster();
  const a = c.node();
  const t1 = a.issue(GRANT);
  c.clock.t += PENDING_MS - 1;
  assert.equal(a.issue(GRANT), t1, 'the retry of the same webhook');
  c.clock.t += 2;
  const t2 = a.issue(GRANT);
  assert.notEqual(t2, t1);
  const stale = await a.consume(t1);
  assert.equal(stale.ok === false && stale.reason, 'token superseded by a newer one for the call');
  assert.equal((await a.consume(t2)).ok, true);
});

test('once a connection was accepted (the epoch moved on), every token issued before is void on every node', async () => {
  const c = cluster();
  const a = c.node();
  const b = c.node();
  const fromA = a.issue(GRANT);
  const fromB = b.issue(GRANT); // the webhook's retry answered by another node: two tokens exist
  assert.equal((await a.consume(fromA)).ok, true);
  c.calls.set('call_1', { media_epoch: 1, state: 'active' }); // call_media_connected
  const late = await a.consume(fromB);
  assert.equal(late.ok, false);
  assert.match(late.ok === false ? late.reason : '', /moved on .*epoch 0, now 1/);
  // A resume's token, issued after, is valid.
  assert.equal((await b.consume(b.issue(GRANT))).ok, true);
  c.calls.set('call_1', { media_epoch: 1, state: 'ended' });
  const ended = await a.consume(a.issue(GRANT));
  assert.equal(ended.ok === false && ended.reason, 'the call is not live');
});

test('a store that cannot claim the nonce refuses the token as unavailable (the provider retries)', async () => {
  const c = cluster();
  const a = c.node();
  c.setDown(true);
  const v = await a.consume(a.issue(GRANT));
  assert.equal(v.ok, false);
  assert.equal(v.ok === false && v.unavailable, true);
});
