/**
 * Resampler tests: frequency and level preservation, anti-alias attenuation,
 * bit-exact chunked vs one-shot streaming, frame sizing and flush semantics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resampler } from '../../../media/resample.ts';
import { SAMPLE_RATES, samplesPerFrame } from '../../../media/frame.ts';
import { concat, db, randomChunks, rms, sine, toneAmplitude, whiteNoise, zeroCrossings } from './helpers.ts';

/** Resamples `x` in one call plus flush. */
function oneShot(from: number, to: number, x: Int16Array): Int16Array {
  const r = new Resampler(from, to);
  return concat(r.process(x), r.flush());
}

test('1 kHz at 8 kHz upsampled to 16 kHz keeps its frequency and amplitude (±1 dB)', () => {
  const input = sine(1000, 8000, 1, 12000);
  const r = new Resampler(8000, 16000);
  const out = r.process(input);
  assert.equal(out.length, 16000);
  // Skip the filter's start-up (a few ms) and measure whole periods.
  const from = 800;
  const to = 16000 - 800;
  const crossings = zeroCrossings(out, from, to);
  const expected = (2 * 1000 * (to - from)) / 16000;
  assert.ok(Math.abs(crossings - expected) <= 2, `zero crossings ${crossings}, expected ~${expected}`);
  const amp = toneAmplitude(out, 1000, 16000, from, to);
  assert.ok(Math.abs(db(amp / 12000)) < 1, `amplitude ${amp} vs 12000`);
  // Nothing significant at the image frequency (8 kHz - 1 kHz = 7 kHz).
  assert.ok(toneAmplitude(out, 7000, 16000, from, to) < 12000 * 0.01, 'image rejected by 40 dB');
});

test('6 kHz at 16 kHz decimated to 8 kHz is attenuated by at least 30 dB', () => {
  const input = sine(6000, 16000, 1, 16000);
  const out = oneShot(16000, 8000, input);
  const attenuation = db(rms(out, 400, 7600) / rms(input));
  assert.ok(attenuation <= -30, `attenuation only ${attenuation.toFixed(1)} dB`);
  // A naive decimator (take every second sample) would have folded it to 2 kHz at full level.
  const naive = input.filter((_, i) => i % 2 === 0);
  assert.ok(db(rms(naive) / rms(input)) > -1, 'sanity: naive decimation aliases');
});

test('in-band tones pass every supported rate pair within 1 dB', () => {
  for (const from of SAMPLE_RATES) {
    for (const to of SAMPLE_RATES) {
      const input = sine(700, from, 0.5, 10000);
      const out = new Resampler(from, to).process(input);
      const skip = Math.round(to * 0.02);
      const amp = toneAmplitude(out, 700, to, skip, out.length - skip);
      assert.ok(Math.abs(db(amp / 10000)) < 1, `${from}->${to}: amplitude ${amp.toFixed(0)}`);
    }
  }
});

test('chunked processing is bit-identical to one-shot for every rate pair', () => {
  const noise = whiteNoise(24000, -12, 7);
  for (const from of SAMPLE_RATES) {
    for (const to of SAMPLE_RATES) {
      const input = concat(noise.subarray(0, from / 2), sine(440, from, 0.25, 20000));
      const whole = oneShot(from, to, input);
      for (const seed of [1, 2]) {
        const r = new Resampler(from, to);
        const pieces = randomChunks(input, seed === 1 ? 7 : 700, seed).map((c) => r.process(c));
        const chunked = concat(...pieces, r.flush());
        assert.deepEqual(chunked, whole, `${from}->${to} seed ${seed}`);
      }
    }
  }
});

test('20 ms in gives exactly 20 ms out on every call; flush emits the tail and resets', () => {
  for (const from of SAMPLE_RATES) {
    for (const to of SAMPLE_RATES) {
      const r = new Resampler(from, to);
      const frame = sine(300, from, 0.02, 5000);
      for (let i = 0; i < 5; i++) assert.equal(r.process(frame).length, samplesPerFrame(to), `${from}->${to}`);
      const tail = r.flush();
      // The tail is the filter's group delay worth of output.
      assert.equal(tail.length, from === to ? 0 : Math.ceil((r.delayMs * to) / 1000), `${from}->${to} tail`);
      assert.equal(r.flush().length, 0, 'flush after flush is empty');
      const again = new Resampler(from, to);
      assert.deepEqual(r.process(frame), again.process(frame), 'state reset by flush');
    }
  }
});

test('group delay is small and the output is aligned after compensating it', () => {
  const r = new Resampler(8000, 48000);
  // The filter's group delay, computed from its taps (signal time, not a measured duration).
  assert.ok(r.delayMs > 0 && r.delayMs < 5, `delay ${r.delayMs} ms`);
  // An impulse comes out centred at the reported delay.
  const impulse = new Int16Array(80);
  impulse[0] = 30000;
  const out = concat(r.process(impulse), r.flush());
  let peak = 0;
  for (let i = 1; i < out.length; i++) if (Math.abs(out[i] as number) > Math.abs(out[peak] as number)) peak = i;
  assert.equal(peak, Math.round((r.delayMs * 48000) / 1000));
});

test('same-rate resampling is a copy; bad rates are rejected', () => {
  const x = sine(1000, 16000, 0.01);
  const r = new Resampler(16000, 16000);
  const y = r.process(x);
  assert.deepEqual(y, x);
  assert.notEqual(y, x);
  assert.equal(r.flush().length, 0);
  assert.throws(() => new Resampler(0, 8000), RangeError);
  assert.throws(() => new Resampler(8000, 22050.5), RangeError);
  assert.throws(() => new Resampler(8000, 16000, { cutoff: 1.2 }), RangeError);
});

test('full-scale input saturates instead of wrapping', () => {
  // 200 Hz full-scale square wave: the filter's Gibbs overshoot exceeds int16.
  const square = new Int16Array(1600).map((_, i) => (Math.floor(i / 20) % 2 ? 32767 : -32768));
  const r = new Resampler(8000, 16000);
  const out = r.process(square);
  const delay = Math.round((r.delayMs * 16000) / 1000);
  assert.equal(Math.max(...out), 32767);
  assert.equal(Math.min(...out), -32768);
  let checked = 0;
  for (let i = delay + 40; i < out.length; i++) {
    const pos = (i - delay) % 40; // position within a half-period pair at 16 kHz
    if (pos < 8 || pos > 32) continue; // away from the edges
    const inputSign = Math.floor((i - delay) / 40) % 2 ? 1 : -1;
    assert.equal(Math.sign(out[i] as number), inputSign, `sample ${i}`);
    checked++;
  }
  assert.ok(checked > 1000);
});
