import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { base64Length, decodeBase64Into, encodeBase64Into } from '../../../media/base64.ts';

test('encodeBase64Into writes what Buffer#toString("base64") returns, for every length 0..200', () => {
  for (let n = 0; n <= 200; n++) {
    const bytes = randomBytes(n);
    const out = Buffer.alloc(base64Length(n) + 3, 0x2e);
    const end = encodeBase64Into(bytes, out, 3);
    assert.equal(end, 3 + base64Length(n));
    assert.equal(out.subarray(3, end).toString('latin1'), bytes.toString('base64'), `n=${n}`);
    assert.equal(out.subarray(0, 3).toString('latin1'), '...', 'nothing before the offset is touched');
  }
});

test('encodeBase64Into refuses an output buffer that is too small', () => {
  assert.throws(() => encodeBase64Into(new Uint8Array(160), new Uint8Array(215), 0), RangeError);
});

test('decodeBase64Into round-trips every length 0..200 and returns the byte count', () => {
  const out = new Uint8Array(200);
  for (let n = 0; n <= 200; n++) {
    const bytes = randomBytes(n);
    const len = decodeBase64Into(bytes.toString('base64'), out);
    assert.equal(len, n);
    assert.deepEqual(Buffer.from(out.subarray(0, len)), bytes);
  }
});

test('decodeBase64Into refuses what is not strict padded base64 (Node would skip the junk)', () => {
  const out = new Uint8Array(64);
  const bad = ['abc', 'ab=c', 'a===', '=AAA', 'AA-A', 'AA_A', 'AA A', 'AA\nA', 'AAAA====', 'AAé=', 'AA\u0141A', 'A\u0100AA', 'AAA\u012b'];
  for (const s of bad) assert.equal(decodeBase64Into(s, out), -1, JSON.stringify(s));
  // Too long for the output buffer.
  assert.equal(decodeBase64Into(Buffer.alloc(66).toString('base64'), out), -1);
  assert.equal(decodeBase64Into('', out), 0);
});

test('decodeBase64Into agrees with Buffer.from on random mutations of valid payloads', () => {
  const out = new Uint8Array(200);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .\u00ff';
  for (let k = 0; k < 5000; k++) {
    const text = randomBytes(1 + (k % 40)).toString('base64');
    const pos = k % text.length;
    const mutated = text.slice(0, pos) + chars[k % chars.length] + text.slice(pos + 1);
    const len = decodeBase64Into(mutated, out);
    const strict = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(mutated);
    assert.equal(len >= 0, strict, JSON.stringify(mutated));
    if (strict) assert.deepEqual(Buffer.from(out.subarray(0, len)), Buffer.from(mutated, 'base64'));
  }
});
