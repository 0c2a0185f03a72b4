import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyEnding, EndOfTurnGate, endOfTurnSilenceMs, vadReleaseMs, type Timers } from '../../../bridge/end-of-turn.ts';
import { DEFAULT_TRAILING_WORDS, resolveTurnTaking } from '../../../media/turn-taking.ts';

const T = DEFAULT_TRAILING_WORDS;

test('a sentence ending in . ? ! or a complete clause is complete; a trailing word or comma is not', () => {
  assert.equal(classifyEnding('I would like to book a table.', T), 'complete');
  assert.equal(classifyEnding('Can you hear me?', T), 'complete');
  assert.equal(classifyEnding('book a table for two', T), 'complete', 'a clause of three words without a trailing word');
  assert.equal(classifyEnding('a table for two and', T), 'trailing');
  assert.equal(classifyEnding('um', T), 'trailing');
  assert.equal(classifyEnding('So', T), 'trailing');
  assert.equal(classifyEnding('I want the blue one but', T), 'trailing');
  assert.equal(classifyEnding('I was thinking,', T), 'trailing');
  assert.equal(classifyEnding('well...', T), 'trailing');
  assert.equal(classifyEnding(null, T), 'unknown');
  assert.equal(classifyEnding('   ', T), 'unknown');
  assert.equal(classifyEnding('hello there', T), 'unknown', 'two words without punctuation: nothing to go on');
});

test('the silence that ends a turn: shorter after a complete sentence, longer after a trailing word (per agent)', () => {
  const s = resolveTurnTaking({ endOfTurn: { completeMs: 250, defaultMs: 500, trailingMs: 1500 } }).endOfTurn;
  assert.equal(endOfTurnSilenceMs('That is all, thank you.', s), 250);
  assert.equal(endOfTurnSilenceMs('and then um', s), 1500);
  assert.equal(endOfTurnSilenceMs(null, s), 500);
  assert.equal(vadReleaseMs(s), 250, 'the VAD releases at the shortest, the gate waits the rest');
  const d = resolveTurnTaking(undefined).endOfTurn;
  assert.equal(vadReleaseMs(d), 400, 'the defaults keep the VAD release at 400 ms');
  assert.ok(endOfTurnSilenceMs('so', d) > endOfTurnSilenceMs('Yes, that is right.', d));
});

/** Timers run by hand: `run()` fires what is pending. */
function manualTimers(): Timers & { pending: Array<{ fn: () => void; ms: number }>; run(): void } {
  const pending: Array<{ fn: () => void; ms: number }> = [];
  return {
    pending,
    set: (fn, ms) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clear: (h) => void pending.splice(pending.indexOf(h as { fn: () => void; ms: number }), 1),
    run: () => {
      for (const t of pending.splice(0)) t.fn();
    },
  };
}

test('the gate ends a complete turn at the VAD release, holds a trailing one, and speech resuming cancels the hold', () => {
  const s = resolveTurnTaking({ endOfTurn: { completeMs: 300, defaultMs: 300, trailingMs: 1200 } }).endOfTurn;
  const timers = manualTimers();
  const gate = new EndOfTurnGate(s, vadReleaseMs(s), timers);
  const ended: string[] = [];
  assert.equal(gate.speechEnded('Book it for Friday.', () => ended.push('complete')), 0);
  assert.deepEqual(ended, ['complete']);
  assert.equal(gate.speechEnded('for Friday and', () => ended.push('trailing')), 900);
  assert.deepEqual(ended, ['complete'], 'held');
  assert.equal(gate.speechStarted(), true, 'the caller went on: the hold is cancelled');
  assert.equal(timers.pending.length, 0);
  gate.speechEnded('and um', () => ended.push('trailing-2'));
  timers.run();
  assert.deepEqual(ended, ['complete', 'trailing-2'], 'silence long enough: the turn ends');
  assert.equal(gate.speechStarted(), false);
});
