/**
 * What counts for consent (consent/grammar.ts), the withdrawal watcher (consent/withdrawal.ts) and what a policy
 * does after a decline (consent/phase.ts `declineAction`): the keys, the evidence, and the call's next step.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { answerForDigit, answerForSpeech, WITHDRAWAL_PHRASES } from '../../../consent/grammar.ts';
import { declineAction } from '../../../consent/phase.ts';
import type { PolicyRow } from '../../../consent/stage.ts';
import { spokenWithdrawal, watchWithdrawal } from '../../../consent/withdrawal.ts';
import type { MediaPipeline } from '../../../media/pipeline.ts';
import type { SttResult } from '../../../speech/stt.ts';
import { spotPhrase } from '../../../speech/vocabulary.ts';

const result = (over: Partial<SttResult>): SttResult => ({ text: '', isFinal: true, startMs: 100, endMs: 600, confidence: 0.9, words: [], ...over });

test('keys 1 and 2 answer yes and no with the digit as evidence; other keys are no answer', () => {
  assert.deepEqual(answerForDigit('1', 'rfc4733', 1234), { answer: 'yes', method: 'dtmf', evidence: { digit: '1', source: 'rfc4733', at_ms: 1234 } });
  assert.equal(answerForDigit('2', 'inband', 5)?.answer, 'no');
  for (const d of ['0', '3', '9', '*', '#']) assert.equal(answerForDigit(d, 'provider', 0), null, d);
});

test('a final spoken yes/no is an answer with its words timed on the recording clock; interims and other text are not', () => {
  const yes = answerForSpeech(result({ text: 'yes', words: [{ word: 'yes', startMs: 100, endMs: 300 }, { word: 'i', startMs: 300, endMs: 400 }] }), 2000);
  assert.deepEqual(yes, { answer: 'yes', method: 'speech', evidence: { words: 'yes i', at_ms: 2100, end_ms: 2600, confidence: 0.9 } });
  assert.equal(answerForSpeech(result({ text: 'no' }), 0)?.evidence.words, 'no', 'no word timings: the text is the evidence');
  assert.equal(answerForSpeech(result({ text: 'yes', isFinal: false }), 0), null);
  assert.equal(answerForSpeech(result({ text: 'maybe' }), 0), null);
});

test('the withdrawal phrases are spotted inside a longer utterance, and only a final result carrying one withdraws', () => {
  assert.equal(spotPhrase('okay please stop the recording now', WITHDRAWAL_PHRASES), 'stop the recording');
  assert.equal(spotPhrase('stop recording', WITHDRAWAL_PHRASES), 'stop recording');
  assert.equal(spotPhrase('keep recording', WITHDRAWAL_PHRASES), null);
  assert.deepEqual(spokenWithdrawal(result({ text: 'stop recording', phrase: 'stop recording' }), 500), { words: 'stop recording', at_ms: 600 });
  assert.equal(spokenWithdrawal(result({ text: 'stop recording' }), 0), null, 'no phrase: an ordinary sentence');
  assert.equal(spokenWithdrawal(result({ text: 'stop recording', phrase: 'stop recording', isFinal: false }), 0), null);
});

test('*9 withdraws once; a 9 alone, *9 too slow, or another key between does not', () => {
  const media = new EventEmitter();
  const pipeline = {
    on: (event: string, l: (d: unknown) => void) => {
      media.on(event, l);
      return () => void media.off(event, l);
    },
  } as unknown as Pick<MediaPipeline, 'on'>;
  let now = 0;
  const got: Array<Record<string, unknown>> = [];
  const off = watchWithdrawal(pipeline, (e) => got.push(e), () => now);
  const press = (digit: string, at: number): void => {
    now = at;
    media.emit('dtmf', { digit, source: 'rfc4733' });
  };
  press('9', 0);
  press('*', 100);
  press('1', 200);
  press('9', 300);
  assert.equal(got.length, 0, 'a key between * and 9 breaks the sequence');
  press('*', 1000);
  press('9', 5000);
  assert.equal(got.length, 0, '9 more than 3 s after *');
  press('*', 6000);
  press('9', 7000);
  assert.deepEqual(got, [{ sequence: '*9', source: 'rfc4733' }]);
  off();
  press('*', 8000);
  press('9', 8100);
  assert.equal(got.length, 1, 'nothing after unsubscribing');
});

test('after a decline the policy continues unrecorded, transfers on a redirect leg, or hangs up with a reason', () => {
  const policy = (on_decline: PolicyRow['on_decline'], transfer_target: string | null = null) => ({ on_decline, transfer_target }) as PolicyRow;
  assert.deepEqual(declineAction(undefined, 'declined', true), { kind: 'continue' });
  assert.deepEqual(declineAction(policy('continue-unrecorded'), 'no_response', true), { kind: 'continue' });
  assert.deepEqual(declineAction(policy('hangup'), 'withdrawn', true), { kind: 'continue' }, 'a withdrawal keeps the call');
  assert.deepEqual(declineAction(policy('hangup'), 'declined', false), { kind: 'hangup', reason: 'consent declined', prompt: 'Thank you for calling. Goodbye.' });
  assert.deepEqual(declineAction(policy('transfer', '+15550001111'), 'declined', true), { kind: 'transfer', target: '+15550001111', prompt: 'Please hold while we connect you.' });
  const cannot = declineAction(policy('transfer', '+15550001111'), 'no_response', false);
  assert.deepEqual(cannot, { kind: 'hangup', reason: 'consent no_response: transfer to +15550001111 is not possible on this call', prompt: 'Thank you for calling. Goodbye.' });
  assert.equal(declineAction(policy('transfer', null), 'declined', true).kind, 'hangup', 'transfer without a target ends the call');
});
