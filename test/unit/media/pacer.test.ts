/**
 * Pacer tests. The clock is driven by hand (`manual: true`, injected `now`,
 * explicit `tick()`), so timing is exact; one short real-time test checks the
 * timer loop itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaClock, PacedStream, type MarkEvent } from '../../../media/pacer.ts';
import type { AudioFrame } from '../../../media/frame.ts';

/** A manual clock whose time is `t.now` ms. */
function fakeClock(opts: { maxCatchUpFrames?: number; onError?: (err: unknown, s: PacedStream) => void } = {}) {
  const t = { now: 1000 };
  const clock = new MediaClock({ manual: true, now: () => t.now, ...opts });
  return { t, clock };
}

/** Records everything a stream emits as readable strings. */
function record(stream: PacedStream): { log: string[]; frames: AudioFrame[] } {
  const log: string[] = [];
  const frames: AudioFrame[] = [];
  stream.onFrame((f) => {
    frames.push(f);
    log.push(`f${f.samples[0]}@${f.timestamp}`);
  });
  stream.on('mark', (m: MarkEvent) => log.push(`${m.cleared ? 'cleared:' : 'mark:'}${m.name}`));
  return { log, frames };
}

/** `n` 20 ms frames at 8 kHz whose samples all equal first, first+1, ... */
function numberedAudio(n: number, first = 1): Int16Array {
  const out = new Int16Array(160 * n);
  for (let i = 0; i < n; i++) out.fill(first + i, i * 160, (i + 1) * 160);
  return out;
}

test('sends one frame per 20 ms slot with a slot-based media timestamp', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(3));
  assert.equal(s.queuedMs, 60);
  clock.start();
  assert.equal(clock.tick(), 1); // slot 0 is due at start
  assert.deepEqual(log, ['f1@0']);
  t.now += 19.9;
  assert.equal(clock.tick(), 0);
  t.now += 0.1;
  clock.tick();
  assert.deepEqual(log, ['f1@0', 'f2@160']);
  assert.equal(s.queuedMs, 20);
  t.now += 40; // one idle slot after the last frame: timestamp keeps counting
  clock.tick();
  s.enqueue(numberedAudio(1, 9));
  t.now += 20;
  clock.tick();
  assert.deepEqual(log, ['f1@0', 'f2@160', 'f3@320', 'f9@640']);
  assert.equal(s.stats.framesSent, 4);
  assert.equal(s.stats.lateFrames, 0);
});

test('a late tick catches up instead of drifting, and counts frames > 40 ms late', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(10));
  clock.start();
  clock.tick(); // slot 0 at t=0
  t.now += 100; // slots 1..5 are due, scheduled 80, 60, 40, 20, 0 ms ago
  assert.equal(clock.tick(), 5);
  assert.equal(log.length, 6);
  assert.equal(s.stats.lateFrames, 2, 'only the frames more than 40 ms late');
  assert.equal(s.stats.maxLatenessMs, 80);
  // Back on the grid: the next slot is due at exactly +120 ms, not 20 ms after the late tick.
  t.now += 19;
  assert.equal(clock.tick(), 0);
  t.now += 1;
  assert.equal(clock.tick(), 1);
  assert.equal(log.at(-1), 'f7@960');
});

test('after a long stall only maxCatchUpFrames slots run; the rest are skipped, not the audio', () => {
  const { t, clock } = fakeClock({ maxCatchUpFrames: 4 });
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(20));
  clock.start();
  clock.tick();
  t.now += 1000; // 50 slots due
  assert.equal(clock.tick(), 4);
  assert.equal(clock.stats.skippedSlots, 46);
  assert.deepEqual(log, ['f1@0', 'f2@160', 'f3@320', 'f4@480', 'f5@640']);
  assert.equal(s.queuedMs, 15 * 20);
});

test('one clock paces many streams in the same tick; add/remove take effect per slot', () => {
  const { t, clock } = fakeClock();
  const a = new PacedStream(8000);
  const b = new PacedStream(16000);
  const ra = record(a);
  const rb = record(b);
  clock.add(a);
  clock.add(b);
  a.enqueue(numberedAudio(5));
  b.enqueue(new Int16Array(320 * 5).fill(7));
  clock.start();
  clock.tick();
  t.now += 40;
  clock.tick();
  assert.equal(ra.frames.length, 3);
  assert.equal(rb.frames.length, 3);
  assert.deepEqual(rb.frames.map((f) => [f.sampleRate, f.samples.length, f.timestamp]), [
    [16000, 320, 0], [16000, 320, 320], [16000, 320, 640],
  ]);
  clock.remove(b);
  assert.equal(clock.size, 1);
  t.now += 20;
  clock.tick();
  assert.equal(ra.frames.length, 4);
  assert.equal(rb.frames.length, 3, 'removed stream is not paced');
  assert.equal(b.queuedMs, 40, 'removed stream keeps its queue');
  const c = new PacedStream(8000);
  const rc = record(c);
  c.enqueue(numberedAudio(1, 50));
  clock.add(c);
  t.now += 20;
  clock.tick();
  assert.deepEqual(rc.log, ['f50@0'], 'a stream added later starts at its own timestamp 0');
  assert.throws(() => new MediaClock({ manual: true }).add(a), /another MediaClock/);
});

test('marks fire right after the frame they follow; a mark on an empty queue fires next slot', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(2), 'greeting');
  s.enqueue(numberedAudio(1, 3), 'second');
  s.mark('third');
  clock.start();
  clock.tick();
  assert.deepEqual(log, ['f1@0']);
  t.now += 20;
  clock.tick();
  assert.deepEqual(log, ['f1@0', 'f2@160', 'mark:greeting']);
  t.now += 20;
  clock.tick();
  assert.deepEqual(log.slice(3), ['f3@320', 'mark:second', 'mark:third']);
  s.mark('idle');
  assert.equal(log.length, 6, 'not fired synchronously');
  t.now += 20;
  clock.tick();
  assert.equal(log.at(-1), 'mark:idle');
  assert.equal(s.stats.marksSent, 4);
});

test('partial frames are joined with later audio, or padded when a mark or an underrun needs them', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const { frames, log } = record(s);
  clock.add(s);
  s.enqueue(new Int16Array(100).fill(1));
  s.enqueue(new Int16Array(100).fill(2)); // 200 samples: one frame + 40 left over
  assert.equal(s.queuedMs, 25);
  s.enqueue({ samples: new Int16Array(20).fill(3), sampleRate: 8000, timestamp: 0 }, 'm');
  assert.equal(s.queuedMs, 40, 'padded to a whole frame because of the mark');
  clock.start();
  clock.tick();
  t.now += 20;
  clock.tick();
  assert.deepEqual(log.slice(1), ['f2@160', 'mark:m']);
  const second = frames[1]?.samples ?? new Int16Array(0);
  assert.deepEqual([second[0], second[39], second[40], second[59], second[60], second[159]], [2, 2, 3, 3, 0, 0]);
  s.enqueue(new Int16Array(50).fill(4)); // underrun: sent padded rather than held forever
  t.now += 20;
  clock.tick();
  assert.equal(frames.length, 3);
  assert.deepEqual([frames[2]?.samples[49], frames[2]?.samples[50]], [4, 0]);
  assert.throws(() => s.enqueue({ samples: new Int16Array(320), sampleRate: 16000, timestamp: 0 }), RangeError);
});

test('enqueue copies the caller buffer', () => {
  const { clock } = fakeClock();
  const s = new PacedStream(8000);
  const { frames } = record(s);
  clock.add(s);
  const buf = numberedAudio(1, 5);
  s.enqueue(buf);
  buf.fill(-1);
  clock.start();
  clock.tick();
  assert.equal(frames[0]?.samples[0], 5);
});

test('clear() drops queued audio, reports the ms dropped and releases pending marks', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(5), 'a');
  s.enqueue(new Int16Array(80), 'b');
  s.enqueue(new Int16Array(40)); // partial, 5 ms
  clock.start();
  clock.tick();
  assert.equal(s.queuedMs, 4 * 20 + 20 + 5);
  assert.equal(s.clear(), 105);
  assert.deepEqual(log, ['f1@0', 'cleared:a', 'cleared:b']);
  assert.equal(s.queuedMs, 0);
  assert.equal(s.stats.droppedMs, 105);
  t.now += 100;
  clock.tick();
  assert.equal(log.length, 3, 'nothing left to send');
  assert.equal(s.clear(), 0);
});

test('a throwing listener is reported and breaks neither the clock nor other streams', () => {
  const reported: unknown[] = [];
  const { t, clock } = fakeClock({ onError: (err) => reported.push(err) });
  const bad = new PacedStream(8000);
  const quiet = new PacedStream(8000); // no 'error' listener: goes to clock.onError
  const good = new PacedStream(8000);
  const errors: unknown[] = [];
  bad.on('error', (err) => errors.push(err));
  bad.onFrame(() => {
    throw new Error('boom');
  });
  const badRecord = record(bad); // a later listener on the same stream still runs
  quiet.on('mark', () => {
    throw new Error('mark listener');
  });
  const goodRecord = record(good);
  for (const s of [bad, quiet, good]) {
    clock.add(s);
    s.enqueue(numberedAudio(3), 'end');
  }
  clock.start();
  clock.tick();
  t.now += 40;
  assert.doesNotThrow(() => clock.tick());
  assert.equal(errors.length, 3);
  assert.match(String(errors[0]), /boom/);
  assert.equal(badRecord.frames.length, 3);
  assert.equal(goodRecord.log.length, 4);
  assert.equal(reported.length, 1);
  assert.match(String(reported[0]), /mark listener/);
  assert.equal(bad.stats.listenerErrors, 3);
  assert.equal(clock.stats.listenerErrors, 1);
});

test('listeners may unsubscribe, clear or stop the clock from inside a callback', () => {
  const { t, clock } = fakeClock();
  const s = new PacedStream(8000);
  const seen: number[] = [];
  const off = s.onFrame((f) => {
    seen.push(f.samples[0] ?? 0);
    off();
  });
  const other: number[] = [];
  s.onFrame((f) => {
    other.push(f.samples[0] ?? 0);
    if (other.length === 2) s.clear();
  });
  clock.add(s);
  s.enqueue(numberedAudio(4));
  clock.start();
  clock.tick();
  t.now += 60;
  clock.tick();
  assert.deepEqual(seen, [1]);
  assert.deepEqual(other, [1, 2]);
  assert.equal(s.stats.framesSent, 2);
  s.enqueue(numberedAudio(3, 10));
  s.onFrame(() => clock.stop());
  t.now += 100;
  assert.equal(clock.tick(), 1, 'stopping inside a listener ends the tick');
  assert.equal(clock.running, false);
  assert.equal(clock.tick(), 0);
});

test('real timer loop paces frames, never ahead of real time (short sanity run)', async (t) => {
  const clock = new MediaClock();
  t.after(() => clock.stop());
  const s = new PacedStream(8000);
  const sentAt: number[] = [];
  s.onFrame(() => sentAt.push(performance.now()));
  clock.add(s);
  s.enqueue(numberedAudio(8), 'done');
  const done = new Promise<void>((resolve) => s.on('mark', () => resolve()));
  const t0 = performance.now();
  clock.start();
  await done;
  clock.stop();
  const elapsed = performance.now() - t0;
  assert.equal(sentAt.length, 8);
  // 8 frames occupy slots 0..7: frame n is due at 20·n ms and never goes out before (a late timer only delays).
  // How close to real time is for the bench; the mocked-timer tests below check the slot arithmetic exactly.
  sentAt.forEach((at, n) => assert.ok(at - t0 >= 20 * n - 1, `frame ${n} sent at ${(at - t0).toFixed(1)} ms, before its slot`));
  // Lower bounds only (never early): a busy machine makes frames later, never earlier, so this cannot flake on load.
  assert.ok(elapsed >= 139, `finished too early: ${elapsed.toFixed(1)} ms`);
});

test('timer loop (mocked timers): one timer, woken at each slot boundary, survives a restart inside a listener', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const clock = new MediaClock({ now: () => now });
  /** Advances fake time and the mocked timers together, 1 ms at a time. */
  const advance = (ms: number) => {
    for (let i = 0; i < ms; i++) {
      now += 1;
      t.mock.timers.tick(1);
    }
  };
  const s = new PacedStream(8000);
  const sent: number[] = [];
  let restarts = 0;
  s.onFrame(() => {
    sent.push(now);
    if (sent.length === 3 && restarts++ === 0) {
      clock.stop();
      clock.start();
    }
  });
  clock.add(s);
  s.enqueue(numberedAudio(12));
  clock.start(); // first timer fires immediately (slot 0 is due)
  t.mock.timers.tick(0);
  advance(100);
  // Slots 0..5 at 0, 20, ... 100 ms; the restart at 40 ms re-anchors the grid at 40 ms.
  assert.deepEqual(sent, [0, 20, 40, 40, 60, 80, 100]);
  // One loop: one tick per slot (plus the restart's immediate one). Two loops would double this.
  assert.equal(clock.stats.ticks, 7);
  // A blocked event loop: the timer due at 120 ms only runs at 170 ms. It catches up
  // (slots at 120, 140, 160 ms) and sleeps just 10 ms, to the 180 ms slot boundary.
  now += 70;
  t.mock.timers.tick(20);
  assert.deepEqual(sent.slice(7), [170, 170, 170]);
  assert.equal(s.stats.lateFrames, 1, 'the 120 ms slot went out 50 ms late');
  advance(9);
  assert.equal(sent.length, 10);
  advance(1);
  assert.deepEqual(sent.slice(10), [180]);
  clock.stop();
  advance(100);
  assert.equal(sent.length, 11);
  assert.equal(clock.stats.ticks, 9, 'no ticks after stop()');
});

test('phases spread streams over sub-slots: each still sends one frame per 20 ms, a tick serves only its phase', () => {
  const t = { now: 1000 };
  const clock = new MediaClock({ manual: true, now: () => t.now, phases: 4 });
  const streams = Array.from({ length: 8 }, () => new PacedStream(8000));
  const sentAt: number[][] = streams.map(() => []);
  streams.forEach((s, i) => {
    s.onFrame(() => sentAt[i]?.push(t.now - 1000));
    clock.add(s);
    s.enqueue(numberedAudio(10));
  });
  clock.start();
  const perTick: number[] = [];
  for (let ms = 0; ms < 100; ms += 5) {
    t.now = 1000 + ms;
    const before = sentAt.flat().length;
    clock.tick();
    perTick.push(sentAt.flat().length - before);
  }
  // 8 streams over 4 phases: two streams per 5 ms tick, never all eight at once.
  assert.deepEqual(perTick, Array(20).fill(2));
  for (const times of sentAt) {
    assert.equal(times.length, 5, 'five frames in 100 ms');
    for (let k = 1; k < times.length; k++) assert.equal((times[k] as number) - (times[k - 1] as number), 20, 'a 20 ms cadence on its own phase');
  }
  assert.deepEqual([...new Set(sentAt.map((ts) => (ts[0] as number) % 20))].sort((a, b) => a - b), [0, 5, 10, 15]);
  assert.equal(clock.stats.slots, 5);
  assert.equal(streams.reduce((n, s) => n + s.stats.lateFrames, 0), 0);
});

test('phases: a new stream takes the least-loaded phase, and lateness is measured from its own phase', () => {
  const t = { now: 0 };
  const clock = new MediaClock({ manual: true, now: () => t.now, phases: 4, maxCatchUpFrames: 10 });
  const a = Array.from({ length: 5 }, () => new PacedStream(8000));
  for (const s of a) clock.add(s);
  for (const s of a.slice(0, 3)) clock.remove(s); // phases 1 and 2 are now empty; 0 and 3 hold one stream each
  const late = new PacedStream(8000);
  clock.add(late);
  late.enqueue(numberedAudio(1));
  const sent: number[] = [];
  late.onFrame(() => sent.push(t.now));
  clock.start();
  t.now = 50; // 45 ms after the phase-1 sub-slot at 5 ms: late (> 40 ms) against its own slot, though not against slot 0 + 40
  clock.tick();
  assert.deepEqual(sent, [50]);
  assert.equal(late.stats.lateFrames, 1);
  // The test's own clock (t.now) set above: an exact figure of the arithmetic, not a measured duration.
  assert.ok(Math.abs(late.stats.maxLatenessMs - 45) < 1e-9, `lateness ${late.stats.maxLatenessMs}`);
});

test('phases: after a long stall the skipped 20 ms slots are counted once, not per sub-slot', () => {
  const t = { now: 0 };
  const clock = new MediaClock({ manual: true, now: () => t.now, phases: 4, maxCatchUpFrames: 4 });
  const s = new PacedStream(8000);
  clock.add(s);
  s.enqueue(numberedAudio(20));
  clock.start();
  clock.tick();
  t.now = 1000; // 50 slots later
  assert.equal(clock.tick(), 16, 'four slots of four sub-slots run');
  assert.equal(clock.stats.skippedSlots, 46);
  assert.throws(() => new MediaClock({ phases: 3 }), /whole divisor of 20/);
});

test('a shut gate holds every stream: due slots pass unsent (counted), the queue is kept, sending resumes when it opens', () => {
  const t = { now: 1000 };
  let open = true;
  const clock = new MediaClock({ manual: true, now: () => t.now, gate: () => open });
  const s = new PacedStream(8000);
  const { log } = record(s);
  clock.add(s);
  s.enqueue(numberedAudio(3));
  clock.start();
  clock.tick();
  assert.deepEqual(log, ['f1@0']);
  open = false;
  t.now += 100; // five slots due while shut
  assert.equal(clock.tick(), 0);
  assert.deepEqual(log, ['f1@0'], 'nothing sent while the gate is shut');
  assert.equal(clock.stats.heldSlots, 5);
  assert.equal(s.queuedMs, 40, 'the queue is kept');
  open = true;
  t.now += 20;
  clock.tick();
  assert.equal(log.length, 2);
  assert.match(log[1] as string, /^f2@/);
});

test('late ticks: a tick that begins more than one sub-slot after the first slot it runs is counted, once per tick', () => {
  const t = { now: 0 };
  const clock = new MediaClock({ manual: true, now: () => t.now, phases: 4, maxCatchUpFrames: 4 });
  const s = new PacedStream(8000);
  clock.add(s);
  s.enqueue(numberedAudio(50));
  clock.start();
  // On time: every 5 ms sub-slot ticked at its own time (the figures are the test's clock, not measured durations).
  for (let ms = 0; ms <= 40; ms += 5) {
    t.now = ms;
    clock.tick();
  }
  assert.equal(clock.stats.lateTicks, 0);
  t.now = 45 + 5; // the 45 ms sub-slot, run exactly one sub-slot late: not late
  clock.tick();
  assert.equal(clock.stats.lateTicks, 0);
  t.now = 55 + 5.5; // the 55 ms sub-slot (and the 60 ms one) run by one tick 5.5 ms after the first was due: one late tick
  assert.equal(clock.tick(), 2);
  assert.equal(clock.stats.lateTicks, 1);
  assert.equal(clock.tick(), 0, 'nothing due');
  assert.equal(clock.stats.lateTicks, 1, 'a tick that runs no slot is not counted');
  t.now = 2000; // a stall: the skipped slots are counted as skipped, the tick that resumes is one late tick
  clock.tick();
  assert.equal(clock.stats.lateTicks, 2);
  assert.ok(clock.stats.skippedSlots > 0);
  assert.equal(clock.tickTimes.count, 12, 'every tick that ran a slot has its time observed');
});
