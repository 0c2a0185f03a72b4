/**
 * Campaign numbers in one form (campaigns/numbers.ts): the common ways of writing a telephone number become E.164,
 * SIP URIs stay as written, and what cannot be normalised is refused with its reason and its row — so "each number
 * called once" and the do-not-call check compare like with like.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseCallee, normaliseCampaignNumbers } from '../../../campaigns/numbers.ts';
import { dncKey } from '../../../schema/dnc.ts';

test('the written forms of one number all become the same E.164', () => {
  for (const raw of ['+15551234567', '+1 (555) 123-4567', '+1.555.123.4567', ' +1 555 123 4567 ', 'tel:+1-555-123-4567', '0015551234567', '00 1 555 123 4567', 'tel:0015551234567']) {
    assert.deepEqual(normaliseCallee(raw), { number: '+15551234567' }, raw);
  }
  assert.deepEqual(normaliseCallee('0044 20 7946 0958'), { number: '+442079460958' });
  assert.deepEqual(normaliseCallee('+44 (0)20'.replace('(0)', '') + ' 7946 0958'), { number: '+442079460958' });
});

test('SIP URIs are kept as written', () => {
  assert.deepEqual(normaliseCallee('sip:alice@127.0.0.1:5070'), { number: 'sip:alice@127.0.0.1:5070' });
  assert.deepEqual(normaliseCallee('sips:+15551234567@pbx.example.com'), { number: 'sips:+15551234567@pbx.example.com' });
});

test('what cannot be normalised is refused with the reason', () => {
  const reason = (raw: string): string => {
    const r = normaliseCallee(raw);
    assert.ok('error' in r, `${raw} was accepted as ${JSON.stringify(r)}`);
    return r.error;
  };
  assert.match(reason('555-123-4567'), /no country code/);
  assert.match(reason('(555) 123 4567'), /no country code/);
  assert.match(reason('+1 555 CALL-NOW'), /only digits/);
  assert.match(reason('+0 555 1234'), /does not start with 0/);
  assert.match(reason('+1234567890123456'), /3 to 15 digits, this has 16/);
  assert.match(reason('+12'), /3 to 15 digits/);
  assert.match(reason('tel:+15551234567;ext=22'), /tel: parameters/);
  assert.match(reason('alice'), /not a telephone number/);
  assert.match(reason('  '), /empty/);
});

test('a list: normalised entries keep their other fields; refused ones are listed by row, none dropped silently', () => {
  const entries = [
    { number: '+1 (555) 000-0001', name: 'a', timezone: null },
    { number: '555-0002', name: 'b', timezone: null },
    { number: 'sip:c@127.0.0.1', name: null, timezone: 'UTC' },
    { number: '0015550000004', name: 'd', timezone: null },
    { number: '+1 555 HELP', name: 'e', timezone: null },
  ];
  const r = normaliseCampaignNumbers(entries, (i) => `line ${i + 2}`);
  assert.deepEqual(r.numbers, [
    { number: '+15550000001', name: 'a', timezone: null },
    { number: 'sip:c@127.0.0.1', name: null, timezone: 'UTC' },
    { number: '+15550000004', name: 'd', timezone: null },
  ]);
  assert.deepEqual(
    r.errors.map((e) => [e.row, e.number]),
    [['line 3', '555-0002'], ['line 6', '+1 555 HELP']],
  );
});

test('normalised numbers meet the do-not-call key and the "called once" set', () => {
  const forms = ['+1 (555) 010-0004', 'tel:+15550100004', '0015550100004'];
  const keys = new Set(forms.map((f) => {
    const r = normaliseCallee(f);
    assert.ok('number' in r);
    return dncKey(r.number);
  }));
  assert.deepEqual([...keys], ['+15550100004']);
  assert.equal(dncKey('sip:+15550100004@pbx.example.com'), '+15550100004', 'a SIP URI with the same number is matched too');
});
