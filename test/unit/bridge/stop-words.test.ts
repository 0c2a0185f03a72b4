/**
 * Stop words (bridge/stop-words.ts) against a real media pipeline on a manual clock: only words heard while the
 * caller speaks over the agent stop it, and only the configured ones, as whole words.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallContext } from '../../../bridge/call-context.ts';
import { StopWords } from '../../../bridge/stop-words.ts';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { DEFAULT_STOP_WORDS } from '../../../media/turn-taking.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';

function setup() {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(false);
  const pipeline = new MediaPipeline(leg, clock);
  const ctx = { pipeline, clockMs: () => now, log: { info: () => undefined } } as unknown as CallContext;
  const stop = new StopWords(ctx, () => DEFAULT_STOP_WORDS);
  stop.watch();
  const advance = (frames: number): void => {
    for (let i = 0; i < frames; i++) {
      now += 20;
      clock.tick();
    }
  };
  const barges: Array<{ stopWord?: boolean; voicedMs: number }> = [];
  pipeline.on('bargeIn', (b) => barges.push({ voicedMs: b.voicedMs, ...(b.stopWord ? { stopWord: true } : {}) }));
  /** Loud caller frames in real time (over the agent when it plays). */
  const speakOverAgent = (frames: number): void => {
    for (let i = 0; i < frames; i++) {
      leg.speak(12000);
      advance(1);
    }
  };
  return { pipeline, advance, speakOverAgent, barges, stop, now: () => now };
}

const said = (text: string, endMs: number) => ({ text, final: false, startMs: endMs - 300, endMs });

test('not armed: speech that started while the agent was quiet, or no speech at all, never stops the agent', () => {
  const s = setup();
  assert.equal(s.pipeline.interruptForStopWord(), false, 'nothing to interrupt');
  s.speakOverAgent(5); // the caller starts speaking while the agent is quiet
  void s.pipeline.play(new Int16Array(8000 * 4).fill(1000));
  s.advance(5);
  assert.equal(s.pipeline.agentSpeaking, true);
  assert.equal(s.stop.heard(said('stop', s.now())), false, 'the agent started over the caller: not the caller barging in');
  assert.deepEqual(s.barges, []);
});

test('the armed case: "okay" passes, "I know" passes, words from seconds before pass, "please stop" interrupts at once', () => {
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(false);
  const pipeline = new MediaPipeline(leg, clock);
  const stop = new StopWords({ pipeline, clockMs: () => now, log: { info: () => undefined } } as unknown as CallContext, () => DEFAULT_STOP_WORDS);
  stop.watch();
  const barges: boolean[] = [];
  pipeline.on('bargeIn', (b) => barges.push(b.stopWord === true));
  const tick = (): void => {
    now += 20;
    clock.tick();
  };
  void pipeline.play(new Int16Array(8000 * 4).fill(1000));
  for (let i = 0; i < 50; i++) tick();
  for (let i = 0; i < 4; i++) (leg.speak(12000), tick());
  assert.equal(stop.heard(said('okay', now)), false);
  assert.equal(stop.heard(said('I know', now)), false, 'whole words only');
  assert.equal(stop.heard(said('no that was Friday', now - 2000)), false, 'a late result of words said before the caller spoke over the agent');
  assert.deepEqual(barges, []);
  assert.equal(stop.heard(said('please stop', now)), true);
  assert.deepEqual(barges, [true], 'interrupted by the stop word, well before minSpeechMs');
  assert.equal(pipeline.agentSpeaking, false);
  assert.equal(stop.heard(said('stop', now)), false, 'once: the agent is quiet now');
});
