/**
 * Wideband recording: a recorder made at 16 kHz (a 16 kHz leg: Vonage L16)
 * keeps 16 kHz — a 6 kHz tone, impossible at 8 kHz, survives segment, crash
 * scan, resume and finalize (WAV and Ogg) — while the 8 kHz default is untouched.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { finalize } from '../../../recording/finalize.ts';
import { Recorder } from '../../../recording/recorder.ts';
import { parseJournal, recordingRateFor } from '../../../recording/segment-files.ts';
import { scanSegments } from '../../../recording/segments.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { ffmpegDecode, ffprobe, ManualClock, splitMuLawWav, splitPcm, tonePower, ToneSource, AGENT_HZ } from './helpers.ts';

const ANSWERED = 1_700_000_000_000;
const HIGH_HZ = 6000;

test('recordingRateFor keeps narrowband at 8 kHz and anything wider at 16 kHz', () => {
  assert.equal(recordingRateFor(undefined), 8000);
  assert.equal(recordingRateFor(8000), 8000);
  assert.equal(recordingRateFor(16000), 16000);
  assert.equal(recordingRateFor(48000), 16000);
});

test('a 16 kHz recording keeps 16 kHz through segment, scan, resume and finalize', async () => {
  const clock = new ManualClock(ANSWERED);
  const dir = path.join(tmpDir('sb-rec16-'), 'rec');
  const caller = new ToneSource(HIGH_HZ, 16000);
  const agent = new ToneSource(AGENT_HZ, 8000); // resampled up to the recording's rate
  const first = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, sampleRate: 16000 });
  assert.equal(first.sampleRate, 16000);
  for (let i = 0; i < 50; i++) {
    clock.advance(20);
    first.process(caller.frame(), 'caller');
    if (i >= 25) first.process(agent.frame(), 'agent');
  }
  const r1 = first.close();
  assert.ok(Math.abs(r1.durationMs - 1000) <= 20, `duration ${r1.durationMs}`);
  assert.equal(r1.segments[0]!.bytes, (r1.durationMs * 16000 * 4) / 1000, '4 bytes per stereo frame at 16 kHz');
  const header = parseJournal(fs.readFileSync(path.join(dir, 'seg-000.log'), 'utf8')).header;
  assert.equal(header?.sampleRate, 16000);
  const { left } = splitPcm(fs.readFileSync(path.join(dir, 'seg-000.pcm')));
  assert.ok(tonePower(left, 3200, 3200, HIGH_HZ, 16000) > 0.3, 'the 6 kHz caller tone is in the segment');

  // A crash scan reads the rate back; a resumed recorder continues at it after a gap.
  const scan = scanSegments(dir);
  assert.equal(scan.sampleRate, 16000);
  assert.ok(Math.abs(scan.segments[0]!.durationMs - r1.durationMs) < 1);
  clock.advance(500);
  const second = new Recorder({ dir, startedAtMs: ANSWERED, nowMs: clock.now, autoTick: false, sampleRate: scan.sampleRate, segmentIndex: scan.nextIndex });
  for (let i = 0; i < 25; i++) {
    clock.advance(20);
    second.process(caller.frame(), 'caller');
  }
  second.close();
  const all = scanSegments(dir);
  assert.equal(all.segments.length, 2);
  assert.equal(all.sampleRate, 16000);
  assert.deepEqual(all.problems, []);

  const gaps = [{ startMs: all.segments[0]!.startMs + all.segments[0]!.durationMs, endMs: all.segments[1]!.startMs }];
  const wav = await finalize({ dir, segments: all.segments, gaps, pauses: all.pauses, sampleRate: all.sampleRate });
  assert.equal(wav.sampleRate, 16000);
  assert.ok(Math.abs(wav.durationMs - 2000) <= 40, `finalized ${wav.durationMs} ms`);
  const probe = ffprobe(wav.data, 'wav');
  assert.equal(probe.streams[0]?.sample_rate, '16000');
  assert.equal(probe.streams[0]?.channels, 2);
  assert.ok(Math.abs(Number(probe.format.duration) * 1000 - wav.durationMs) <= 5);
  const decoded = splitMuLawWav(wav.data);
  assert.ok(tonePower(decoded.left, 3200, 3200, HIGH_HZ, 16000) > 0.2, 'the 6 kHz tone survives finalize');
  assert.ok(tonePower(decoded.right, 12800, 3200, AGENT_HZ, 16000) > 0.2, 'the agent channel is there');

  // Ogg (Opus via ffmpeg, which the suite requires): a fallback to WAV would be a broken 16 kHz Ogg path, not a pass.
  const ogg = await finalize({ dir, segments: all.segments, gaps, pauses: all.pauses, sampleRate: all.sampleRate, format: 'ogg' });
  assert.equal(ogg.warning, undefined, `no fallback warning (got: ${ogg.warning})`);
  assert.equal(ogg.format, 'ogg');
  assert.equal(ogg.mimeType, 'audio/ogg');
  assert.equal(ogg.sampleRate, 16000);
  const p = ffprobe(ogg.data, 'ogg');
  assert.equal(p.streams[0]?.codec_name, 'opus');
  assert.equal(p.streams[0]?.channels, 2);
  assert.ok(Math.abs(Number(p.format.duration ?? p.streams[0]?.duration) * 1000 - 2000) <= 100, `ogg ${p.format.duration}`);
  const fromOgg = splitPcm(ffmpegDecode(ogg.data, 'ogg', 16000));
  assert.ok(tonePower(fromOgg.left, 3200, 3200, HIGH_HZ, 16000) > 0.2, 'the 6 kHz caller tone survives the Ogg encoding (fed to ffmpeg at 16 kHz)');
  assert.ok(tonePower(fromOgg.right, 12800, 3200, AGENT_HZ, 16000) > 0.2, 'the agent channel is in the Ogg');
});
