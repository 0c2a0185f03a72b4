/**
 * Digest password guessing at the admission layer (virtual time): a dictionary attack from 20 source addresses
 * never gets its right guess believed once the budgets are spent; the throttled answer is the same 401 as a wrong
 * password, and an attack on an unknown user name draws exactly the same answers as one on a real user; the
 * legitimate trunk (a source that has not been failing, or one that authenticated before) still gets in; the
 * global budget caps checked guesses across sources; everything recovers once the attack stops.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import pino from 'pino';
import { TrunkAdmission, type Admission } from '../../../ingress/sip/admission.ts';
import { digestResponse, ha1Of, parseDigest } from '../../../ingress/sip/digest.ts';
import { parseMessage, type SipRequest } from '../../../ingress/sip/message.ts';
import type { Peer } from '../../../ingress/sip/transport.ts';
import { validateRequest } from '../../../ingress/sip/validate.ts';

const quiet = pino({ level: 'silent' });
const REALM = 'guess.example';
const RIGHT = 'correct-horse-battery';
const URI = 'sip:1555@192.0.2.100';

function admission(): TrunkAdmission {
  return new TrunkAdmission({ allow: null, users: new Map([['trunk', ha1Of('trunk', REALM, RIGHT)]]), realm: REALM, rate: null }, crypto.randomBytes(32), quiet);
}

const peer = (address: string): Peer => ({ transport: 'udp', address, port: 5060 });

let seq = 0;
function invite(authorization?: string) {
  seq++;
  const text =
    `INVITE ${URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK${seq}\r\nFrom: <sip:a@x>;tag=f${seq}\r\nTo: <sip:1555@x>\r\n` +
    `Call-ID: c${seq}\r\nCSeq: 1 INVITE\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}Content-Length: 0\r\n\r\n`;
  const m = parseMessage(Buffer.from(text));
  assert.ok(m.ok && m.message.kind === 'request');
  const v = validateRequest(m.message as SipRequest, 'udp');
  assert.ok(v.ok);
  return v.value;
}

function authorization(user: string, pass: string, nonce: string, nc: number): string {
  const ncHex = nc.toString(16).padStart(8, '0');
  const response = digestResponse({ ha1: ha1Of(user, REALM, pass), method: 'INVITE', uri: URI, nonce, qop: 'auth', nc: ncHex, cnonce: 'c0ffee' });
  return `Digest username="${user}", realm="${REALM}", nonce="${nonce}", uri="${URI}", response="${response}", algorithm=MD5, cnonce="c0ffee", qop=auth, nc=${ncHex}`;
}

/** A fresh challenge's nonce, as a UAC gets it (a request without credentials is not a guess). */
function nonceFrom(adm: TrunkAdmission, source: string, now: number): string {
  const r = adm.admit(invite(), peer(source), {}, now);
  assert.equal(r?.status, 401);
  return parseDigest(r.headers?.find(([k]) => k === 'WWW-Authenticate')?.[1] ?? '')?.nonce ?? '';
}

/** What a client sees of a refusal: everything but the nonce. */
const shape = (r: Admission) => (r === null ? 'ADMITTED' : JSON.stringify({ ...r, detail: undefined, headers: r.headers?.map(([k, v]) => [k, v.replace(/nonce="[^"]*"/, 'nonce="N"')]) }));

const SOURCES = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);
const DICTIONARY = Array.from({ length: 400 }, (_, i) => (i === 300 ? RIGHT : `guess-${i}`));

/** The attack: the dictionary round-robin over 20 sources, one guess every 5 ms. Returns what each guess got. */
function attack(adm: TrunkAdmission, user: string, t0: number): Admission[] {
  const nonce = nonceFrom(adm, SOURCES[0]!, t0);
  return DICTIONARY.map((word, i) => adm.admit(invite(authorization(user, word, nonce, i + 1)), peer(SOURCES[i % SOURCES.length]!), {}, t0 + 5 * i));
}

test('a dictionary attack from 20 sources never gets its right guess believed; its answers are the 401 of a wrong password', () => {
  const adm = admission();
  const t0 = Date.now();
  const got = attack(adm, 'trunk', t0);
  assert.equal(got.filter((r) => r === null).length, 0, `the right password (guess 301 of 400) was accepted`);
  const wrong = shape(got[0]!);
  assert.ok(got.every((r) => shape(r) === wrong), 'every answer, checked or not, is the same 401');
  assert.doesNotMatch(wrong, /stale|Retry-After/i);
  // After the attack, the right password from any of the attacking sources is still refused (not checked).
  const nonce = nonceFrom(adm, SOURCES[3]!, t0 + 2100);
  for (const [i, s] of SOURCES.entries()) assert.equal(shape(adm.admit(invite(authorization('trunk', RIGHT, nonce, 1000 + i)), peer(s), {}, t0 + 2100)), wrong, s);
});

test('an attack on an unknown user name draws exactly the answers of the same attack on a real one', () => {
  const t0 = Date.now();
  const real = attack(admission(), 'trunk', t0).map(shape);
  const ghost = attack(admission(), 'ghost', t0).map(shape);
  assert.deepEqual(ghost, real);
});

test('under attack the trunk still gets in: from a source that has not been failing, and from one it authenticated from before', () => {
  const adm = admission();
  const t0 = Date.now();
  // The trunk authenticates once from its own address before the attack.
  let nonce = nonceFrom(adm, '203.0.113.10', t0);
  assert.equal(adm.admit(invite(authorization('trunk', RIGHT, nonce, 1)), peer('203.0.113.10'), {}, t0), null);
  attack(adm, 'trunk', t0 + 10);
  // A second trunk address, never failing: its right password is checked and admitted, once.
  nonce = nonceFrom(adm, '203.0.113.20', t0 + 2100);
  assert.equal(adm.admit(invite(authorization('trunk', RIGHT, nonce, 1)), peer('203.0.113.20'), {}, t0 + 2100), null);
  // Both keep working while the attack goes on (and spends the global budget).
  for (let i = 0; i < 400; i++) {
    const at = t0 + 2200 + i;
    adm.admit(invite(authorization(`spray${i}`, 'x', nonce, 10 + i)), peer(`10.9.${i >> 8}.${i & 255}`), {}, at);
  }
  for (const [k, s] of ['203.0.113.10', '203.0.113.20'].entries()) assert.equal(adm.admit(invite(authorization('trunk', RIGHT, nonce, 1000 + k)), peer(s), {}, t0 + 2700), null, s);
});

test('the global budget caps checked guesses across any number of sources; the budgets recover once the attack stops', () => {
  const adm = admission();
  const t0 = Date.now();
  const nonce = nonceFrom(adm, '10.0.0.1', t0);
  // 2,000 sources, one guess each at a user of their own, over 2 s.
  for (let i = 0; i < 2000; i++) adm.admit(invite(authorization(`user${i}`, 'x', nonce, i + 1)), peer(`10.1.${i >> 8}.${i & 255}`), {}, t0 + i);
  const g = adm.guessing;
  assert.ok(g.checked <= 50 + 5 * 2 + 1, `${g.checked} guesses checked in 2 s (global budget 50 + 5/s)`);
  assert.ok(g.unchecked >= 2000 - g.checked);
  // A fresh source with the right password is not checked while the budget is spent (the same instant as the
  // last spray guess: the global budget refills one guess every 200 ms)…
  assert.notEqual(adm.admit(invite(authorization('trunk', RIGHT, nonce, 5000)), peer('10.2.0.1'), {}, t0 + 1999), null);
  // …and is, once it has refilled (the attack stopped); an attacking source's own budget has decayed too.
  const later = t0 + 10 * 60_000;
  const fresh = nonceFrom(adm, '10.2.0.1', later);
  assert.equal(adm.admit(invite(authorization('trunk', RIGHT, fresh, 1)), peer('10.2.0.1'), {}, later), null);
  const busy = admission();
  attack(busy, 'trunk', t0);
  const n2 = nonceFrom(busy, SOURCES[0]!, later);
  assert.equal(busy.admit(invite(authorization('trunk', RIGHT, n2, 1)), peer(SOURCES[0]!), {}, later), null, 'no lockout outlives the attack');
});

test('an IPv6 source is throttled by its /64 (one host owns one); IPv4 by its address', async () => {
  const { sourceKey } = await import('../../../ingress/sip/guess-throttle.ts');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), sourceKey('2001:db8:1:2::ffff'));
  assert.equal(sourceKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
  assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'));
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey('198.51.100.7'), '198.51.100.7');
});
