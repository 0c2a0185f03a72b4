/**
 * The bridge's own timers are guarded like the media timers (media/guard.ts): a callback that throws is handed to
 * the owner's error handler (logged) and contained, instead of reaching the event loop and ending the process
 * with every call on it — and the timer keeps working afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoopLag, type LoopDelayHistogram } from '../../../bridge/admission.ts';
import { SilenceClock } from '../../../bridge/silence.ts';

/** Both timers are unref'd (they never hold a gateway open); the test holds the loop open while it waits. */
function holdLoop(): () => void {
  const t = setInterval(() => undefined, 1000);
  return () => clearInterval(t);
}

test('a silence clock whose onSilence throws reports the error and can be armed again', async (t) => {
  t.after(holdLoop());
  const errors: unknown[] = [];
  let fired = 0;
  let failed: () => void = () => undefined;
  let next = new Promise<void>((r) => (failed = r));
  const clock = new SilenceClock(
    5,
    () => {
      fired++;
      throw new Error(`agent hook queue broke (${fired})`);
    },
    (err) => {
      errors.push(err);
      failed();
    },
  );
  clock.arm();
  await next;
  assert.match((errors[0] as Error).message, /queue broke \(1\)/);
  next = new Promise<void>((r) => (failed = r));
  clock.arm();
  await next;
  assert.equal(fired, 2, 'the clock still runs after a failed callback');
  assert.equal(errors.length, 2);
  clock.clear();
});

test('a loop-delay window whose reading throws is reported, the window still resets, and later windows read', async (t) => {
  t.after(holdLoop());
  const errors: unknown[] = [];
  let reads = 0;
  let resets = 0;
  const histogram: LoopDelayHistogram = {
    enable: () => true,
    disable: () => true,
    reset: () => void resets++,
    percentile: () => {
      reads++;
      if (reads === 1) throw new Error('histogram unreadable');
      return 60e6; // 60 ms recorded = 50 ms of delay
    },
  };
  const lag = new LoopLag(5, { histogram, onError: (err) => errors.push(err) });
  try {
    const deadline = Date.now() + 10_000;
    while (lag.p99Ms === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(errors.length, 1);
    assert.match((errors[0] as Error).message, /histogram unreadable/);
    assert.ok(Math.abs(lag.p99Ms - 50) < 1e-9, `a later window reads (${lag.p99Ms})`);
    assert.ok(resets >= 2, 'the failed window was reset too');
  } finally {
    lag.stop();
  }
});
