/**
 * The Opus encoding thread (ingress/webrtc/opus-thread.ts): what comes back is
 * exactly what the in-thread encoder makes (same bytes, same order, per leg,
 * with legs interleaved in one batch), the tag rides with its frame, short
 * frames are zero-padded, a closed encoder delivers nothing more, a leg
 * with MAX_IN_FLIGHT_FRAMES frames on the thread has more refused until they
 * come back, a batch older than the age bound comes back stale, and the
 * in-thread path (the fallback) gives the same packets synchronously.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OPUS_FRAME, OpusDecoder, OpusEncoder } from '../../../ingress/webrtc/opus.ts';
import { MAX_IN_FLIGHT_FRAMES, opusThreadSettings, ThreadedOpusEncoder } from '../../../ingress/webrtc/opus-thread.ts';

// Exact packets are compared: a machine loaded enough to stall the thread 100 ms must not make a batch stale here.
opusThreadSettings.maxBatchAgeMs = 60_000;

const frame = (hz: number, f: number, n = OPUS_FRAME): Int16Array =>
  new Int16Array(n).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * hz * (f * OPUS_FRAME + i)) / 16000)));

interface Got {
  packet: Buffer | null;
  tag: number;
  error: string | null;
}

/** `done` resolves once `n` packets reached the sink, `upTo(k)` once k have (a lost packet leaves them pending: the test runner's timeout fails it). */
function collector(n: number): { sink: (p: Buffer | null, tag: number, e: string | null) => void; done: Promise<Got[]>; upTo: (k: number) => Promise<void> } {
  const got: Got[] = [];
  const waiters: Array<{ k: number; resolve: () => void }> = [];
  const sink = (packet: Buffer | null, tag: number, error: string | null): void => {
    got.push({ packet: packet ? Buffer.from(packet) : null, tag, error });
    for (const w of waiters.filter((x) => got.length >= x.k)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  };
  const upTo = (k: number): Promise<void> => (got.length >= k ? Promise.resolve() : new Promise((resolve) => waiters.push({ k, resolve })));
  return { sink, done: upTo(n).then(() => got), upTo };
}

test('Opus thread: three legs interleaved in the same ticks get back, in order, the very packets the in-thread encoder makes, each with its tag', async () => {
  const FRAMES = 60;
  const legs = [300, 440, 1000].map((hz, k) => ({ hz, complexity: [0, 5, 10][k] as number, c: collector(FRAMES) }));
  const encoders = legs.map((l) => new ThreadedOpusEncoder(l.c.sink, { complexity: l.complexity }));
  assert.ok(encoders.every((e) => e.threaded), 'the encoding thread started');
  for (let f = 0; f < FRAMES; f++) {
    for (const [k, l] of legs.entries()) (encoders[k] as ThreadedOpusEncoder).encode(frame(l.hz, f), f * 10 + k);
    // A tick boundary now and then: batches of one frame per leg and batches of several (fewer than the
    // in-flight bound: each batch is awaited back before the next).
    if (f % 7 === 0) await Promise.all(legs.map((l) => l.c.upTo(f + 1)));
  }
  for (const [k, l] of legs.entries()) {
    const got = await l.c.done;
    const ref = new OpusEncoder({ complexity: l.complexity });
    for (let f = 0; f < FRAMES; f++) {
      const g = got[f] as Got;
      assert.equal(g.error, null);
      assert.equal(g.tag, f * 10 + k, `leg ${k} frame ${f}: tag`);
      assert.deepEqual(g.packet, ref.encode(frame(l.hz, f)), `leg ${k} frame ${f}: the same bytes as in-thread`);
    }
    ref.close();
    (encoders[k] as ThreadedOpusEncoder).close();
  }
});

test('Opus thread: a short frame is zero-padded to 20 ms (as in-thread) and decodes to one frame', async () => {
  const c = collector(2);
  const enc = new ThreadedOpusEncoder(c.sink);
  enc.encode(frame(440, 0, 100), 1);
  enc.encode(frame(440, 1), 2);
  const got = await c.done;
  const ref = new OpusEncoder();
  assert.deepEqual(got[0]?.packet, ref.encode(frame(440, 0, 100)));
  assert.deepEqual(got[1]?.packet, ref.encode(frame(440, 1)));
  const dec = new OpusDecoder();
  assert.equal(dec.decode(got[0]?.packet as Buffer).length, 1);
  enc.close();
  ref.close();
  dec.close();
});

test('Opus thread: frames given after close, or still in flight at close, are never delivered', async () => {
  const seen: number[] = [];
  const enc = new ThreadedOpusEncoder((_p, tag) => seen.push(tag));
  enc.encode(frame(440, 0), 1);
  enc.close();
  enc.encode(frame(440, 1), 2);
  // A second encoder's packet coming back proves the thread answered the batch the first one was in.
  const c = collector(1);
  const other = new ThreadedOpusEncoder(c.sink);
  other.encode(frame(440, 0), 9);
  assert.equal((await c.done)[0]?.tag, 9);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, []);
  other.close();
});

test('Opus thread: in-thread (the fallback when the thread cannot run) delivers the same packets synchronously', () => {
  const got: Array<Buffer | null> = [];
  const enc = new ThreadedOpusEncoder((p) => got.push(p ? Buffer.from(p) : null), { inThread: true });
  assert.equal(enc.threaded, false);
  const ref = new OpusEncoder();
  for (let f = 0; f < 5; f++) {
    enc.encode(frame(700, f), f);
    assert.equal(got.length, f + 1, 'delivered before encode returned');
    assert.deepEqual(got[f], ref.encode(frame(700, f)));
  }
  enc.close();
  enc.encode(frame(700, 9), 9);
  assert.equal(got.length, 5);
  ref.close();
});

test('Opus thread: a leg with MAX_IN_FLIGHT_FRAMES frames on the thread has further frames refused, and is taken again once they are back', async () => {
  const c = collector(MAX_IN_FLIGHT_FRAMES);
  const enc = new ThreadedOpusEncoder(c.sink);
  // All given in one synchronous block: none can have come back yet.
  const accepted = Array.from({ length: MAX_IN_FLIGHT_FRAMES + 5 }, (_, f) => enc.encode(frame(440, f), f));
  assert.deepEqual(accepted, [...Array<boolean>(MAX_IN_FLIGHT_FRAMES).fill(true), ...Array<boolean>(5).fill(false)]);
  assert.deepEqual((await c.done).map((g) => g.tag), Array.from({ length: MAX_IN_FLIGHT_FRAMES }, (_, f) => f));
  const again = collector(1);
  const other = new ThreadedOpusEncoder(again.sink);
  assert.equal(other.encode(frame(440, 0), 7), true, 'another leg is not affected');
  assert.equal(enc.encode(frame(440, 99), 99), true, 'taken again');
  await again.done;
  enc.close();
  other.close();
});

test('Opus thread: a batch that reaches the thread later than the age bound comes back stale (no packet, no error), and the next is encoded', async () => {
  opusThreadSettings.maxBatchAgeMs = -1; // every batch is "too old"
  try {
    const c = collector(1);
    const enc = new ThreadedOpusEncoder(c.sink);
    enc.encode(frame(440, 0), 5);
    assert.deepEqual(await c.done, [{ packet: null, tag: 5, error: null }]);
    opusThreadSettings.maxBatchAgeMs = 60_000;
    const d = collector(1);
    const enc2 = new ThreadedOpusEncoder(d.sink);
    enc2.encode(frame(440, 0), 6);
    assert.ok(((await d.done)[0]?.packet?.length ?? 0) > 2);
    enc.close();
    enc2.close();
  } finally {
    opusThreadSettings.maxBatchAgeMs = 60_000;
  }
});
