import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline, type PlayResult } from '../../../media/pipeline.ts';
import { BargeInGate, DEFAULT_TURN_TAKING, isBackchannelText, resolveTurnTaking } from '../../../media/turn-taking.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';

function setup(minSpeechMs?: number) {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(true);
  const turnTaking = minSpeechMs === undefined ? undefined : resolveTurnTaking({ bargeIn: { minSpeechMs } });
  const pipeline = new MediaPipeline(leg, clock, turnTaking ? { turnTaking } : {});
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t += 20) {
      now += 20;
      clock.tick();
    }
  };
  return { leg, pipeline, advance };
}

const tone = (ms: number): Int16Array => new Int16Array((8000 * ms) / 1000).fill(1000);

test('a short acknowledgement over the agent is a backchannel: the agent keeps speaking to the end', async () => {
  const { leg, pipeline, advance } = setup();
  const events: string[] = [];
  pipeline.on('bargeIn', () => events.push('barge'));
  pipeline.on('backchannel', (b) => events.push(`backchannel:${b.voicedMs}`));
  let done: PlayResult | null = null;
  void pipeline.play(tone(3000)).then((r) => (done = r));
  advance(600);
  for (let i = 0; i < 12; i++) leg.speak(12000); // "uh-huh": 240 ms voiced
  for (let i = 0; i < 25; i++) leg.speak(0); // the VAD's 400 ms release
  assert.deepEqual(events, ['backchannel:240']);
  assert.equal(leg.clears, 0, 'the far end was not told to clear');
  const before = leg.sentFrames.length;
  advance(200);
  assert.ok(leg.sentFrames.length > before, 'agent audio still flows');
  advance(2400);
  for (const m of [...leg.sentMarks]) leg.echo(m);
  await new Promise((r) => setImmediate(r));
  assert.equal((done as PlayResult | null)?.interrupted, false);
  assert.equal(pipeline.stats.backchannels, 1);
  assert.equal(pipeline.stats.bargeIns, 0);
});

test('sustained speech interrupts once it has been voiced for bargeIn.minSpeechMs', async () => {
  const { leg, pipeline, advance } = setup(500);
  const voiced: number[] = [];
  pipeline.on('bargeIn', (b) => voiced.push(b.voicedMs));
  const result = pipeline.play(tone(3000));
  advance(400);
  for (let i = 0; i < 24; i++) leg.speak(12000); // 480 ms: still under the agent's 500 ms
  assert.deepEqual(voiced, []);
  leg.speak(12000);
  assert.deepEqual(voiced, [500]);
  assert.equal((await result).interrupted, true);
  assert.equal(leg.clears, 1);
});

test('speech that outlives the agent audio is an ordinary utterance, neither barge-in nor backchannel', () => {
  const { leg, pipeline, advance } = setup();
  const events: string[] = [];
  pipeline.on('bargeIn', () => events.push('barge'));
  pipeline.on('backchannel', () => events.push('backchannel'));
  pipeline.on('speechEnd', () => events.push('end'));
  void pipeline.play(tone(100));
  leg.speak(12000);
  leg.speak(12000);
  leg.speak(12000); // speech starts (60 ms attack) while the 100 ms play is queued
  advance(200);
  for (const m of [...leg.sentMarks]) leg.echo(m);
  leg.speak(12000); // the agent has finished: the gate lets go
  for (let i = 0; i < 25; i++) leg.speak(0);
  assert.deepEqual(events, ['end']);
});

test('bargeIn.enabled false: nothing interrupts the agent', () => {
  const gate = new BargeInGate({ enabled: false, minSpeechMs: 0 });
  assert.equal(gate.speechStarted(true, 60), null);
  assert.equal(gate.frame(20, true), null);
  assert.equal(gate.speechEnded(), null);
});

test('agent options merge over the defaults; wrong types are refused', () => {
  const s = resolveTurnTaking({ bargeIn: { minSpeechMs: 500 }, endOfTurn: { trailingMs: 2000 } });
  assert.equal(s.bargeIn.minSpeechMs, 500);
  assert.equal(s.bargeIn.enabled, true);
  assert.equal(s.endOfTurn.trailingMs, 2000);
  assert.equal(s.endOfTurn.completeMs, DEFAULT_TURN_TAKING.endOfTurn.completeMs);
  assert.deepEqual(resolveTurnTaking(undefined), DEFAULT_TURN_TAKING);
  assert.throws(() => resolveTurnTaking({ bargeIn: { minSpeechMs: -1 } }), /minSpeechMs/);
  assert.throws(() => resolveTurnTaking({ backchannel: { words: 'yeah' as unknown as string[] } }), /words/);
});

test('backchannel words: acknowledgements match, anything else does not', () => {
  const list = DEFAULT_TURN_TAKING.backchannel.words;
  for (const t of ['Uh-huh.', 'okay', 'yeah yeah', 'Mm.', 'uh huh, right', 'OK!']) assert.equal(isBackchannelText(t, list), true, t);
  for (const t of ['stop', 'wait a second', 'okay but no', '', 'yeah I want to cancel']) assert.equal(isBackchannelText(t, list), false, t);
});
