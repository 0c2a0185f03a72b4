/**
 * The answering-machine detector (media/amd.ts) on synthetic audio: Goertzel power and tone share on pure and
 * off-bin tones and on noise; the classifier on a short "hello" (noise-like speech, then silence), a long
 * greeting ending in a beep, a long greeting with no beep, silence, and a beep alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AmdDetector, classifyPcm, dominantTone, goertzel } from '../../../media/amd.ts';

function tone(rate: number, freq: number, ms: number, amp = 8000): Int16Array {
  const n = (rate * ms) / 1000;
  return Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * freq * i) / rate)));
}

/** Speech-like: seeded noise, loud, in 300 ms syllables with 60 ms dips (never a single tone). */
function babble(rate: number, ms: number, seed = 7): Int16Array {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff - 0.5;
  };
  const n = (rate * ms) / 1000;
  return Int16Array.from({ length: n }, (_, i) => {
    const t = ((i / rate) * 1000) % 360;
    return Math.round((t < 300 ? 6000 : 300) * rnd());
  });
}

const silence = (rate: number, ms: number): Int16Array => new Int16Array((rate * ms) / 1000);

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

test('goertzel: a sine on the bin has power (A·N/2)²; another frequency far less', () => {
  const t = tone(8000, 1000, 20, 1000);
  const p = goertzel(t, 8000, 1000);
  assert.ok(Math.abs(p / (1000 * 80) ** 2 - 1) < 0.02, `power ratio ${p / (1000 * 80) ** 2}`);
  assert.ok(goertzel(t, 8000, 1500) < p / 100);
});

test('dominantTone: beeps across 440–2000 Hz at 8 and 16 kHz, also off the 25 Hz grid; noise is not a tone', () => {
  for (const rate of [8000, 16000]) {
    for (const f of [440, 1000, 1337, 1400, 2000]) {
      const d = dominantTone(tone(rate, f, 20), rate);
      assert.ok(Math.abs(d.freqHz - f) <= 13, `${f} Hz at ${rate}: found ${d.freqHz}`);
      assert.ok(d.share >= 0.6, `${f} Hz at ${rate}: share ${d.share}`);
    }
    assert.ok(dominantTone(babble(rate, 20), rate).share < 0.3);
  }
});

// The detector's times (decidedMs, readyMs, a beep's startMs/endMs) are positions on the synthetic audio's own clock,
// counted in 20 ms frames of samples fed in one go: computed figures, the same on any machine, not wall-clock
// durations. The bounds below are the frame arithmetic (±2 frames), not a speed.
test('a short hello then silence: human, decided once the gap passes', () => {
  const d = classifyPcm(concat(silence(8000, 400), babble(8000, 700), silence(8000, 3000)), 8000);
  assert.ok(d);
  assert.equal(d.by, 'human');
  assert.equal(d.evidence.reason, 'short-greeting');
  assert.equal(d.decidedMs, d.readyMs);
  // The last loud syllable ends at 400 + 660 ms (the babble's dips are quiet): decided 800 ms later.
  assert.ok(d.decidedMs >= 1060 + 800 && d.decidedMs <= 1060 + 840, `decided at ${d.decidedMs}`);
});

test('a long greeting ending in a beep: machine, ready after the beep ends, with the beep as evidence', () => {
  const pcm = concat(silence(8000, 300), babble(8000, 6000), silence(8000, 400), tone(8000, 1000, 400), silence(8000, 2000));
  const d = classifyPcm(pcm, 8000);
  assert.ok(d);
  assert.equal(d.by, 'machine');
  assert.equal(d.evidence.reason, 'long-greeting');
  assert.ok(d.decidedMs < 3500, `classified at ${d.decidedMs}`);
  assert.ok(d.evidence.beep);
  assert.equal(d.evidence.beep.freqHz, 1000);
  assert.ok(Math.abs(d.evidence.beep.startMs - 6700) <= 20 && Math.abs(d.evidence.beep.endMs - 7100) <= 20, JSON.stringify(d.evidence.beep));
  assert.ok(d.readyMs >= d.evidence.beep.endMs && d.readyMs <= d.evidence.beep.endMs + 40, `ready at ${d.readyMs}`);
});

test('a long greeting with no beep: machine, ready after the beep wait', () => {
  const d = classifyPcm(concat(babble(8000, 5000), silence(8000, 6000)), 8000, { beepWaitMs: 2000 });
  assert.ok(d);
  assert.equal(d.by, 'machine');
  assert.equal(d.evidence.beep, null);
  assert.ok(d.readyMs >= 5000 + 800 + 2000 - 40 && d.readyMs <= 5000 + 800 + 2000 + 40, `ready at ${d.readyMs}`);
});

test('silence: unknown after the initial silence', () => {
  const d = classifyPcm(silence(16000, 6000), 16000, { initialSilenceMs: 3000 });
  assert.ok(d);
  assert.equal(d.by, 'unknown');
  assert.equal(d.evidence.reason, 'silence');
  assert.equal(d.decidedMs, 3000);
});

test('a beep alone (the greeting was missed): machine on the beep', () => {
  const d = classifyPcm(concat(silence(8000, 500), tone(8000, 850, 300), silence(8000, 500)), 8000);
  assert.ok(d);
  assert.equal(d.by, 'machine');
  assert.equal(d.evidence.reason, 'beep');
  assert.ok(d.evidence.beep && d.evidence.beep.freqHz === 850);
});

test('a 100 ms tone is not a beep; talking past the timeout is a machine', () => {
  const short = classifyPcm(concat(tone(8000, 1000, 100), silence(8000, 5000)), 8000);
  assert.ok(short);
  assert.equal(short.evidence.beep, null);
  const det = new AmdDetector({ timeoutMs: 2000, maxHumanMs: 5000 });
  const pcm = babble(8000, 3000);
  let d = null;
  for (let i = 0; i + 160 <= pcm.length && !d; i += 160) d = det.push(pcm.subarray(i, i + 160), 8000);
  assert.ok(d);
  assert.equal(d.by, 'machine');
  assert.equal(d.evidence.reason, 'timeout-talking');
  assert.equal(det.push(pcm.subarray(0, 160), 8000), null, 'one decision only');
});
