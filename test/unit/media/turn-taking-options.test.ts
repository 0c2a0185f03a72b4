import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runHook } from '../../../agents/context.ts';
import type { AgentContext, Utterance } from '../../../agents/sdk.ts';
import type { TurnInput } from '../../../agents/types.ts';
import { DEFAULT_STOP_WORDS, DEFAULT_TURN_TAKING, resolveTurnTaking } from '../../../media/turn-taking.ts';

test('the new turn-taking options: interim text off, a 12 dB duck, the stop words; agents override each; wrong types are refused', () => {
  assert.equal(DEFAULT_TURN_TAKING.utterance.interim, false);
  assert.equal(DEFAULT_TURN_TAKING.bargeIn.duckDb, 12);
  assert.deepEqual(DEFAULT_TURN_TAKING.stopWords, DEFAULT_STOP_WORDS);
  const s = resolveTurnTaking({ utterance: { interim: true }, bargeIn: { duckDb: 0 }, stopWords: ['Halt', ' enough '] });
  assert.equal(s.utterance.interim, true);
  assert.equal(s.bargeIn.duckDb, 0);
  assert.equal(s.bargeIn.minSpeechMs, DEFAULT_TURN_TAKING.bargeIn.minSpeechMs);
  assert.deepEqual(s.stopWords, ['halt', 'enough']);
  assert.deepEqual(resolveTurnTaking({ stopWords: [] }).stopWords, [], 'an empty list turns stop words off');
  assert.throws(() => resolveTurnTaking({ utterance: { interim: 'yes' as unknown as boolean } }), /utterance\.interim/);
  assert.throws(() => resolveTurnTaking({ bargeIn: { duckDb: -3 } }), /duckDb/);
  assert.throws(() => resolveTurnTaking({ stopWords: 'stop' as unknown as string[] }), /stopWords/);
});

test('onUtterance: a turn input without `final` is a final utterance; an interim one says so', async () => {
  const seen: Utterance[] = [];
  const def = { name: 'a', onUtterance: (_ctx: AgentContext, u: Utterance) => void seen.push(u) };
  const base: TurnInput = { hook: 'onUtterance', callId: 'c', turn: 1, call: { from: 'a', to: 'b' }, state: {} };
  await runHook(def, { ...base, utterance: { text: 'hello there', durationMs: 900 } }, {} as AgentContext);
  await runHook(def, { ...base, utterance: { text: 'hello', durationMs: 0, final: false } }, {} as AgentContext);
  await runHook(def, base, {} as AgentContext);
  assert.deepEqual(seen, [
    { text: 'hello there', durationMs: 900, final: true },
    { text: 'hello', durationMs: 0, final: false },
    { text: null, durationMs: 0, final: true },
  ]);
});

test('a deployed agent\'s turnTaking crosses the worker boundary with its stop words list', async () => {
  const { parseFromWorker } = await import('../../../agents/host/protocol.ts');
  const turnTaking = { bargeIn: { duckDb: 6 }, utterance: { interim: true }, stopWords: ['halt'] };
  const msg = parseFromWorker({ type: 'init_done', ok: true, hooks: ['onUtterance'], turnTaking });
  assert.equal(msg.type, 'init_done');
  assert.deepEqual((msg as { turnTaking?: unknown }).turnTaking, turnTaking);
  assert.deepEqual(resolveTurnTaking((msg as { turnTaking?: Parameters<typeof resolveTurnTaking>[0] }).turnTaking).stopWords, ['halt']);
});
