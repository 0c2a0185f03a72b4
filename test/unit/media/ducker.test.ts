/**
 * The barge-in cue (media/ducker.ts, media/pipeline.ts) on a manual media clock: everything is counted in frames.
 * The agent plays a steady tone (amplitude 1000); the caller's frames are a loud tone or silence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DUCK_DOWN_FRAMES, DUCK_UP_FRAMES, Ducker } from '../../../media/ducker.ts';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { resolveTurnTaking } from '../../../media/turn-taking.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';

const peak = (s: Int16Array): number => s.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const last = (s: Int16Array): number => s[s.length - 1] as number;

test('the ducker ramps down in DUCK_DOWN_FRAMES frames, back up in DUCK_UP_FRAMES, and is a no-op at full level', () => {
  const d = new Ducker(12);
  const frame = new Int16Array(160).fill(1000);
  assert.equal(d.process(frame), frame, 'unity: the frame itself, no copy');
  assert.equal(d.duck(), true);
  assert.equal(d.duck(), false, 'already ducked');
  const floor = Math.round(1000 * Ducker.gainOf(12));
  assert.equal(floor, 251);
  const down = Array.from({ length: DUCK_DOWN_FRAMES }, () => d.process(frame));
  assert.ok((down[0] as Int16Array)[0]! < 1000 && (down[0] as Int16Array)[0]! > floor, 'the first frame starts the ramp');
  assert.equal(last(down.at(-1) as Int16Array), floor, 'at the depth after the ramp');
  assert.equal(peak(d.process(frame)), floor, 'and stays there');
  assert.equal(frame[0], 1000, 'the input frame is not changed');
  d.release();
  const up = Array.from({ length: DUCK_UP_FRAMES }, () => d.process(frame));
  for (let i = 1; i < up.length; i++) assert.ok(last(up[i] as Int16Array) > last(up[i - 1] as Int16Array), 'rising frame by frame');
  assert.equal(last(up.at(-1) as Int16Array), 1000);
  assert.equal(d.process(frame), frame, 'back at unity');
  d.duck();
  d.process(frame);
  d.reset();
  assert.equal(d.process(frame), frame, 'reset: full level at once');
  const off = new Ducker(0);
  assert.equal(off.duck(), false, 'depth 0: off');
  assert.equal(off.process(frame), frame);
});

function setup(options: Parameters<typeof resolveTurnTaking>[0] = {}) {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(true);
  const pipeline = new MediaPipeline(leg, clock, { turnTaking: resolveTurnTaking(options) });
  const advance = (frames: number): void => {
    for (let i = 0; i < frames; i++) {
      now += 20;
      clock.tick();
    }
  };
  const events: string[] = [];
  pipeline.on('duck', (d) => events.push(`duck:${d.depthDb}`));
  pipeline.on('bargeIn', (b) => events.push(`barge:${b.duckDb}`));
  pipeline.on('backchannel', (b) => events.push(`backchannel:${b.duckDb}`));
  /** The level the last agent frame sent to the caller ends at. */
  const heard = (): number => Math.abs(last(leg.sentFrames.at(-1) as Int16Array));
  return { leg, pipeline, advance, events, heard };
}

const tone = (ms: number): Int16Array => new Int16Array((8000 * ms) / 1000).fill(1000);

test('the first voiced frame over the agent ducks it within DUCK_DOWN_FRAMES frames; a backchannel ramps it back', () => {
  const { leg, pipeline, advance, events, heard } = setup();
  void pipeline.play(tone(4000));
  advance(10);
  assert.equal(heard(), 1000);
  leg.speak(12000); // the first voiced frame: before the VAD's attack has started speech
  assert.deepEqual(events, ['duck:12']);
  advance(DUCK_DOWN_FRAMES);
  assert.equal(heard(), 251, 'the caller hears the agent 12 dB down two frames later');
  for (let i = 0; i < 11; i++) leg.speak(12000); // "uh-huh": 240 ms voiced in all
  for (let i = 0; i < 25; i++) leg.speak(0); // the VAD's 400 ms release
  assert.deepEqual(events, ['duck:12', 'backchannel:12'], 'the decision records the duck');
  advance(DUCK_UP_FRAMES);
  assert.equal(heard(), 1000, 'back at full level');
  assert.equal(leg.clears, 0);
});

test('sustained speech: ducked at once, interrupted at minSpeechMs; the next say starts at full level', async () => {
  const { leg, pipeline, advance, events, heard } = setup({ bargeIn: { minSpeechMs: 400 } });
  const first = pipeline.play(tone(4000));
  advance(5);
  for (let i = 0; i < 5; i++) {
    leg.speak(12000);
    advance(1);
  }
  assert.equal(heard(), 251);
  for (let i = 0; i < 15; i++) leg.speak(12000);
  assert.deepEqual(events, ['duck:12', 'barge:12']);
  assert.equal((await first).interrupted, true);
  void pipeline.play(tone(1000));
  advance(2);
  assert.equal(heard(), 1000);
});

test('a voiced blip that never becomes speech is released; duckDb 0 and bargeIn.enabled false never duck', () => {
  const blip = setup();
  void blip.pipeline.play(tone(4000));
  blip.advance(5);
  blip.leg.speak(12000);
  blip.leg.speak(0);
  blip.advance(DUCK_UP_FRAMES + DUCK_DOWN_FRAMES);
  assert.deepEqual(blip.events, ['duck:12']);
  assert.equal(blip.heard(), 1000, 'released once the caller was quiet again');

  for (const opts of [{ bargeIn: { duckDb: 0 } }, { bargeIn: { enabled: false } }]) {
    const off = setup(opts);
    void off.pipeline.play(tone(4000));
    off.advance(5);
    for (let i = 0; i < 10; i++) {
      off.leg.speak(12000);
      off.advance(1);
    }
    assert.equal(off.heard(), 1000, JSON.stringify(opts));
    assert.equal(off.pipeline.stats.ducks, 0);
  }
});
