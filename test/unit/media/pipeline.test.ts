import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline, type PlayResult } from '../../../media/pipeline.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';

function setup(reportsPlayout: boolean) {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(reportsPlayout);
  const pipeline = new MediaPipeline(leg, clock);
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t += 20) {
      now += 20;
      clock.tick();
    }
  };
  return { clock, leg, pipeline, advance };
}

const tone = (ms: number): Int16Array => new Int16Array((8000 * ms) / 1000).fill(1000);

test('a play is paced at 20 ms per frame and, without playout reports, completes when its last frame is sent', async () => {
  const { leg, pipeline, advance } = setup(false);
  let done: PlayResult | null = null;
  void pipeline.play(tone(1000)).then((r) => (done = r));
  advance(500);
  assert.equal(leg.sentFrames.length, 26, 'slots at 0, 20, … 500 ms: one frame each');
  await Promise.resolve();
  assert.equal(done, null);
  advance(520);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(done, { playId: '1', durationMs: 1000, heardMs: 1000, interrupted: false });
  assert.equal(leg.sentMarks.length, 0, 'no marks on a leg that cannot report playout');
});

test('with playout reports, a play completes only when the far end echoes its end mark', async () => {
  const { leg, pipeline, advance } = setup(true);
  let done: PlayResult | null = null;
  void pipeline.play(tone(400)).then((r) => (done = r));
  advance(500);
  assert.deepEqual(leg.sentMarks, ['p:1:200', 'p:1:400', 'e:1']);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, null, 'sent is not heard');
  leg.echo('p:1:200');
  leg.echo('p:1:400');
  leg.echo('e:1');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(done, { playId: '1', durationMs: 400, heardMs: 400, interrupted: false });
});

test('barge-in: caller speech over queued agent audio clears both queues and records what was heard', async () => {
  const { leg, pipeline, advance } = setup(true);
  const barged: number[] = [];
  pipeline.on('bargeIn', (b) => barged.push(b.droppedMs));
  const result = pipeline.play(tone(3000));
  advance(1000);
  leg.echo('p:1:200');
  leg.echo('p:1:400');
  leg.echo('p:1:600'); // the far end has played 600 ms when the caller starts talking
  // Sustained speech: voiced past the default bargeIn.minSpeechMs (600 ms); shorter is a backchannel (barge-in.test.ts).
  for (let i = 0; i < 35; i++) leg.speak(12000);
  const r = await result;
  assert.equal(r.interrupted, true);
  assert.equal(r.heardMs, 600);
  assert.equal(leg.clears, 1, 'the far end was told to clear');
  assert.equal(barged.length, 1);
  assert.ok(barged[0]! >= 1900 && barged[0]! <= 2100, `dropped ≈2000 ms locally, got ${barged[0]}`);
  const before = leg.sentFrames.length;
  advance(200);
  assert.equal(leg.sentFrames.length, before, 'nothing more is sent after the clear');
  assert.equal(pipeline.agentSpeaking, false);
});

test('speech with no agent audio queued is not a barge-in; speech end reports the utterance length', () => {
  const { leg, pipeline } = setup(true);
  const events: string[] = [];
  pipeline.on('bargeIn', () => events.push('barge'));
  pipeline.on('speechStart', () => events.push('start'));
  pipeline.on('speechEnd', (e) => events.push(`end:${e.durationMs}`));
  for (let i = 0; i < 50; i++) leg.speak(0);
  for (let i = 0; i < 50; i++) leg.speak(12000);
  for (let i = 0; i < 40; i++) leg.speak(0);
  assert.equal(events[0], 'start');
  assert.equal(events.length, 2);
  const ms = Number(events[1]?.split(':')[1]);
  assert.ok(ms >= 900 && ms <= 1500, `utterance ≈1 s (+ release), got ${ms}`);
});

test('taps see caller and agent frames; a throwing tap is reported and does not stop the others', () => {
  const { leg, pipeline, advance } = setup(false);
  const seen: string[] = [];
  const errors: string[] = [];
  pipeline.on('tapError', (e) => errors.push(e.tap));
  pipeline.addTap({ name: 'bad', process: () => { throw new Error('boom'); } });
  pipeline.addTap({ name: 'good', process: (_f, ch) => void seen.push(ch) });
  leg.speak(100);
  void pipeline.play(tone(40));
  advance(60);
  assert.deepEqual(seen, ['caller', 'agent', 'agent']);
  assert.equal(errors.length, 3);
});

test('closing the pipeline settles pending plays and stops pacing', async () => {
  const { clock, leg, pipeline, advance } = setup(true);
  const result = pipeline.play(tone(1000));
  advance(100);
  pipeline.close();
  const r = await result;
  assert.equal(r.interrupted, true);
  assert.equal(clock.size, 0);
  const sent = leg.sentFrames.length;
  advance(100);
  assert.equal(leg.sentFrames.length, sent);
});

test('a continuous-media leg (RTP to a trunk) gets a call for every slot without agent audio, and none while audio plays', () => {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now, phases: 4 });
  clock.start();
  const leg = new MemoryLeg(false, true);
  const pipeline = new MediaPipeline(leg, clock);
  const run = (ms: number): void => {
    for (let t = 0; t < ms; t += 5) {
      now += 5;
      clock.tick();
    }
  };
  run(180); // slots at 0, 20, … 180: ten of silence
  assert.equal(leg.idles, 10);
  assert.equal(leg.sentFrames.length, 0);
  void pipeline.play(tone(100));
  run(100);
  assert.equal(leg.sentFrames.length, 5, 'five frames of audio');
  assert.equal(leg.idles, 10, 'no silence while the agent speaks');
  run(60);
  assert.equal(leg.idles, 13, 'silence again once the audio ran out');
  assert.equal(leg.sentFrames.length + leg.idles, 18, 'exactly one packet per 20 ms slot in all');
  leg.close('test');
  run(40);
  assert.equal(leg.idles, 13, 'nothing after the leg closed');
  pipeline.close();
});

test('a leg without continuous media (Twilio, Vonage, WebRTC) sends nothing in silent slots', () => {
  const { leg, pipeline, advance } = setup(false);
  advance(200);
  assert.equal(leg.idles, 0);
  assert.equal(leg.sentFrames.length, 0);
  pipeline.close();
});
