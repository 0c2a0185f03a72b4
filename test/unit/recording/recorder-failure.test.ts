/**
 * Disk errors on the media hot path: ENOSPC (injected with a partial write,
 * and for real on a 64 KiB tmpfs) and EIO on fsync mark the recorder failed —
 * process() never throws, writing stops, the failure is reported once, and
 * every byte flushed before it is still usable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { finalize } from '../../../recording/finalize.ts';
import { Recorder, type RecorderFailure } from '../../../recording/recorder.ts';
import { nodeIo, type RecorderIo } from '../../../recording/segment-writer.ts';
import { scanSegments } from '../../../recording/segments.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { errnoError, ManualClock, mountTinyTmpfs, ToneSource, AGENT_HZ, CALLER_HZ } from './helpers.ts';

const ANSWERED = 42_000;

/** node:fs, except that the segment file takes `budget` bytes and then fails with `code`. */
function faultyIo(opts: { budget?: number; fsyncCode?: string }): RecorderIo & { pcmWrites: number } {
  let pcmFd = -1;
  let left = opts.budget ?? Infinity;
  const io = {
    ...nodeIo,
    pcmWrites: 0,
    openSync(file: string, flags: string, mode?: number): number {
      const fd = nodeIo.openSync(file, flags, mode);
      if (file.endsWith('.pcm')) pcmFd = fd;
      return fd;
    },
    writeSync(fd: number, buf: Uint8Array, off: number, len: number): number {
      if (fd !== pcmFd) return nodeIo.writeSync(fd, buf, off, len);
      io.pcmWrites++;
      if (left <= 0) throw errnoError('ENOSPC');
      const n = nodeIo.writeSync(fd, buf, off, Math.min(len, left)); // a short write first, like a real disk
      left -= n;
      return n;
    },
    fsyncSync(fd: number): void {
      if (fd === pcmFd && opts.fsyncCode) throw errnoError(opts.fsyncCode, 'fsync');
      nodeIo.fsyncSync(fd);
    },
    /** The periodic sync, on the thread pool: the error arrives in a later turn of the event loop. */
    fsync(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
      if (fd === pcmFd && opts.fsyncCode) return void setImmediate(() => done(errnoError(opts.fsyncCode as string, 'fsync')));
      fs.fsync(fd, done);
    },
  };
  return io;
}

function feed(rec: Recorder, clock: ManualClock, ms: number): void {
  const caller = new ToneSource(CALLER_HZ);
  const agent = new ToneSource(AGENT_HZ);
  for (let t = 0; t < ms; t += 20) {
    clock.advance(20);
    assert.doesNotThrow(() => rec.process(caller.frame(), 'caller'));
    assert.doesNotThrow(() => rec.process(agent.frame(), 'agent'));
  }
}

test('ENOSPC: process() never throws, the recorder fails once, flushed bytes stay usable', async () => {
  const dir = path.join(tmpDir('sb-enospc-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const io = faultyIo({ budget: 10_002 });
  const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, io });
  const failures: RecorderFailure[] = [];
  rec.onFailure(() => {
    throw new Error('a broken listener must not reach the media path');
  });
  rec.onFailure((f) => failures.push(f));
  feed(rec, clock, 2000);
  assert.equal(rec.state, 'failed');
  assert.equal(failures.length, 1);
  const f = failures[0]!;
  assert.equal(f.code, 'ENOSPC');
  assert.match(f.reason, /^ENOSPC: no space left on device/);
  assert.equal(f.segment, 'seg-000.pcm');
  assert.equal(f.flushedBytes, 10_002);
  assert.ok(f.atMs > 0 && f.atMs <= 2000);
  assert.deepEqual(rec.failure, f);

  const writes = io.pcmWrites;
  feed(rec, clock, 500);
  rec.tick();
  assert.doesNotThrow(() => rec.pause('pci', 'silence'));
  assert.doesNotThrow(() => rec.resume());
  assert.equal(io.pcmWrites, writes, 'no more writes after the failure');

  const r = rec.close();
  assert.deepEqual(r.failure, f);
  assert.equal(r.segments[0]!.bytes, 10_000, 'the partial sample is not counted');
  assert.equal(fs.statSync(path.join(dir, 'seg-000.pcm')).size, 10_002);
  const scan = scanSegments(dir);
  assert.deepEqual(scan.dropped, [{ file: 'seg-000.pcm', bytes: 2 }]);
  const out = await finalize({ dir, segments: scan.segments });
  assert.equal(out.durationMs, 10_000 / 32);
  let late = 0;
  rec.onFailure(() => late++);
  assert.equal(late, 1, 'a listener added after the failure is told at once');
});

test('EIO on the periodic fsync (off the event loop) fails the recorder the same way', async () => {
  const dir = path.join(tmpDir('sb-eio-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, fsyncIntervalMs: 500, io: faultyIo({ fsyncCode: 'EIO' }) });
  feed(rec, clock, 1000);
  const failureNow = () => rec.failure;
  assert.equal(failureNow(), undefined, 'the fsync runs on the thread pool: its answer comes later');
  // the header is synced on the pool first; audio fsyncs start once it is durable, and the EIO comes back later still
  for (let i = 0; i < 500 && !rec.failure; i++) {
    await new Promise((r) => setTimeout(r, 10));
    feed(rec, clock, 500);
  }
  assert.equal(rec.failure?.code, 'EIO');
  assert.match(rec.failure?.reason ?? '', /EIO/);
  assert.ok(rec.failure!.flushedBytes > 0);
  assert.equal(rec.close().failure?.code, 'EIO');
});

test('real ENOSPC on a 64 KiB tmpfs', async (t) => {
  const mnt = mountTinyTmpfs('64k');
  if (typeof mnt === 'string') return t.skip(mnt);
  try {
    const dir = path.join(mnt.dir, 'rec');
    const clock = new ManualClock(ANSWERED);
    const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false });
    feed(rec, clock, 4000); // 128 KB of audio for 64 KiB of disk
    assert.equal(rec.failure?.code, 'ENOSPC', JSON.stringify(rec.failure));
    const r = rec.close();
    assert.equal(r.failure?.code, 'ENOSPC');
    const scan = scanSegments(dir);
    const seg = scan.segments[0]!;
    assert.ok(seg.bytes > 32_000 && seg.bytes % 4 === 0, `${seg.bytes} bytes usable`);
    assert.equal(seg.bytes, r.segments[0]!.bytes);
    const out = await finalize({ dir, segments: scan.segments });
    assert.equal(out.durationMs, seg.bytes / 32);
  } finally {
    // A periodic fsync still on the thread pool keeps the segment's descriptor until its callback runs.
    await new Promise((r) => setTimeout(r, 50));
    mnt.unmount();
  }
});
