/**
 * The PII redactors (speech/redact.ts): Luhn, the formats each recognises written and spoken, what is left alone,
 * precedence between kinds, counts, and a registered recogniser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digitRuns, luhnValid, redact, registerRedactor } from '../../../speech/redact.ts';

const ALL = ['card', 'ssn', 'iban', 'email', 'phone'];

test('Luhn: test card numbers pass, one changed digit fails, lengths outside 13–19 fail', () => {
  for (const n of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '4222222222222']) assert.ok(luhnValid(n), n);
  for (const n of ['4111111111111112', '1234567812345678', '411111111111', '41111111111111111111']) assert.equal(luhnValid(n), false, n);
});

test('a card number written in groups, with dashes or run together is redacted; the words around it stay', () => {
  for (const card of ['4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111', '3782 822463 10005']) {
    const r = redact(`my card is ${card} thanks`, ALL);
    assert.equal(r.text, 'my card is [redacted:card] thanks', card);
    assert.deepEqual(r.counts, { card: 1 });
  }
});

test('a card number spoken digit by digit ("four one one one …", "oh" for zero) is redacted', () => {
  const spoken = 'four one one one one one one one one one one one one one one one';
  const r = redact(`sure it is ${spoken} expiry soon`, ['card']);
  assert.equal(r.text, 'sure it is [redacted:card] expiry soon');
  const oh = redact('six oh one one one one one one one one one one one one one seven', ['card']);
  assert.equal(oh.text, '[redacted:card]');
});

test('sixteen digits that fail Luhn are no card (an order number stays when only cards are redacted)', () => {
  const r = redact('order 1234 5678 1234 5678', ['card']);
  assert.equal(r.text, 'order 1234 5678 1234 5678');
  assert.deepEqual(r.counts, {});
});

test('US SSN: dashed or nine digits with a valid area; 000, 666 and 9xx areas are not', () => {
  assert.equal(redact('ssn 123-45-6789 ok', ['ssn']).text, 'ssn [redacted:ssn] ok');
  assert.equal(redact('one two three four five six seven eight nine', ['ssn']).text, '[redacted:ssn]');
  for (const n of ['000-12-3456', '666-12-3456', '912-12-3456', '123-00-4567']) assert.equal(redact(n, ['ssn']).text, n);
});

test('IBAN: mod-97 checked, with or without spaces', () => {
  assert.equal(redact('pay GB82 WEST 1234 5698 7654 32 now', ['iban']).text, 'pay [redacted:iban] now');
  assert.equal(redact('DE89370400440532013000', ['iban']).text, '[redacted:iban]');
  assert.equal(redact('GB82 WEST 1234 5698 7654 33', ['iban']).text, 'GB82 WEST 1234 5698 7654 33');
});

test('e-mail addresses and phone numbers (written and spoken), counted per kind', () => {
  const r = redact('mail jane.doe+x@example.co.uk or call +1 (555) 123-4567 or five five five one two three four five six seven', ALL);
  assert.equal(r.text, 'mail [redacted:email] or call [redacted:phone] or [redacted:phone]');
  assert.deepEqual(r.counts, { email: 1, phone: 2 });
});

test('a Luhn-valid card is a card, not a phone number; only enabled kinds are redacted', () => {
  assert.deepEqual(redact('4111111111111111', ALL).counts, { card: 1 });
  assert.equal(redact('x@y.com 4111111111111111', ['email']).text, '[redacted:email] 4111111111111111');
  assert.equal(redact('nothing here', ALL).text, 'nothing here');
});

test('digit runs stop at other words', () => {
  assert.deepEqual(digitRuns('one two and three').map((r) => r.digits), ['12', '3']);
});

test('a registered recogniser is used when a policy names its kind', () => {
  registerRedactor({ kind: 'test-secret', find: (t) => [...t.matchAll(/swordfish/g)].map((m) => ({ start: m.index, end: m.index + 9 })) });
  assert.equal(redact('the word is swordfish', ['test-secret']).text, 'the word is [redacted:test-secret]');
  assert.equal(redact('the word is swordfish', ['card']).text, 'the word is swordfish');
  assert.throws(() => registerRedactor({ kind: 'Bad Kind', find: () => [] }));
});
