/**
 * Energy VAD tests against the espeak-ng fixture (speech padded with 0.5 s of
 * silence on both sides, stored as µ-law) and synthetic silence/noise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnergyVad, frameLevelDb, type VadEvent } from '../../../media/vad.ts';
import { muLawDecode } from '../../../media/g711.ts';
import { concat, fixtureBytes, fixtureS16, mix, sine, whiteNoise } from './helpers.ts';

const FRAME = 160; // 20 ms at 8 kHz

/** Runs `pcm` through `vad` in 20 ms frames; returns events with their time (end of frame, ms). */
function run(vad: EnergyVad, pcm: Int16Array): Array<{ event: VadEvent; ms: number }> {
  const events: Array<{ event: VadEvent; ms: number }> = [];
  for (let i = 0; i + FRAME <= pcm.length; i += FRAME) {
    const event = vad.process(pcm.subarray(i, i + FRAME));
    if (event) events.push({ event, ms: ((i + FRAME) * 1000) / 8000 });
  }
  return events;
}

const padded = muLawDecode(fixtureBytes('speech-padded-8k.ul'));
/** Speech starts after the 0.5 s `pad`; espeak's own audio ends ~0.66 s after that. */
const SPEECH_START_MS = 500;

test('fixture sanity: the padding is silent and the speech is where the README says', () => {
  assert.equal(padded.length, 15724);
  assert.ok(padded.subarray(0, 4000).every((s) => s === 0), 'first 0.5 s silent');
  assert.ok(padded.subarray(padded.length - 4000).every((s) => s === 0), 'last 0.5 s silent');
  assert.ok(frameLevelDb(padded.subarray(4000, 4160)) > -60, 'speech audible in the first frame after the pad');
  assert.ok(frameLevelDb(padded.subarray(4640, 4800)) > -20, 'and loud 80 ms later');
});

test('speech padded with silence: exactly one start (within ±100 ms of onset) then one end', () => {
  const vad = new EnergyVad();
  const events = run(vad, padded);
  assert.deepEqual(events.map((e) => e.event), ['speech_start', 'speech_end']);
  const [start, end] = events;
  assert.ok(start && end);
  assert.ok(Math.abs(start.ms - SPEECH_START_MS) <= 100, `start at ${start.ms} ms`);
  // The last audible sample is at ~1165 ms; the end needs releaseFrames (400 ms) of quiet.
  assert.ok(end.ms > 1165 && end.ms <= 1165 + 400 + 100, `end at ${end.ms} ms`);
  assert.equal(vad.speaking, false);
});

test('speaking reflects the state between events', () => {
  const vad = new EnergyVad({ attackFrames: 2, releaseFrames: 5 });
  const loud = sine(300, 8000, 0.02, 8000);
  const quiet = new Int16Array(FRAME);
  assert.equal(vad.process(loud), null);
  assert.equal(vad.speaking, false);
  assert.equal(vad.process(loud), 'speech_start');
  assert.equal(vad.speaking, true);
  for (let i = 0; i < 4; i++) assert.equal(vad.process(quiet), null);
  assert.equal(vad.speaking, true);
  assert.equal(vad.process(quiet), 'speech_end');
  assert.equal(vad.speaking, false);
});

test('pure digital silence produces no events', () => {
  const vad = new EnergyVad();
  assert.deepEqual(run(vad, new Int16Array(8000 * 10)), []);
  assert.equal(frameLevelDb(new Int16Array(FRAME)), -100);
});

test('low background noise produces no events', () => {
  for (const level of [-70, -60, -55]) {
    const vad = new EnergyVad();
    assert.deepEqual(run(vad, whiteNoise(8000 * 10, level, 3)), [], `noise at ${level} dBFS`);
  }
  // Silence first (floor falls to the bottom), then low noise: the absolute gate holds.
  const vad = new EnergyVad();
  assert.deepEqual(run(vad, concat(new Int16Array(8000 * 2), whiteNoise(8000 * 5, -58, 4))), []);
});

test('short clicks shorter than the attack time are ignored', () => {
  const vad = new EnergyVad({ attackFrames: 3 });
  const click = sine(1000, 8000, 0.04, 20000); // two loud frames
  const pcm = concat(new Int16Array(8000), click, new Int16Array(8000), click, new Int16Array(8000));
  assert.deepEqual(run(vad, pcm), []);
});

test('the noise floor adapts to steady louder noise, and speech above it is still detected', () => {
  const vad = new EnergyVad();
  const noise = whiteNoise(8000 * 6, -40, 5);
  const events = run(vad, noise);
  // Steady -40 dBFS noise may look like speech until learned (~1 s), then must stay quiet.
  assert.ok(events.every((e) => e.ms < 2000), JSON.stringify(events));
  assert.ok(vad.noiseFloorDb > -45 && vad.noiseFloorDb < -35, `floor ${vad.noiseFloorDb}`);
  assert.equal(vad.speaking, false);
  // Now speech (~20 dB above the noise) over the same noise.
  const speech = fixtureS16('speech-8k.s16le.raw');
  const speechOverNoise = mix(concat(new Int16Array(4000), speech), whiteNoise(4000 + speech.length + 8000, -40, 6));
  const later = run(vad, speechOverNoise);
  assert.deepEqual(later.map((e) => e.event), ['speech_start', 'speech_end']);
  // The espeak onset ramps up from -48 dBFS over ~60 ms, so under -40 dBFS noise the
  // first loud frames come slightly later than in silence.
  // `ms` is audio time (the position in the samples fed), not wall time: a busy machine cannot move it.
  const startMs = later[0]?.ms ?? 0;
  assert.ok(startMs >= 500 && startMs <= 650, `start at ${startMs}`);
});

test('thresholdDb raises the bar', () => {
  const quietSpeech = fixtureS16('speech-8k.s16le.raw').map((s) => s / 100); // ~40 dB down
  const pcm = concat(new Int16Array(4000), quietSpeech, new Int16Array(8000));
  const sensitive = new EnergyVad({ minSpeechDb: -80 });
  assert.equal(run(sensitive, pcm)[0]?.event, 'speech_start');
  const strict = new EnergyVad({ minSpeechDb: -80, thresholdDb: 60 });
  assert.deepEqual(run(strict, pcm), []);
});
