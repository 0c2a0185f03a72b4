/**
 * Recorder tests: dual-channel alignment on the recording clock (caller tone
 * left, agent tone right), agent-driven blocks while the caller stalls, idle
 * catch-up, resampled input, pause silence vs skip, write-through flushing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Recorder } from '../../../recording/recorder.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { labelsIn, ManualClock, splitPcm, ToneSource, windows, AGENT_HZ, CALLER_HZ } from './helpers.ts';

const ANSWERED = 1_700_000_000_000;

function setup(opts: { startAfterMs?: number } = {}) {
  const clock = new ManualClock(ANSWERED + (opts.startAfterMs ?? 0));
  const dir = path.join(tmpDir('sb-rec-'), 'rec');
  const rec = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false });
  return { clock, dir, rec, caller: new ToneSource(CALLER_HZ), agent: new ToneSource(AGENT_HZ) };
}

function channels(dir: string, file = 'seg-000.pcm') {
  const { left, right } = splitPcm(fs.readFileSync(path.join(dir, file)));
  return { left: windows(left), right: windows(right) };
}

test('caller left and agent right land at their offsets; agent drives the timeline while the caller stalls', () => {
  const { clock, dir, rec, caller, agent } = setup();
  // t in (0, 1000]: caller every 20 ms; agent speaks over (400, 800]. Agent frame first on odd ticks,
  // caller first on even ones: the order within a tick must not matter.
  for (let t = 20; t <= 1000; t += 20) {
    clock.t = ANSWERED + t;
    const speaking = t > 400 && t <= 800;
    if (speaking && t % 40 === 20) rec.process(agent.frame(), 'agent');
    rec.process(caller.frame(), 'caller');
    if (speaking && t % 40 === 0) rec.process(agent.frame(), 'agent');
  }
  // (1000, 1500]: caller stalls, agent speaks.
  for (let t = 1020; t <= 1500; t += 20) {
    clock.t = ANSWERED + t;
    rec.process(agent.frame(), 'agent');
  }
  // (1500, 2000]: caller only. (2000, 2400]: nothing at all. (2400, 2600]: caller.
  for (let t = 1520; t <= 2000; t += 20) {
    clock.t = ANSWERED + t;
    rec.process(caller.frame(), 'caller');
  }
  for (let t = 2420; t <= 2600; t += 20) {
    clock.t = ANSWERED + t;
    rec.process(caller.frame(), 'caller');
  }
  const result = rec.close();
  assert.equal(result.failure, undefined);
  assert.equal(result.segments.length, 1);
  const seg = result.segments[0]!;
  assert.equal(seg.startMs, 0);
  // The recording's length by the test's own clock and frames (audio time), not a wall-clock duration.
  assert.ok(Math.abs(result.durationMs - 2600) <= 20, `duration ${result.durationMs}`);
  assert.equal(seg.bytes, (result.durationMs * 8000 * 4) / 1000);
  assert.equal(fs.statSync(path.join(dir, seg.file)).size, seg.bytes);

  const { left, right } = channels(dir);
  assert.deepEqual(labelsIn(left, 0, 1000), new Set(['caller']));
  assert.deepEqual(labelsIn(left, 1020, 1500), new Set(['silence']));
  assert.deepEqual(labelsIn(left, 1520, 2000), new Set(['caller']));
  assert.deepEqual(labelsIn(left, 2020, 2400), new Set(['silence']));
  assert.deepEqual(labelsIn(left, 2420, 2600), new Set(['caller']));
  assert.deepEqual(labelsIn(right, 0, 400), new Set(['silence']));
  assert.deepEqual(labelsIn(right, 440, 800), new Set(['agent']));
  assert.deepEqual(labelsIn(right, 840, 1000), new Set(['silence']));
  assert.deepEqual(labelsIn(right, 1020, 1500), new Set(['agent']));
  assert.deepEqual(labelsIn(right, 1540, 2600), new Set(['silence']));
  // Agent onset within one block of 400 ms.
  const onset = right.indexOf('agent') * 20;
  assert.ok(onset >= 400 && onset <= 420, `agent starts at ${onset} ms`);
  assert.ok(rec.stats.agentBlocks >= 20 && rec.stats.fillBlocks >= 15, JSON.stringify(rec.stats));
});

test('a late start is placed on the recording clock; frames at 48 kHz are resampled to 8 kHz', () => {
  const { clock, dir, rec } = setup({ startAfterMs: 5000 });
  const caller = new ToneSource(CALLER_HZ, 48000);
  const agent = new ToneSource(AGENT_HZ, 16000);
  for (let i = 1; i <= 50; i++) {
    clock.advance(20);
    rec.process(caller.frame(), 'caller');
    rec.process(agent.frame(), 'agent');
  }
  const r = rec.close();
  assert.equal(r.segments[0]!.startMs, 5000);
  // The last agent frame arrived after the last caller block: close() writes it rather than drop it.
  assert.equal(r.endMs, 6020);
  assert.equal(r.durationMs, 1020);
  const { left, right } = channels(dir);
  assert.deepEqual(labelsIn(left, 20, 1000), new Set(['caller']));
  assert.deepEqual(labelsIn(right, 40, 1000), new Set(['agent']));
});

test('pause in silence mode writes zeros for the interval and keeps the timeline', () => {
  const { clock, dir, rec, caller, agent } = setup();
  for (let t = 20; t <= 1000; t += 20) {
    clock.t = ANSWERED + t;
    if (t === 320) assert.equal(rec.pause('pci', 'silence'), true);
    if (t === 620) assert.equal(rec.resume(), true);
    rec.process(caller.frame(), 'caller');
    rec.process(agent.frame(), 'agent');
  }
  assert.equal(rec.pause('x', 'skip'), true);
  assert.equal(rec.pause('again', 'silence'), false, 'already paused');
  clock.t = ANSWERED + 1000;
  const r = rec.close();
  assert.equal(r.durationMs, 1000);
  assert.deepEqual(r.pauses[0], { startMs: 320, endMs: 620, reason: 'pci', mode: 'silence' });
  assert.deepEqual(r.pauses[1], { startMs: 1000, endMs: 1000, reason: 'x', mode: 'skip' }, 'an open pause closes at close()');
  const { left, right } = channels(dir);
  // The frame delivered at 320 carries (300, 320] and the one at 620 carries (600, 620]: both are
  // suppressed, so the silence covers the whole pause conservatively.
  assert.deepEqual(labelsIn(left, 0, 300), new Set(['caller']));
  assert.deepEqual(labelsIn(left, 300, 620), new Set(['silence']));
  assert.deepEqual(labelsIn(right, 300, 620), new Set(['silence']));
  assert.deepEqual(labelsIn(left, 620, 1000), new Set(['caller']));
  assert.deepEqual(labelsIn(right, 640, 1000), new Set(['agent']));
  assert.equal(r.segments[0]!.skippedMs, 0);
});

test('pause in skip mode writes nothing for the interval and records it as skipped', () => {
  const { clock, dir, rec, caller } = setup();
  for (let t = 20; t <= 1000; t += 20) {
    clock.t = ANSWERED + t;
    if (t === 320) rec.pause('pci', 'skip');
    if (t === 620) rec.resume();
    rec.process(caller.frame(), 'caller');
  }
  const r = rec.close();
  assert.equal(r.durationMs, 700, 'audio is shorter than the call by the skipped 300 ms');
  assert.equal(r.endMs, 1000, 'but ends where the call is');
  assert.equal(r.segments[0]!.skippedMs, 300);
  assert.deepEqual(r.pauses, [{ startMs: 320, endMs: 620, reason: 'pci', mode: 'skip' }]);
  const { left } = channels(dir);
  assert.equal(left.length, 35);
  // Frames delivered at 320..600 are dropped; the one at 620 (carrying 600..620) is silenced.
  assert.deepEqual(labelsIn(left, 0, 300), new Set(['caller']));
  assert.deepEqual(left[15], 'silence');
  assert.deepEqual(labelsIn(left, 320, 700), new Set(['caller']));
  const journal = fs.readFileSync(path.join(dir, 'seg-000.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(journal.map((e: { kind: string }) => e.kind), ['segment', 'pause', 'resume']);
});

test('audio is written through to the file within the flush interval, before close', () => {
  const { clock, dir, rec, caller } = setup();
  const file = path.join(dir, 'seg-000.pcm');
  let firstSeenAt: number | undefined;
  for (let t = 20; t <= 600; t += 20) {
    clock.t = ANSWERED + t;
    rec.process(caller.frame(), 'caller');
    if (firstSeenAt === undefined && fs.statSync(file).size > 0) firstSeenAt = t;
  }
  assert.ok(firstSeenAt !== undefined && firstSeenAt <= 220, `first bytes on disk at ${firstSeenAt} ms`);
  const size = fs.statSync(file).size;
  assert.ok(size >= (400 * 32) && size === rec.flushedBytes, `${size} bytes flushed after 600 ms`);
  // The idle tick flushes too.
  rec.process(caller.frame(), 'caller');
  clock.advance(250);
  rec.tick();
  assert.equal(fs.statSync(file).size, rec.flushedBytes);
  assert.ok(rec.flushedBytes >= 620 * 32);
  rec.close();
});

test('a segment index that already exists is a failure, not an overwrite', () => {
  const { dir, rec } = setup();
  rec.close();
  const clock = new ManualClock(ANSWERED + 10);
  const again = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, segmentIndex: 0 });
  assert.equal(again.state, 'failed');
  assert.equal(again.failure?.code, 'EEXIST');
  let told = '';
  again.onFailure((f) => (told = f.reason));
  assert.match(told, /EEXIST/);
  assert.doesNotThrow(() => again.process(new ToneSource(CALLER_HZ).frame(), 'caller'));
  assert.deepEqual(again.close().segments, [], 'the existing segment is not claimed');
  assert.equal(fs.statSync(path.join(dir, 'seg-000.pcm')).size, 0, 'nor touched');
});
