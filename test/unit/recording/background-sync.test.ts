/**
 * No fsync runs on the event loop while a call records (SegmentWriter): the
 * journal header and directory at segment creation, the periodic fsync and the
 * last one at close all go to the thread pool, so a slow disk never holds the
 * media clock. Audio is synced only once its header is durable; one periodic
 * fsync is in flight at a time while writing carries on; a closed recording's
 * result is final at once, and `whenDurable()` resolves — and the descriptors
 * are released — only when the pool has synced the segment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Recorder } from '../../../recording/recorder.ts';
import { nodeIo, type RecorderIo } from '../../../recording/segment-writer.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { ManualClock, ToneSource, AGENT_HZ, CALLER_HZ } from './helpers.ts';

const ANSWERED = 42_000;

/** node:fs whose background fsyncs wait until the test releases them; counts blocking fsyncs and closes. */
function heldIo() {
  const held: Array<() => Promise<void>> = [];
  const closed: number[] = [];
  let blockingSyncs = 0;
  const io: RecorderIo = {
    ...nodeIo,
    fsyncSync(fd) {
      blockingSyncs++;
      nodeIo.fsyncSync(fd);
    },
    closeSync(fd) {
      closed.push(fd);
      nodeIo.closeSync(fd);
    },
    fsync(fd, done) {
      // released by the test; resolves once the writer has heard the answer
      held.push(() => new Promise<void>((resolve) => fs.fsync(fd, (err) => (done(err), resolve()))));
    },
  };
  return { io, held, closed, blockingSyncs: () => blockingSyncs };
}

function feed(rec: Recorder, clock: ManualClock, ms: number): void {
  const caller = new ToneSource(CALLER_HZ);
  const agent = new ToneSource(AGENT_HZ);
  for (let t = 0; t < ms; t += 20) {
    clock.advance(20);
    rec.process(caller.frame(), 'caller');
    rec.process(agent.frame(), 'agent');
  }
}

test('no fsync on the event loop: header, periodic and closing fsyncs go to the pool, audio only after its header', async () => {
  const dir = path.join(tmpDir('sb-bgsync-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const h = heldIo();
  const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, fsyncIntervalMs: 500, io: h.io });
  assert.equal(h.blockingSyncs(), 0, 'creating the segment blocks on no fsync');
  assert.equal(h.held.length, 1, 'the journal header is synced on the pool');
  feed(rec, clock, 3000); // six sync intervals
  assert.equal(h.held.length, 1, 'no audio fsync before the header is durable');
  const before = fs.statSync(path.join(dir, 'seg-000.pcm')).size;
  assert.ok(before > 32 * 2500, `audio kept flowing to the file meanwhile (${before} bytes)`);
  await h.held.shift()!(); // journal header
  assert.equal(h.held.length, 1, 'then the directory entry');
  const closesBefore = h.closed.length;
  await h.held.shift()!(); // directory
  assert.equal(h.closed.length, closesBefore + 1, 'the directory descriptor is released once synced');

  feed(rec, clock, 3000);
  assert.equal(h.held.length, 1, 'one audio fsync in flight; the later intervals do not pile up behind it');
  await h.held.shift()!();
  feed(rec, clock, 600);
  assert.equal(h.held.length, 1, 'the next interval starts the next background fsync');

  let durable = false;
  const r = rec.close();
  void rec.whenDurable().then(() => (durable = true));
  assert.equal(r.failure, undefined);
  assert.ok(r.durationMs >= 6500, `the result is final at once (${r.durationMs} ms)`);
  assert.equal(h.blockingSyncs(), 0, 'close() blocks on no fsync either');
  assert.equal(h.closed.length, closesBefore + 1, 'nothing is closed while the pool holds the segment');
  await h.held.shift()!(); // the periodic fsync in flight at close
  await new Promise((r) => setImmediate(r)); // finish() hears the pool is idle
  assert.equal(h.held.length, 1, 'close syncs what was written after it once more, on the pool');
  assert.equal(durable, false);
  await h.held.shift()!();
  await rec.whenDurable();
  assert.equal(h.closed.length, closesBefore + 3, 'then the segment and its journal are closed');
  assert.equal(h.blockingSyncs(), 0);
});
