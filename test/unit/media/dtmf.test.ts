/**
 * DTMF tests: RFC 4733 payload parsing/serialisation and the in-band Goertzel
 * detector on sox-generated tones, synthetic tones, noise and espeak speech.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DTMF_COL_HZ, DTMF_ROW_HZ, DtmfDetector, digitToEvent, eventToDigit, parseTelephoneEvent, serializeTelephoneEvent,
} from '../../../media/dtmf.ts';
import { muLawDecode } from '../../../media/g711.ts';
import { concat, dualTone, fixtureBytes, fixtureS16, mix, randomChunks, sine, whiteNoise } from './helpers.ts';

const KEYS = ['123A', '456B', '789C', '*0#D'];

/** Row/column frequencies of a key. */
function freqs(key: string): [number, number] {
  for (let r = 0; r < 4; r++) {
    const c = (KEYS[r] as string).indexOf(key);
    if (c >= 0) return [DTMF_ROW_HZ[r] as number, DTMF_COL_HZ[c] as number];
  }
  throw new Error(`not a key: ${key}`);
}

/** Keys as tones of `toneS` seconds separated by `gapS` of silence. */
function dial(keys: string, rate: number, toneS = 0.08, gapS = 0.06, amplitude = 6000): Int16Array {
  const parts: Int16Array[] = [new Int16Array(Math.round(rate * gapS))];
  for (const k of keys) {
    const [f1, f2] = freqs(k);
    parts.push(dualTone(f1, f2, rate, toneS, amplitude), new Int16Array(Math.round(rate * gapS)));
  }
  return concat(...parts);
}

test('parses RFC 4733 payloads', () => {
  assert.deepEqual(parseTelephoneEvent(new Uint8Array([0x05, 0x0a, 0x01, 0x90])), {
    event: 5, end: false, volume: 10, duration: 400,
  });
  assert.deepEqual(parseTelephoneEvent(new Uint8Array([0x0b, 0xbf, 0xff, 0xff])), {
    event: 11, end: true, volume: 63, duration: 65535,
  });
  // The reserved R bit is ignored, as RFC 4733 requires of receivers.
  assert.equal(parseTelephoneEvent(new Uint8Array([0x01, 0x40 | 7, 0, 160]))?.volume, 7);
  assert.equal(parseTelephoneEvent(new Uint8Array([0x01, 0x40 | 7, 0, 160]))?.end, false);
});

test('rejects short or non-byte input', () => {
  assert.equal(parseTelephoneEvent(new Uint8Array(0)), null);
  assert.equal(parseTelephoneEvent(new Uint8Array([1, 2, 3])), null);
  assert.equal(parseTelephoneEvent(null as unknown as Uint8Array), null);
  assert.equal(parseTelephoneEvent([1, 2, 3, 4] as unknown as Uint8Array), null);
  assert.notEqual(parseTelephoneEvent(Buffer.from([1, 2, 3, 4])), null, 'Buffer is accepted');
});

test('serialises and round-trips; rejects out-of-range fields', () => {
  const ev = { event: 15, end: true, volume: 12, duration: 1280 };
  const bytes = serializeTelephoneEvent(ev);
  assert.deepEqual([...bytes], [15, 0x80 | 12, 0x05, 0x00]);
  assert.deepEqual(parseTelephoneEvent(bytes), ev);
  const out = new Uint8Array(6);
  assert.equal(serializeTelephoneEvent({ ...ev, end: false }, out), out);
  assert.equal(out[1], 12);
  assert.throws(() => serializeTelephoneEvent({ ...ev, event: 256 }), RangeError);
  assert.throws(() => serializeTelephoneEvent({ ...ev, volume: 64 }), RangeError);
  assert.throws(() => serializeTelephoneEvent({ ...ev, duration: 65536 }), RangeError);
  assert.throws(() => serializeTelephoneEvent({ ...ev, duration: 1.5 }), RangeError);
  assert.throws(() => serializeTelephoneEvent(ev, new Uint8Array(3)), RangeError);
});

test('maps events 0-15 to 0-9 * # A-D and back', () => {
  const digits = Array.from({ length: 16 }, (_, i) => eventToDigit(i)).join('');
  assert.equal(digits, '0123456789*#ABCD');
  for (let i = 0; i < 16; i++) assert.equal(digitToEvent(digits[i] as string), i);
  assert.equal(digitToEvent('b'), 13);
  assert.equal(eventToDigit(16), null); // flash
  assert.equal(eventToDigit(-1), null);
  assert.equal(digitToEvent('E'), null);
  assert.equal(digitToEvent('12'), null);
});

test('detects the sox-generated sequence 1559*0#D exactly once per key press', () => {
  const pcm = fixtureS16('dtmf-1559star0hashD-8k.s16le.raw');
  assert.equal(new DtmfDetector(8000).process(pcm).join(''), '1559*0#D');
});

test('detection does not depend on how the input is chunked', () => {
  const pcm = fixtureS16('dtmf-1559star0hashD-8k.s16le.raw');
  for (const [max, seed] of [[1, 1], [37, 2], [160, 3], [5000, 4]] as const) {
    const det = new DtmfDetector(8000);
    const found = randomChunks(pcm, max, seed).flatMap((c) => det.process(c));
    assert.equal(found.join(''), '1559*0#D', `chunks up to ${max}`);
  }
});

test('detects all 16 keys at every supported sample rate', () => {
  for (const rate of [8000, 16000, 24000, 48000]) {
    const det = new DtmfDetector(rate);
    assert.equal(det.process(dial('0123456789*#ABCD', rate)).join(''), '0123456789*#ABCD', `${rate} Hz`);
  }
});

test('a held key reports once; a repeated key after a gap reports again', () => {
  const det = new DtmfDetector(8000);
  const [f1, f2] = freqs('7');
  assert.deepEqual(det.process(dualTone(f1, f2, 8000, 2)), ['7']);
  assert.deepEqual(det.process(concat(new Int16Array(400), dualTone(f1, f2, 8000, 0.1))), ['7']);
});

test('tolerates ±1.5 % frequency error, 6 dB twist and noise at 15 dB SNR', () => {
  const n = 8000 * 0.1;
  const gap = new Int16Array(480);
  const off = (f: number, k: number) => sine(f * k, 8000, 0.1, 5000);
  const sum = (a: Int16Array, b: Int16Array) => mix(a, b);
  const pcm = concat(
    gap, sum(off(770, 1.015), off(1336, 0.985)), gap, // 5, detuned
    gap, sum(sine(852, 8000, 0.1, 6000), sine(1477, 8000, 0.1, 3000)), gap, // 9, 6 dB twist
    gap, mix(dualTone(941, 1336, 8000, 0.1, 5000), whiteNoise(n, -31, 9)), gap, // 0 in noise
  );
  assert.equal(new DtmfDetector(8000).process(pcm).join(''), '590');
});

test('rejects tones that are too short, single tones, too quiet, or too twisted', () => {
  const det = new DtmfDetector(8000);
  const gap = new Int16Array(800);
  assert.deepEqual(det.process(concat(gap, dualTone(697, 1209, 8000, 0.02), gap)), [], '20 ms tone');
  assert.deepEqual(det.process(concat(sine(697, 8000, 0.5), gap, sine(1336, 8000, 0.5))), [], 'single tones');
  assert.deepEqual(det.process(dualTone(697, 1209, 8000, 0.3, 100)), [], '-50 dBFS tones');
  assert.deepEqual(
    det.process(mix(sine(697, 8000, 0.3, 8000), sine(1209, 8000, 0.3, 1000))), [], '18 dB twist',
  );
});

test('speech and noise do not trigger digits', () => {
  const det = new DtmfDetector(8000);
  assert.deepEqual(det.process(fixtureS16('speech-8k.s16le.raw')), []);
  assert.deepEqual(det.process(muLawDecode(fixtureBytes('speech-padded-8k.ul'))), []);
  assert.deepEqual(det.process(whiteNoise(8000 * 5, -20, 11)), []);
  // The same detector still works afterwards.
  assert.deepEqual(det.process(dial('#', 8000)), ['#']);
});

test('timing: ≥40 ms tones and ≥40 ms gaps resolve at any alignment; 25 ms tones and one lost packet do not', () => {
  const [f1, f2] = freqs('6');
  const lead = (off: number) => new Int16Array(400 + off);
  const tail = new Int16Array(800);
  for (let off = 0; off < 205; off += 5) {
    const at = `at offset ${off}`;
    assert.deepEqual(new DtmfDetector(8000).process(concat(lead(off), dualTone(f1, f2, 8000, 0.04), tail)), ['6'], at);
    assert.deepEqual(new DtmfDetector(8000).process(concat(lead(off), dualTone(f1, f2, 8000, 0.025), tail)), [], at);
    const tone = dualTone(f1, f2, 8000, 0.06);
    const twoPresses = concat(lead(off), tone, new Int16Array(320), tone, tail);
    assert.deepEqual(new DtmfDetector(8000).process(twoPresses), ['6', '6'], `40 ms gap ${at}`);
    const held = dualTone(f1, f2, 8000, 0.2);
    held.fill(0, 600, 760); // one lost 20 ms packet, concealed with silence
    assert.deepEqual(new DtmfDetector(8000).process(concat(lead(off), held, tail)), ['6'], `dropout ${at}`);
  }
});

test('tones 3 % off frequency are rejected', () => {
  for (const k of [1.03, 0.97]) {
    const pcm = mix(sine(770 * k, 8000, 0.2, 6000), sine(1477 * k, 8000, 0.2, 6000));
    assert.deepEqual(new DtmfDetector(8000).process(pcm), [], `factor ${k}`);
  }
});
