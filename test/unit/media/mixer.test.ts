/**
 * The multi-leg mixer (media/mixer.ts) and its who-hears-whom matrix (media/mix-matrix.ts): each listener gets
 * exactly the sum of what its row names, clipped; a whisper never reaches the caller; a silent or absent leg adds
 * nothing; a refused matrix changes nothing; the recording's tracks follow the matrix.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalMatrix, hears, matrixProblem, recordingTracks, twoParty, type MixMatrix } from '../../../media/mix-matrix.ts';
import { Mixer } from '../../../media/mixer.ts';

const frame = (value: number, n = 160) => new Int16Array(n).fill(value);
const legs = (...ids: Array<[string, MixMatrix['legs'][number]['role']]>) => ids.map(([id, role]) => ({ id, role }));

const WHISPER: MixMatrix = {
  legs: legs(['caller', 'caller'], ['agent', 'agent'], ['sup', 'supervisor']),
  hears: { caller: ['agent'], agent: ['caller', 'sup'], sup: ['caller', 'agent'] },
};

test('two-party: each side hears the other, never itself', () => {
  const m = new Mixer(8000, twoParty());
  m.put('caller', frame(100));
  m.put('agent', frame(-200));
  m.mix();
  assert.deepEqual([...new Set(m.out('caller'))], [-200]);
  assert.deepEqual([...new Set(m.out('agent'))], [100]);
});

test('whisper: the agent hears the caller and the supervisor summed; the caller hears only the agent', () => {
  const m = new Mixer(8000, WHISPER);
  m.put('caller', frame(1000));
  m.put('agent', frame(20));
  m.put('sup', frame(300));
  m.mix();
  assert.deepEqual([...new Set(m.out('caller'))], [20], 'nothing of the supervisor reaches the caller');
  assert.deepEqual([...new Set(m.out('agent'))], [1300]);
  assert.deepEqual([...new Set(m.out('sup'))], [1020]);
});

test('a leg that put nothing this slot is silence; a slot forgets the last one', () => {
  const m = new Mixer(8000, WHISPER);
  m.put('caller', frame(1000));
  m.put('sup', frame(300));
  m.mix();
  assert.deepEqual([...new Set(m.out('caller'))], [0]);
  m.mix();
  assert.deepEqual([...new Set(m.out('agent'))], [0], 'frames are not carried into the next slot');
});

test('sums clip at 16 bits instead of wrapping', () => {
  const m = new Mixer(8000, WHISPER);
  m.put('caller', frame(30000));
  m.put('sup', frame(30000));
  m.put('agent', frame(-30000));
  m.mix();
  assert.deepEqual([...new Set(m.out('agent'))], [32767]);
  m.put('caller', frame(-30000));
  m.put('agent', frame(-30000));
  m.mix();
  assert.deepEqual([...new Set(m.out('sup'))], [-32768]);
});

test('frames of the wrong length are padded or cut; put copies (the leg may reuse its buffer at once)', () => {
  const m = new Mixer(8000, twoParty());
  const mine = frame(7, 100);
  m.put('caller', mine);
  mine.fill(9);
  m.mix();
  const out = m.out('agent');
  assert.equal(out.length, 160);
  assert.equal(out[99], 7);
  assert.equal(out[100], 0);
  m.put('caller', frame(5, 400));
  m.mix();
  assert.equal(m.out('agent').length, 160);
  assert.equal(m.out('agent'), out, 'the same output buffer every slot: nothing allocated per slot');
});

test('a new matrix applies from the next slot and keeps the buffers of legs that stay; a refused one changes nothing', () => {
  const m = new Mixer(8000, twoParty());
  const callerOut = m.out('caller');
  m.setMatrix({ legs: legs(['caller', 'caller'], ['agent', 'agent'], ['hold', 'hold'], ['human', 'human']), hears: { caller: ['hold'], agent: ['human'], human: ['agent'] } });
  assert.equal(m.out('caller'), callerOut);
  m.put('hold', frame(50));
  m.put('agent', frame(60));
  m.put('human', frame(70));
  m.put('caller', frame(80));
  m.mix();
  assert.deepEqual([...new Set(m.out('caller'))], [50], 'the caller hears hold while the agent briefs the human');
  assert.deepEqual([...new Set(m.out('human'))], [60]);
  assert.throws(() => m.setMatrix({ legs: legs(['caller', 'caller']), hears: { caller: ['caller'] } }), /hear itself/);
  assert.deepEqual(m.matrix.hears.caller, ['hold']);
  assert.throws(() => m.put('nobody', frame(1)), /not a leg/);
});

test('matrixProblem refuses what the mixer cannot apply, naming the fault', () => {
  const ok = twoParty();
  assert.equal(matrixProblem(ok), null);
  assert.equal(matrixProblem(WHISPER), null);
  const cases: Array<[MixMatrix, RegExp]> = [
    [{ legs: [], hears: {} }, /at least one/],
    [{ legs: legs(['agent', 'agent']), hears: {} }, /exactly one caller/],
    [{ legs: legs(['caller', 'caller'], ['c2', 'caller']), hears: {} }, /exactly one caller/],
    [{ legs: legs(['caller', 'caller'], ['caller', 'agent']), hears: {} }, /twice/],
    [{ legs: legs(['caller', 'caller'], ['Agent', 'agent']), hears: {} }, /lowercase/],
    [{ legs: legs(['caller', 'caller'], ['x', 'robot' as never]), hears: {} }, /unknown role/],
    [{ legs: legs(['caller', 'caller']), hears: { ghost: ['caller'] } }, /not a leg/],
    [{ legs: legs(['caller', 'caller']), hears: { caller: ['ghost'] } }, /not a leg/],
    [{ legs: legs(['caller', 'caller'], ['hold', 'hold']), hears: { hold: ['caller'] } }, /hold source/],
    [{ legs: legs(['caller', 'caller'], ['agent', 'agent']), hears: { caller: ['agent', 'agent'] } }, /twice/],
    [{ legs: legs(['caller', 'caller'], ['a', 'agent'], ['b', 'human'], ['c', 'human'], ['d', 'human'], ['e', 'human'], ['f', 'human']), hears: {} }, /at most 6/],
  ];
  for (const [m, why] of cases) assert.match(matrixProblem(m) ?? 'accepted', why, JSON.stringify(m));
});

test('the recording follows the matrix: the caller, everyone as the caller heard them, and a whisper on its own track', () => {
  assert.deepEqual(recordingTracks(twoParty()), { caller: 'caller', heardByCaller: ['agent'], aside: [] });
  assert.deepEqual(recordingTracks(WHISPER), { caller: 'caller', heardByCaller: ['agent'], aside: ['sup'] });
  const listen: MixMatrix = { legs: WHISPER.legs, hears: { caller: ['agent'], agent: ['caller'], sup: ['caller', 'agent'] } };
  assert.deepEqual(recordingTracks(listen).aside, [], 'a listening supervisor says nothing to anyone');
  const takeOver: MixMatrix = { legs: WHISPER.legs, hears: { caller: ['sup'], sup: ['caller'], agent: ['caller', 'sup'] } };
  assert.deepEqual(recordingTracks(takeOver), { caller: 'caller', heardByCaller: ['sup'], aside: [] });
  assert.ok(hears(takeOver, 'agent', 'sup') && !hears(takeOver, 'caller', 'agent'));
});

test('canonicalMatrix: the same matrix in any order is the same JSON', () => {
  const a: MixMatrix = { legs: legs(['sup', 'supervisor'], ['caller', 'caller'], ['agent', 'agent']), hears: { sup: ['agent', 'caller'], caller: ['agent'], agent: ['sup', 'caller'], nobody: [] } as never };
  assert.equal(JSON.stringify(canonicalMatrix(a)), JSON.stringify(canonicalMatrix(WHISPER)));
});
