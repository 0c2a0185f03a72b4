/**
 * Frame helper tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_MS, SAMPLE_RATES, isSampleRate, samplesPerFrame, samplesToMs, silentFrame } from '../../../media/frame.ts';

test('20 ms frame sizes for every supported rate', () => {
  assert.equal(FRAME_MS, 20);
  assert.deepEqual(SAMPLE_RATES.map(samplesPerFrame), [160, 320, 480, 960]);
  for (const rate of SAMPLE_RATES) assert.equal(samplesToMs(samplesPerFrame(rate), rate), FRAME_MS);
});

test('silentFrame is a fresh zeroed frame with the given timestamp', () => {
  const a = silentFrame(16000, 640);
  assert.equal(a.sampleRate, 16000);
  assert.equal(a.timestamp, 640);
  assert.equal(a.samples.length, 320);
  assert.ok(a.samples.every((s) => s === 0));
  const b = silentFrame(16000, 640);
  a.samples[0] = 5;
  assert.equal(b.samples[0], 0, 'frames do not share buffers');
});

test('isSampleRate accepts only the supported rates', () => {
  assert.deepEqual([8000, 16000, 24000, 48000, 44100, 0, 8000.5].map(isSampleRate), [true, true, true, true, false, false, false]);
});
