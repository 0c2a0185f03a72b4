/**
 * Finalize: µ-law WAV written by hand (header checked byte by byte and by
 * ffprobe), duration within 100 ms of the timeline including a crash gap,
 * skip pauses left out, Ogg/Opus and MP3 through ffmpeg, and the WAV fallback
 * when ffmpeg is missing or fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { finalize } from '../../../recording/finalize.ts';
import { Recorder } from '../../../recording/recorder.ts';
import { resumeGap, scanSegments } from '../../../recording/segments.ts';
import type { Interval, PauseInterval, SegmentInfo } from '../../../recording/types.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import {
  ffmpegDecode, ffprobe, labelsIn, ManualClock, splitMuLawWav, splitPcm, ToneSource, windows, AGENT_HZ, CALLER_HZ,
} from './helpers.ts';

const ANSWERED = 5_000_000;

interface Fixture {
  dir: string;
  segments: SegmentInfo[];
  gaps: Interval[];
  pauses: PauseInterval[];
  callEndMs: number;
}

/**
 * A call: caller tone over (0, 1000] with the agent over (200, 600]; the
 * process dies at 1000 (flushed, never closed); the call resumes at 1500 and
 * the caller speaks until 2500.
 */
function crashedCall(): Fixture {
  const dir = path.join(tmpDir('sb-fin-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const caller = new ToneSource(CALLER_HZ);
  const agent = new ToneSource(AGENT_HZ);
  const first = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false });
  for (let t = 20; t <= 1000; t += 20) {
    clock.t = ANSWERED + t;
    if (t > 200 && t <= 600) rec(first, agent, 'agent');
    rec(first, caller, 'caller');
  }
  clock.advance(300);
  first.tick(); // flush; then the process dies
  const scan = scanSegments(dir);
  clock.t = ANSWERED + 1500;
  const second = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, segmentIndex: scan.nextIndex });
  const gap = resumeGap(scan.segments, second.startMs);
  assert.ok(gap);
  for (let t = 1520; t <= 2500; t += 20) {
    clock.t = ANSWERED + t;
    rec(second, caller, 'caller');
  }
  const r = second.close();
  return { dir, segments: [...scan.segments, ...r.segments], gaps: [gap], pauses: r.pauses, callEndMs: r.endMs };
}

function rec(r: Recorder, src: ToneSource, ch: 'caller' | 'agent'): void {
  r.process(src.frame(), ch);
}

test('WAV: µ-law stereo, correct header, duration of the call including the crash gap', async () => {
  const f = crashedCall();
  assert.equal(f.callEndMs, 2500);
  const out = await finalize({ dir: f.dir, segments: f.segments, gaps: f.gaps, pauses: f.pauses });
  assert.equal(out.format, 'wav');
  assert.equal(out.warning, undefined);
  assert.equal(out.mimeType, 'audio/wav');
  assert.equal(out.sha256, createHash('sha256').update(out.data).digest('hex'));
  assert.ok(Math.abs(out.durationMs - 2500) <= 100, `duration ${out.durationMs}`);

  const d = out.data;
  assert.equal(d.toString('ascii', 0, 4), 'RIFF');
  assert.equal(d.readUInt32LE(4), d.length - 8);
  assert.equal(d.toString('ascii', 8, 16), 'WAVEfmt ');
  assert.equal(d.readUInt16LE(20), 7, 'WAVE_FORMAT_MULAW');
  assert.equal(d.readUInt16LE(22), 2, 'channels');
  assert.equal(d.readUInt32LE(24), 8000, 'sample rate');
  assert.equal(d.readUInt32LE(28), 16000, 'byte rate');
  assert.equal(d.readUInt16LE(32), 2, 'block align');
  assert.equal(d.readUInt16LE(34), 8, 'bits per sample');
  assert.equal(d.toString('ascii', 50, 54), 'data');
  assert.equal(d.readUInt32LE(54), d.length - 58);
  assert.equal((d.length - 58) / 2 / 8, out.durationMs, 'data length = duration');

  const probe = ffprobe(d, 'wav');
  assert.equal(probe.streams.length, 1);
  const s = probe.streams[0]!;
  assert.equal(s.codec_name, 'pcm_mulaw');
  assert.equal(s.channels, 2);
  assert.equal(s.sample_rate, '8000');
  assert.ok(Math.abs(Number(s.duration) * 1000 - f.callEndMs) <= 100, `ffprobe duration ${s.duration}`);

  const { left, right } = splitMuLawWav(d);
  const l = windows(left);
  const r = windows(right);
  assert.deepEqual(labelsIn(l, 0, 1000), new Set(['caller']));
  assert.deepEqual(labelsIn(l, 1000, 1500), new Set(['silence']), 'gap filled with silence');
  assert.deepEqual(labelsIn(l, 1520, 2500), new Set(['caller']));
  assert.deepEqual(labelsIn(r, 240, 600), new Set(['agent']), 'agent on the right');
  assert.deepEqual(labelsIn(r, 640, 2500), new Set(['silence']));
});

test('skip pauses are absent from the file; silence pauses are in it', async () => {
  const dir = path.join(tmpDir('sb-fin-skip-'), 'rec');
  const clock = new ManualClock(ANSWERED);
  const caller = new ToneSource(CALLER_HZ);
  const r = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false });
  for (let t = 20; t <= 2000; t += 20) {
    clock.t = ANSWERED + t;
    if (t === 520) r.pause('pci', 'skip');
    if (t === 1020) r.resume();
    if (t === 1520) r.pause('withdrawn', 'silence');
    if (t === 1820) r.resume();
    rec(r, caller, 'caller');
  }
  const res = r.close();
  const out = await finalize({ dir, segments: res.segments, gaps: [], pauses: res.pauses });
  assert.equal(out.timeline.skippedMs, 500);
  assert.equal(out.durationMs, 1500, '2000 ms call minus the 500 ms skipped');
  const l = windows(splitMuLawWav(out.data).left);
  assert.equal(l.length, 75);
  assert.deepEqual(labelsIn(l, 0, 500), new Set(['caller']));
  assert.deepEqual(labelsIn(l, 520, 1000), new Set(['caller']), 'call time 1020-1500 follows 500 directly');
  assert.deepEqual(labelsIn(l, 1000, 1320), new Set(['silence']), 'silence pause (call 1500-1820) is in the file');
});

test('Ogg/Opus and MP3 through ffmpeg keep the channels and the duration', async () => {
  const f = crashedCall();
  for (const [format, codec, ext] of [['ogg', 'opus', 'ogg'], ['mp3', 'mp3', 'mp3']] as const) {
    const out = await finalize({ dir: f.dir, segments: f.segments, gaps: f.gaps, pauses: f.pauses, format });
    assert.equal(out.warning, undefined, out.warning);
    assert.equal(out.format, format);
    if (format === 'ogg') assert.equal(out.data.toString('ascii', 0, 4), 'OggS');
    assert.equal(out.sha256, createHash('sha256').update(out.data).digest('hex'));
    const s = ffprobe(out.data, ext).streams[0]!;
    assert.equal(s.codec_name, codec);
    assert.equal(s.channels, 2);
    // ffprobe's MP3 duration counts whole 72 ms frames including encoder delay/padding (2.664 s here);
    // what a player plays is the decoded length, which the LAME header trims to the input.
    const decoded = ffmpegDecode(out.data, ext);
    const decodedMs = decoded.length / 32;
    assert.ok(Math.abs(decodedMs - 2500) <= 100, `${format}: decodes to ${decodedMs} ms`);
    if (format === 'ogg') {
      const probed = Number(ffprobe(out.data, ext).format.duration) * 1000;
      assert.ok(Math.abs(probed - 2500) <= 100, `${format}: ffprobe duration ${probed} ms`);
    }
    const { left, right } = splitPcm(decoded);
    const l = windows(left);
    const r = windows(right);
    // Codec delay shifts audio by a few ms: check well inside each region.
    assert.deepEqual(labelsIn(l, 100, 900), new Set(['caller']), `${format} left`);
    assert.deepEqual(labelsIn(l, 1100, 1400), new Set(['silence']), `${format} gap`);
    assert.deepEqual(labelsIn(r, 300, 500), new Set(['agent']), `${format} right`);
    assert.deepEqual(labelsIn(r, 800, 2300), new Set(['silence']), `${format} right silent`);
  }
  assert.deepEqual(fs.readdirSync(f.dir).filter((n) => n.startsWith('.encode-')), [], 'temp output removed');
});

test('ffmpeg missing or failing: falls back to WAV with a clear warning', async () => {
  const f = crashedCall();
  const wav = await finalize({ dir: f.dir, segments: f.segments, gaps: f.gaps });
  for (const ffmpegPath of ['/nonexistent', '/bin/false']) {
    const out = await finalize({ dir: f.dir, segments: f.segments, gaps: f.gaps, format: 'ogg', ffmpegPath });
    assert.equal(out.format, 'wav');
    assert.equal(out.mimeType, 'audio/wav');
    assert.match(out.warning ?? '', new RegExp(`ogg encoding failed \\(ffmpeg at ${ffmpegPath}\\).*stored µ-law WAV instead`));
    assert.ok(out.data.equals(wav.data), 'the fallback is the same WAV');
    assert.equal(out.sha256, wav.sha256);
  }
});

test('a segment shorter on disk than its recorded length is an error, not silent truncation', async () => {
  const f = crashedCall();
  const seg = f.segments[0]!;
  fs.truncateSync(path.join(f.dir, seg.file), seg.bytes - 640);
  await assert.rejects(finalize({ dir: f.dir, segments: f.segments, gaps: f.gaps }), /seg-000\.pcm: \d+ bytes on disk, its recorded length is \d+/);
  await assert.rejects(finalize({ dir: f.dir, segments: [{ ...seg, file: 'seg-009.pcm' }] }), /seg-009\.pcm missing/);
});
