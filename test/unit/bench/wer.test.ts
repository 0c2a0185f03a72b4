/**
 * The speech benchmark's word error rate (bench/stt/wer.ts): the edit distance counts substitutions, deletions and
 * insertions once each, normalisation ignores case and punctuation, and a set's rate is Σ errors / Σ words.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { werPercent, wordErrors, words } from '../../../bench/stt/wer.ts';

test('words: lower case, punctuation dropped, apostrophes inside words kept', () => {
  assert.deepEqual(words("  Yes, I'd like   THAT!  'quoted' "), ['yes', "i'd", 'like', 'that', 'quoted']);
  assert.deepEqual(words(''), []);
});

test('wordErrors counts a substitution, a deletion and an insertion once each', () => {
  assert.deepEqual(wordErrors('can you tell me how much', 'can you tell me how much'), { errors: 0, words: 6 });
  assert.deepEqual(wordErrors('can you tell me how much', 'can you sell me how much'), { errors: 1, words: 6 });
  assert.deepEqual(wordErrors('can you tell me how much', 'can you me how much'), { errors: 1, words: 6 });
  assert.deepEqual(wordErrors('can you tell me how much', 'can you tell me uh how much'), { errors: 1, words: 6 });
  assert.deepEqual(wordErrors('yes I agree', ''), { errors: 3, words: 3 });
  assert.deepEqual(wordErrors('', 'noise'), { errors: 1, words: 0 });
  assert.deepEqual(wordErrors('Yes, I agree.', 'yes i agree'), { errors: 0, words: 3 });
});

test('werPercent is Σ errors / Σ words over the set, not the mean of clip rates', () => {
  // clip rates 100 % and 0 %: the mean would be 50 %, the set has 1 error in 5 words
  assert.equal(werPercent([{ errors: 1, words: 1 }, { errors: 0, words: 4 }]), 20);
  assert.equal(werPercent([{ errors: 1, words: 3 }]), 33.3);
  assert.equal(werPercent([]), 0);
});
