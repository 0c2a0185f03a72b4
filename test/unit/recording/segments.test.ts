/**
 * Crash recovery: a recorder killed with SIGKILL leaves every flushed byte
 * usable; scanSegments drops a trailing partial sample, reads the journal's
 * start and pauses; a resumed recording gets a new segment and a gap, and the
 * finalized file lasts as long as the call. Plus planTimeline's layout rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { finalize } from '../../../recording/finalize.ts';
import { Recorder } from '../../../recording/recorder.ts';
import { planTimeline, resumeGap, scanSegments } from '../../../recording/segments.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { labelsIn, ManualClock, splitMuLawWav, splitPcm, ToneSource, windows, CALLER_HZ } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./recorder-child.ts', import.meta.url));

test('kill -9 mid-recording: every flushed byte is usable and a resumed recording fills the gap', async () => {
  const dir = path.join(tmpDir('sb-kill-'), 'rec');
  const answered = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(answered)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let flushed = 0;
  let childStartMs = NaN;
  for await (const line of readline.createInterface({ input: child.stdout })) {
    const [word, n] = line.split(' ');
    if (word === 'ready') childStartMs = Number(n);
    if (word === 'flushed') flushed = Number(n);
    if (flushed >= 24_000) break; // ≥ 750 ms on disk
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const scan = scanSegments(dir);
  assert.equal(scan.segments.length, 1);
  const seg0 = scan.segments[0]!;
  assert.equal(seg0.file, 'seg-000.pcm');
  assert.equal(seg0.startMs, childStartMs, 'start comes from the journal');
  assert.ok(seg0.bytes >= flushed, `${seg0.bytes} bytes on disk, ${flushed} reported flushed`);
  assert.equal(seg0.bytes % 4, 0);
  assert.equal(scan.nextIndex, 1);
  const { left } = splitPcm(fs.readFileSync(path.join(dir, seg0.file)).subarray(0, seg0.bytes));
  const labels = windows(left);
  const tone = labels.filter((l) => l === 'caller').length;
  assert.ok(tone >= labels.length * 0.8, `flushed audio is the caller tone (${tone}/${labels.length} windows)`);

  // The call resumes 2 s after the answer on a new segment.
  const clock = new ManualClock(answered + Math.max(2000, Math.ceil(scan.endMs) + 500));
  const rec = new Recorder({ dir, startedAtMs: answered, nowMs: clock.now, segmentIndex: scan.nextIndex, autoTick: false });
  const gap = resumeGap(scan.segments, rec.startMs);
  assert.ok(gap, 'a gap is recorded');
  assert.equal(gap.startMs, scan.endMs);
  assert.equal(gap.endMs, rec.startMs);
  const tone2 = new ToneSource(CALLER_HZ);
  for (let i = 0; i < 25; i++) {
    clock.advance(20);
    rec.process(tone2.frame(), 'caller');
  }
  const r = rec.close();
  assert.equal(r.segments[0]!.file, 'seg-001.pcm');
  const fin = await finalize({ dir, segments: [...scan.segments, ...r.segments], gaps: [gap], pauses: [...scan.pauses, ...r.pauses] });
  assert.ok(Math.abs(fin.durationMs - r.endMs) <= 100, `file ${fin.durationMs} ms, call ${r.endMs} ms`);
  const out = windows(splitMuLawWav(fin.data).left);
  assert.deepEqual(labelsIn(out, gap.startMs + 20, gap.endMs - 20), new Set(['silence']), 'the gap is silence');
  assert.deepEqual(labelsIn(out, gap.endMs + 20, r.endMs - 20), new Set(['caller']), 'resumed audio after the gap');
});

test('scanSegments drops a trailing partial sample, tolerates a torn journal line and closes an open pause', () => {
  const dir = path.join(tmpDir('sb-scan-'), 'rec');
  const answered = 1_000_000;
  const clock = new ManualClock(answered + 100);
  const rec = new Recorder({ dir, startedAtMs: answered, nowMs: clock.now, autoTick: false });
  const tone = new ToneSource(CALLER_HZ);
  for (let i = 0; i < 30; i++) {
    clock.advance(20);
    if (i === 20) rec.pause('pci', 'skip');
    rec.process(tone.frame(), 'caller');
  }
  clock.advance(300);
  rec.tick(); // flushes; no close(): the process "dies" here
  const flushed = rec.flushedBytes;
  assert.equal(flushed, 20 * 640);
  fs.appendFileSync(path.join(dir, 'seg-000.pcm'), Buffer.from([1, 2, 3])); // a torn write
  fs.appendFileSync(path.join(dir, 'seg-000.log'), '{"kind":"resu'); // a torn journal line
  fs.writeFileSync(path.join(dir, 'seg-004.log'), ''); // a journal whose .pcm was never created

  const scan = scanSegments(dir);
  assert.deepEqual(scan.segments, [{ file: 'seg-000.pcm', startMs: 100, durationMs: 400, bytes: flushed, skippedMs: 0 }]);
  assert.deepEqual(scan.dropped, [{ file: 'seg-000.pcm', bytes: 3 }]);
  assert.equal(scan.endMs, 500);
  assert.deepEqual(scan.pauses, [{ startMs: 520, endMs: 520, reason: 'pci', mode: 'skip' }], 'open at the crash: ends where the flushed audio does, or at its start');
  assert.equal(scan.nextIndex, 5, 'an index whose journal exists is never reused');
  assert.match(scan.problems.join('\n'), /seg-000\.log: 1 unreadable line/);
  assert.deepEqual(scanSegments(path.join(dir, 'missing')).segments, []);
});

test('planTimeline: lead silence, crash gaps, skipped pauses, tail gap and overlap', () => {
  const t = planTimeline(
    [
      { file: 'seg-001.pcm', startMs: 1500, durationMs: 500, bytes: 500 * 32, skippedMs: 200 },
      { file: 'seg-000.pcm', startMs: 100, durationMs: 900, bytes: 900 * 32 },
    ],
    [{ startMs: 1000, endMs: 1500 }, { startMs: 2200, endMs: 2600 }],
  );
  assert.deepEqual(
    t.pieces.map((p) => [p.kind, p.atMs, p.frames / 8, p.kind === 'silence' ? p.cause : p.file]),
    [
      ['silence', 0, 100, 'lead'],
      ['audio', 100, 900, 'seg-000.pcm'],
      ['silence', 1000, 500, 'gap'],
      ['audio', 1500, 500, 'seg-001.pcm'],
      ['silence', 2200, 400, 'gap'],
    ],
  );
  assert.equal(t.durationMs, 2400, 'the call (2600 ms) minus the skipped 200 ms');
  assert.equal(t.endMs, 2600);
  assert.equal(t.skippedMs, 200);

  // skippedMs worked out from pauses when a segment lacks it; overlapping audio is kept, not dropped.
  const u = planTimeline(
    [
      { file: 'seg-000.pcm', startMs: 0, durationMs: 1000, bytes: 1000 * 32 },
      { file: 'seg-001.pcm', startMs: 1100, durationMs: 100, bytes: 100 * 32 },
    ],
    [],
    [{ startMs: 500, endMs: 700, reason: 'pci', mode: 'skip' }, { startMs: 800, endMs: 900, reason: 'x', mode: 'silence' }],
  );
  assert.equal(u.skippedMs, 200);
  assert.equal(u.overlapMs, 100);
  assert.equal(u.durationMs, 1100);
  assert.deepEqual(u.pieces.map((p) => p.atMs), [0, 1200]);
  assert.throws(() => planTimeline([{ file: 'x.pcm', startMs: 0, durationMs: 0, bytes: 6 }]), /whole number of stereo samples/);
});
