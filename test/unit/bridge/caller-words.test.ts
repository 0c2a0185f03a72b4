/**
 * A turn carries the words of its own utterance however late the recogniser is. Before, a turn waited 1,500 ms,
 * then went without words ("Sorry, I did not catch that") and the late words were handed to the NEXT turn, so the
 * agent answered the previous sentence and the real request was never delivered.
 *
 * A manual clock (`now`, and node:test's mocked setTimeout) stands for time; positions are ms of caller audio.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { CallerWords } from '../../../bridge/caller-words.ts';

function harness(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const words = new CallerWords({ now: () => now });
  words.attach();
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => queueMicrotask(r));
  };
  return {
    words,
    /** The caller talks (or is quiet) for `ms` of audio, in real time. */
    async pass(ms: number) {
      for (let done = 0; done < ms; done += 20) {
        words.audio(20);
        now += 20;
        t.mock.timers.tick(20);
        await flush();
      }
    },
    /** A take() whose result can be looked at when it settles. */
    track(p: Promise<string | null>) {
      const s: { done: boolean; text: string | null } = { done: false, text: null };
      void p.then((text) => Object.assign(s, { done: true, text }));
      return s;
    },
  };
}

test('a recogniser 3 s late: the turn waits for its words (the old fixed 1.5 s wait gave it none)', async (t) => {
  const h = harness(t);
  await h.pass(2000); // "I need an appointment", 0.4–1.6 s; the VAD releases at 2.0 s
  h.words.utteranceEnded();
  const turn = h.track(h.words.take());
  await h.pass(3000);
  assert.equal(turn.done, false, 'still waiting for the recogniser');
  h.words.add({ text: 'I need an appointment', startMs: 400, endMs: 1600 });
  await h.pass(20);
  assert.deepEqual(turn, { done: true, text: 'I need an appointment' });
});

test('words that come after their turn gave up are never handed to a later turn', async (t) => {
  const h = harness(t);
  await h.pass(2000);
  h.words.utteranceEnded();
  const first = h.track(h.words.take());
  await h.pass(h.words.waitBoundMs + 100); // the recogniser is later than any bound
  assert.deepEqual(first, { done: true, text: null });
  h.words.add({ text: 'I need an appointment', startMs: 400, endMs: 1600 }); // first sentence, too late
  await h.pass(2000); // second sentence 7.6–9.0 s …
  h.words.utteranceEnded();
  const second = h.track(h.words.take());
  h.words.add({ text: 'on Tuesday please', startMs: h.words['heardMs'] - 1800, endMs: h.words['heardMs'] - 500 });
  await h.pass(20);
  assert.deepEqual(second, { done: true, text: 'on Tuesday please' }, 'the second turn gets its own words only');
  assert.equal(h.words.lateDropped, 1);
});

test('the bound adapts: it grows after a slow result, and shrinks back to the floor for a fast recogniser', async (t) => {
  const h = harness(t);
  const initial = h.words.waitBoundMs;
  // Fast recogniser: results 200 ms after each utterance end.
  for (let i = 0; i < 8; i++) {
    await h.pass(1500);
    h.words.utteranceEnded();
    const turn = h.track(h.words.take());
    await h.pass(200);
    h.words.add({ text: `fast ${i}`, startMs: h.words['heardMs'] - 1400, endMs: h.words['heardMs'] - 600 });
    await h.pass(20);
    assert.deepEqual(turn, { done: true, text: `fast ${i}` });
  }
  assert.equal(h.words.waitBoundMs, 1500, 'the floor: a noise utterance with no words costs 1.5 s, not the initial 5 s');
  assert.ok(initial > 1500);
  // A noise utterance: the recogniser reports nothing; the turn gives up at the bound, with no words.
  await h.pass(1000);
  h.words.utteranceEnded();
  const noise = h.track(h.words.take());
  await h.pass(1600);
  assert.deepEqual(noise, { done: true, text: null });
  // Then the recogniser slows to 4 s: the first slow turn misses, and its late result raises the bound past 4 s.
  await h.pass(1500);
  h.words.utteranceEnded();
  const missed = h.track(h.words.take());
  await h.pass(4000);
  h.words.add({ text: 'slow one', startMs: h.words['heardMs'] - 5400, endMs: h.words['heardMs'] - 4600 });
  assert.deepEqual(missed, { done: true, text: null });
  assert.ok(h.words.waitBoundMs > 4000, `bound ${h.words.waitBoundMs} ms after a 4 s result`);
  await h.pass(1500);
  h.words.utteranceEnded();
  const caught = h.track(h.words.take());
  await h.pass(4000);
  h.words.add({ text: 'slow two', startMs: h.words['heardMs'] - 5400, endMs: h.words['heardMs'] - 4600 });
  await h.pass(20);
  assert.deepEqual(caught, { done: true, text: 'slow two' });
});

test('two utterances before the turn runs are one turn; an empty final result ends the wait; no recogniser: null at once', async (t) => {
  const h = harness(t);
  await h.pass(1200);
  h.words.utteranceEnded();
  await h.pass(1200);
  h.words.utteranceEnded();
  h.words.add({ text: 'first part', startMs: 100, endMs: 800 });
  const turn = h.track(h.words.take());
  await h.pass(200);
  assert.equal(turn.done, false, 'the second part is not reported yet');
  h.words.add({ text: 'second part', startMs: 1300, endMs: 2000 });
  await h.pass(20);
  assert.deepEqual(turn, { done: true, text: 'first part second part' });

  await h.pass(1000);
  h.words.utteranceEnded();
  const cough = h.track(h.words.take());
  h.words.add({ text: '', startMs: 2400, endMs: 3300 });
  await h.pass(20);
  assert.deepEqual(cough, { done: true, text: null });

  const none = new CallerWords();
  assert.equal(await none.take(), null);
});
