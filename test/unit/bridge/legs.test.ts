/**
 * The media of a call with several legs (bridge/legs.ts), on a manual media clock with in-memory legs: two-party
 * bypasses the mixer (the pipeline sends as it always did); a warm transfer's matrices decide per slot what each leg
 * gets — the caller hears the hold tone and not the human, the human hears the agent's words and not the caller,
 * bridged they hear each other and the agent is out — and the recorder's agent channel is what the caller heard.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline, type FrameTap } from '../../../media/pipeline.ts';
import { CallLegs } from '../../../bridge/legs.ts';
import { HUMAN_LEG, WARM } from '../../../bridge/legs-matrix.ts';
import { twoParty } from '../../../media/mix-matrix.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';

const log = pino({ level: 'silent' });
const peak = (s: Int16Array): number => s.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function setup() {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const caller = new MemoryLeg(false, true);
  const human = new MemoryLeg(false, true);
  const pipeline = new MediaPipeline(caller, clock, { bargeIn: false });
  const recorded: Int16Array[] = [];
  const tap: FrameTap = { name: 'rec', process: (f, ch) => void (ch === 'agent' && recorded.push(f.samples.slice())) };
  pipeline.addTap(tap);
  const legs = new CallLegs(caller, pipeline, clock, log);
  /** One slot: each far end sends one frame first (amplitudes: caller 1000, human 9000; 0 = silence). */
  const slot = (callerAmp = 0, humanAmp = 0): void => {
    caller.speak(callerAmp);
    human.speak(humanAmp);
    now += 20;
    clock.tick();
  };
  return { clock, caller, human, pipeline, legs, recorded, slot };
}

test('two-party: no mixer, the pipeline sends idle slots itself', () => {
  const { caller, legs, slot } = setup();
  assert.equal(legs.mixed, false);
  for (let i = 0; i < 5; i++) slot(1000);
  assert.equal(caller.sentFrames.length, 0);
  assert.ok(caller.idles >= 5);
});

test('warm transfer matrices: hold, brief, bridged, and back to two-party', async () => {
  const { caller, human, legs, pipeline, recorded, slot } = setup();
  legs.addLeg(HUMAN_LEG, human);
  legs.setMatrix(WARM.hold());
  assert.equal(legs.mixed, true);
  const idlesBefore = caller.idles;
  for (let i = 0; i < 10; i++) slot(1000, 9000);
  assert.equal(caller.idles, idlesBefore, 'mixed: the pipeline sends no idle packets of its own');
  assert.ok(caller.sentFrames.length >= 9, 'one frame per slot to the caller');
  assert.ok(caller.sentFrames.slice(-5).every((f) => peak(f) > 1000 && peak(f) <= 4000), 'the caller hears the hold tone, not the human (9000)');
  assert.equal(human.sentFrames.length, 0, 'the human, not yet in the matrix, is sent nothing and mixed into nothing');

  legs.setMatrix(WARM.brief());
  const said = legs.speak(new Int16Array(800).fill(2500)); // 100 ms of the summary
  for (let i = 0; i < 8; i++) slot(1000, 0);
  await said;
  assert.ok(human.sentFrames.slice(-8).some((f) => peak(f) === 2500), 'the human hears the summary');
  assert.ok(caller.sentFrames.slice(-8).every((f) => peak(f) !== 2500), 'the caller never hears the summary');

  legs.setMatrix(WARM.bridged());
  const agentWords = pipeline.play(new Int16Array(800).fill(3333));
  for (let i = 0; i < 10; i++) slot(1000, 9000);
  await agentWords;
  assert.ok(caller.sentFrames.slice(-5).every((f) => peak(f) > 8000), 'bridged: the caller hears the human');
  assert.ok(human.sentFrames.slice(-5).every((f) => peak(f) > 900 && peak(f) <= 1000), 'bridged: the human hears the caller');
  assert.ok([...caller.sentFrames, ...human.sentFrames].every((f) => peak(f) !== 3333), 'the agent has left the audio');
  assert.ok(recorded.slice(-5).every((f) => peak(f) > 8000), "the recorder's agent channel is what the caller heard");

  legs.setMatrix(twoParty());
  assert.equal(legs.mixed, false);
  const sent = caller.sentFrames.length;
  const back = pipeline.play(new Int16Array(160).fill(1234));
  for (let i = 0; i < 3; i++) slot(1000, 9000);
  await back;
  assert.deepEqual(caller.sentFrames.slice(sent).map(peak), [1234], 'two-party again: the agent straight to the caller');
  legs.close();
});

test('a matrix naming a leg that was not added is refused and changes nothing', () => {
  const { legs } = setup();
  assert.throws(() => legs.setMatrix(WARM.brief()), /human-1/);
  assert.equal(legs.mixed, false);
});
