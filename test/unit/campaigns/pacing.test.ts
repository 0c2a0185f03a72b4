/** The token bucket (campaigns/pacing.ts) and the retry backoff (schema/campaigns.ts), with injected time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../../campaigns/pacing.ts';
import { minIntervalMs, retryableOutcome, retryDelayMs } from '../../../schema/campaigns.ts';

test('burst 1 at 5/s: one take every 200 ms, never two inside one interval', () => {
  const b = new TokenBucket(5, 1, 0);
  const taken: number[] = [];
  for (let t = 0; t <= 2000; t += 10) if (b.tryTake(t)) taken.push(t);
  assert.deepEqual(taken, [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000]);
  assert.equal(minIntervalMs(5), 200);
  assert.equal(minIntervalMs(3), 334, 'rounded up: 3 decisions never fit in 1000 ms');
});

test('nextAt says when a token comes; spentAt moves the refill to the committed time', () => {
  const b = new TokenBucket(2, 1, 0);
  assert.equal(b.tryTake(100), true);
  assert.equal(b.nextAt(100), 600);
  b.spentAt(130); // the decision committed at 130
  assert.equal(b.nextAt(200), 630);
  assert.equal(b.tryTake(629), false);
  assert.equal(b.tryTake(630), true);
});

test('a larger burst banks tokens up to the burst only', () => {
  const b = new TokenBucket(1, 3, 0);
  assert.equal([b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)].filter(Boolean).length, 3);
  assert.equal(b.tryTake(10_000), true);
  assert.equal([b.tryTake(10_000), b.tryTake(10_000), b.tryTake(10_000)].filter(Boolean).length, 2, 'refilled to 3, not 10');
});

test('busy and no-answer are retried, with a doubling backoff capped at a day', () => {
  assert.equal(retryableOutcome('sip:busy'), true);
  assert.equal(retryableOutcome('sip:no-answer'), true);
  assert.equal(retryableOutcome('busy'), true);
  assert.equal(retryableOutcome('sip:declined'), false);
  assert.equal(retryableOutcome('answered'), false);
  assert.equal(retryableOutcome(null), false);
  assert.deepEqual([1, 2, 3, 4].map((k) => retryDelayMs(60_000, k)), [60_000, 120_000, 240_000, 480_000]);
  assert.equal(retryDelayMs(3_600_000, 10), 24 * 3_600_000);
});

test('a refunded token is there again at once', () => {
  const b = new TokenBucket(5, 1, 0);
  assert.equal(b.tryTake(0), true);
  b.refund();
  assert.equal(b.tryTake(0), true);
  assert.equal(b.tryTake(0), false);
});
