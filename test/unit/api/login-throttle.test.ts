/**
 * The sign-in throttle on a hand-moved clock: the delay doubles per failure up
 * to the cap and is forgotten after an idle hour; a success clears the
 * account but not the address; the account's backoff spares the addresses it
 * signed in from (for 30 days) and applies to unknown e-mails like known ones;
 * the maps stay bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, LOGIN_BACKOFF, LoginThrottle } from '../../../api/auth/login-throttle.ts';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('the delay doubles per failure after the free ones, up to the cap; an idle key is forgotten', () => {
  const c = clock();
  const b = new Backoff(LOGIN_BACKOFF, c.now);
  for (let i = 0; i < LOGIN_BACKOFF.free; i++) {
    assert.equal(b.waitFor('k'), 0);
    b.fail('k');
  }
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    waits.push(b.waitFor('k'));
    c.advance(waits.at(-1)!);
    assert.equal(b.waitFor('k'), 0, 'after waiting, one more try is allowed');
    b.fail('k');
  }
  assert.deepEqual(waits, [30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000]);
  c.advance(LOGIN_BACKOFF.forgetMs + 1);
  assert.equal(b.waitFor('k'), 0);
  b.fail('k');
  assert.equal(b.waitFor('k'), 0, 'forgotten: the free failures start again');
});

test('a success takes back its own charge and clears the account, not the address', () => {
  const c = clock();
  const t = new LoginThrottle(c.now);
  for (let i = 0; i < 4; i++) assert.equal(t.admit('10.0.0.1', `user${i}@x.co`), 0);
  assert.equal(t.admit('10.0.0.1', 'mine@x.co'), 0);
  t.succeeded('10.0.0.1', 'mine@x.co');
  assert.equal(t.admit('10.0.0.1', 'another@x.co'), 0, 'the success did not count as a failure');
  assert.ok(t.admit('10.0.0.1', 'mine@x.co') > 0, 'but did not launder the address\'s four earlier failures');
});

test('the account backoff spares an address it signed in from, for 30 days; unknown and known e-mails alike', () => {
  const c = clock();
  const t = new LoginThrottle(c.now);
  assert.equal(t.admit('192.0.2.1', 'owner@x.co'), 0);
  t.succeeded('192.0.2.1', 'owner@x.co');
  for (const account of ['owner@x.co', 'nobody@x.co']) {
    for (let i = 0; i < LOGIN_BACKOFF.free; i++) assert.equal(t.admit(`198.51.100.${i}`, account), 0);
    assert.ok(t.admit('203.0.113.9', account) > 0, `${account}: a new address waits`);
  }
  assert.equal(t.admit('192.0.2.1', 'owner@x.co'), 0, 'the owner\'s address is let through');
  c.advance(31 * 86_400_000);
  for (let i = 0; i < LOGIN_BACKOFF.free; i++) assert.equal(t.admit(`198.51.100.${i + 10}`, 'owner@x.co'), 0);
  assert.ok(t.admit('192.0.2.1', 'owner@x.co') > 0, 'trust expires');
});

test('bounded: past maxKeys the oldest key is forgotten', () => {
  const c = clock();
  const b = new Backoff(LOGIN_BACKOFF, c.now, 3);
  for (let i = 0; i < LOGIN_BACKOFF.free; i++) b.fail('old');
  assert.ok(b.waitFor('old') > 0);
  for (const k of ['a', 'b', 'c']) b.fail(k);
  assert.equal(b.waitFor('old'), 0);
});
