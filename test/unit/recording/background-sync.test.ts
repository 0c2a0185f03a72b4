/**
 * The recorder's periodic fsync runs on the thread pool (SegmentWriter
 * .syncInBackground): a slow disk never holds the media event loop. One fsync
 * is in flight at a time, writing carries on meanwhile, and a recording closed
 * while one is in flight is still synced (blocking, once) and its descriptor
 * released only when the background fsync returns.
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
  const held: Array<() => void> = [];
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
      held.push(() => fs.fsync(fd, done));
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

test('periodic fsyncs go to the thread pool one at a time while audio keeps being written; close syncs once more and frees the descriptor when the pool is done', async () => {
  const dir = path.join(tmpDir('sb-bgsync-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const h = heldIo();
  const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, fsyncIntervalMs: 500, io: h.io });
  const syncsAtOpen = h.blockingSyncs(); // the journal header and the directory, at segment creation
  feed(rec, clock, 3000); // six sync intervals
  assert.equal(h.held.length, 1, 'one background fsync in flight; the later intervals do not pile up behind it');
  assert.equal(h.blockingSyncs(), syncsAtOpen, 'no fsync on the event loop while recording');
  const before = fs.statSync(path.join(dir, 'seg-000.pcm')).size;
  assert.ok(before > 32 * 2500, `audio kept flowing to the file (${before} bytes)`);
  h.held.shift()!();
  await new Promise((r) => setTimeout(r, 20));
  feed(rec, clock, 600);
  assert.equal(h.held.length, 1, 'the next interval starts the next background fsync');

  const closesBefore = h.closed.length;
  const r = rec.close();
  assert.equal(r.failure, undefined);
  assert.equal(h.blockingSyncs(), syncsAtOpen + 1, 'close() makes the segment durable itself');
  assert.equal(h.closed.length, closesBefore + 1, 'the journal closes now; the segment waits for its fsync');
  h.held.shift()!();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.closed.length, closesBefore + 2, 'the segment descriptor is released once the pool returns');
});
