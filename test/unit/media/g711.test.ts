/**
 * G.711 tests: byte-exact against SoX fixtures (see test/fixtures/media/README.md),
 * all-code decoding, quantisation bounds, and an exhaustive live cross-check
 * against the installed sox when available.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { aLawDecode, aLawEncode, muLawDecode, muLawEncode, A_LAW_SILENCE, MU_LAW_SILENCE } from '../../../media/g711.ts';
import { fixtureBytes, fixtureS16, hasSox } from './helpers.ts';

function firstMismatch(a: Uint8Array | Int16Array, b: Uint8Array | Int16Array): string {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `index ${i}: ${a[i]} != ${b[i]}`;
  return 'none';
}

const ALL_PCM = new Int16Array(65536).map((_, i) => i - 32768);
const ALL_CODES = new Uint8Array(256).map((_, i) => i);

test('µ-law encoding of speech equals sox byte for byte', () => {
  const got = muLawEncode(fixtureS16('speech-8k.s16le.raw'));
  const want = fixtureBytes('speech-8k.ul');
  assert.equal(got.length, 7724);
  assert.equal(firstMismatch(got, want), 'none');
});

test('A-law encoding of speech equals sox byte for byte', () => {
  const got = aLawEncode(fixtureS16('speech-8k.s16le.raw'));
  assert.equal(firstMismatch(got, fixtureBytes('speech-8k.al')), 'none');
});

test('encoding a full-range ramp (incl. ±32767/-32768 clipping) equals sox', () => {
  const ramp = fixtureS16('ramp-8k.s16le.raw');
  assert.equal(ramp[0], -32768);
  assert.equal(ramp[ramp.length - 1], 32767);
  assert.equal(firstMismatch(muLawEncode(ramp), fixtureBytes('ramp-8k.ul')), 'none');
  assert.equal(firstMismatch(aLawEncode(ramp), fixtureBytes('ramp-8k.al')), 'none');
});

test('decoding every one of the 256 codes equals sox', () => {
  const codes = fixtureBytes('all-codes.bin');
  assert.deepEqual(codes, ALL_CODES);
  assert.equal(firstMismatch(muLawDecode(codes), fixtureS16('all-codes.ul-decoded.s16le.raw')), 'none');
  assert.equal(firstMismatch(aLawDecode(codes), fixtureS16('all-codes.al-decoded.s16le.raw')), 'none');
});

test('well-known code points', () => {
  assert.deepEqual([...muLawDecode(new Uint8Array([0x00, 0x80, 0xff, 0x7f]))], [-32124, 32124, 0, 0]);
  assert.deepEqual([...aLawDecode(new Uint8Array([0x55, 0xd5, 0x2a, 0xaa]))], [-8, 8, -32256, 32256]);
  assert.deepEqual([...muLawEncode(new Int16Array([0, 32767, -32768]))], [MU_LAW_SILENCE, 0x80, 0x00]);
  assert.deepEqual([...aLawEncode(new Int16Array([0, 32767, -32768]))], [A_LAW_SILENCE, 0xaa, 0x2a]);
});

test('µ-law decode(encode(x)) is within half a quantisation step for all 65 536 inputs', () => {
  const codes = muLawEncode(ALL_PCM);
  const back = muLawDecode(codes);
  for (let i = 0; i < ALL_PCM.length; i++) {
    const x = ALL_PCM[i] as number;
    const y = back[i] as number;
    if (Math.abs(x) > 32124) {
      assert.equal(y, Math.sign(x) * 32124, `saturation at ${x}`);
      continue;
    }
    const seg = (~(codes[i] as number) >> 4) & 7;
    const halfStep = 1 << (seg + 2); // step is 2^(seg+3) in 16-bit units
    assert.ok(Math.abs(x - y) <= halfStep + 2, `x=${x} y=${y} seg=${seg}`); // +2: rounding to 14 bits
  }
});

test('A-law decode(encode(x)) is within half a quantisation step for all 65 536 inputs', () => {
  const codes = aLawEncode(ALL_PCM);
  const back = aLawDecode(codes);
  for (let i = 0; i < ALL_PCM.length; i++) {
    const x = ALL_PCM[i] as number;
    const y = back[i] as number;
    const seg = (((codes[i] as number) ^ 0x55) >> 4) & 7;
    const halfStep = seg <= 1 ? 8 : 1 << (seg + 2);
    assert.ok(Math.abs(x - y) <= halfStep + 4, `x=${x} y=${y} seg=${seg}`); // +4: rounding to 13 bits
  }
});

test('encode(decode(code)) is the identity (except µ-law negative zero)', () => {
  const mu = muLawEncode(muLawDecode(ALL_CODES));
  for (let c = 0; c < 256; c++) assert.equal(mu[c], c === 0x7f ? 0xff : c, `µ-law code ${c}`);
  assert.deepEqual(aLawEncode(aLawDecode(ALL_CODES)), ALL_CODES);
});

test('writes into a caller buffer and rejects one that is too small', () => {
  const pcm = new Int16Array([100, -100, 2000]);
  const out = new Uint8Array(8).fill(7);
  assert.equal(muLawEncode(pcm, out), out);
  assert.deepEqual([...out.subarray(0, 3)], [...muLawEncode(pcm)]);
  assert.equal(out[3], 7);
  const dec = new Int16Array(3);
  assert.equal(aLawDecode(aLawEncode(pcm), dec), dec);
  assert.throws(() => muLawEncode(pcm, new Uint8Array(2)), RangeError);
  assert.throws(() => aLawDecode(new Uint8Array(4), new Int16Array(3)), RangeError);
  assert.equal(muLawDecode(new Uint8Array(0)).length, 0);
});

test('exhaustive cross-check against the installed sox (all 65 536 inputs)', { skip: !hasSox && 'sox not installed' }, () => {
  const input = Buffer.from(ALL_PCM.buffer);
  for (const [type, encode] of [['ul', muLawEncode], ['al', aLawEncode]] as const) {
    const res = spawnSync('sox', ['-D', '-t', 'raw', '-r', '8000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-',
      '-t', type, '-'], { input, maxBuffer: 1 << 20 });
    assert.equal(res.status, 0, String(res.stderr));
    assert.equal(firstMismatch(encode(ALL_PCM), new Uint8Array(res.stdout)), 'none', type);
  }
});
