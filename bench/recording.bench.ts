/**
 * Finalize throughput at the default format: N recorded calls of 60 s (dual
 * channel, written by the real Recorder from synthetic frames) are finalized
 * the way the service does it — timeline → µ-law stereo WAV → sha256 →
 * AES-256-GCM envelope → fs blob store (atomic, fsync'd). Baseline in the same
 * run: the I/O floor — read the same segment bytes, write them to a file and
 * fsync it, per recording. Also Ogg/Opus through ffmpeg, for policies that ask.
 *
 * recording.loop_ms_per_segment: the event-loop time one recorded call's
 * segment costs outside its audio writes — creating it (journal, header,
 * directory) and closing it — with the fsyncs on the thread pool (what the
 * gateway does); baseline in the same run: the same with every fsync on the
 * loop (an io without `fsync`), as the recorder did before.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AudioFrame } from '../media/frame.ts';
import { FsBlobStore } from '../recording/blob-fs.ts';
import { encryptRecording, loadOrCreateMasterKey } from '../recording/crypto.ts';
import { finalize } from '../recording/finalize.ts';
import { Recorder } from '../recording/recorder.ts';
import { nodeIo, type RecorderIo } from '../recording/segment-writer.ts';
import { scanSegments } from '../recording/segments.ts';
import { log, report, wanted } from './lib.ts';

const N = Number(process.env.BENCH_REC_N ?? 20);
const SECONDS = 60;

function record(dir: string): void {
  let now = 1_000_000;
  const rec = new Recorder({ dir, startedAtMs: now, nowMs: () => now, autoTick: false });
  const caller = new Int16Array(160);
  const agent = new Int16Array(160);
  for (let i = 0; i < 160; i++) {
    caller[i] = Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    agent[i] = Math.round(3000 * Math.sin((2 * Math.PI * 880 * i) / 8000));
  }
  for (let f = 0; f < (SECONDS * 1000) / 20; f++) {
    now += 20;
    const frame: AudioFrame = { samples: caller.slice(), sampleRate: 8000, timestamp: f * 160 };
    rec.process(frame, 'caller');
    if (f % 3 !== 0) rec.process({ samples: agent.slice(), sampleRate: 8000, timestamp: f * 160 }, 'agent');
  }
  rec.close();
}

/** Event-loop ms per segment for open + 1 s of audio + close, over `n` recorders, with `io`. */
async function loopMsPerSegment(root: string, n: number, io: RecorderIo): Promise<number> {
  const frame = (): AudioFrame => ({ samples: new Int16Array(160).fill(1000), sampleRate: 8000, timestamp: 0 });
  let loopMs = 0;
  for (let i = 0; i < n; i++) {
    let now = 1_000_000;
    const t0 = performance.now();
    const rec = new Recorder({ dir: path.join(root, `seg-${i}`), startedAtMs: now, nowMs: () => now, autoTick: false, io });
    loopMs += performance.now() - t0;
    for (let f = 0; f < 50; f++) {
      now += 20;
      rec.process(frame(), 'caller');
      rec.process(frame(), 'agent');
    }
    const t1 = performance.now();
    rec.close();
    loopMs += performance.now() - t1;
    await rec.whenDurable();
  }
  return loopMs / n;
}

async function main(): Promise<void> {
  if (wanted(['recording.loop_ms_per_segment'])) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-seg-'));
    try {
      const n = Number(process.env.BENCH_REC_SEGMENTS ?? 100);
      const blocking = await loopMsPerSegment(path.join(root, 'blocking'), n, { ...nodeIo, fsync: undefined });
      const pool = await loopMsPerSegment(path.join(root, 'pool'), n, nodeIo);
      log(`segment open + close on the event loop: ${pool.toFixed(3)} ms with fsyncs on the pool, ${blocking.toFixed(3)} ms with them on the loop`);
      report({
        figure: 'recording.loop_ms_per_segment',
        value: pool,
        unit: 'ms',
        baseline: blocking,
        note: `event-loop time to create and close one segment (${n} segments, 1 s of audio each); baseline = every fsync on the loop`,
      });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  const figures = ['recording.finalize_wav.recordings_per_s', 'recording.finalize_ogg.recordings_per_s'];
  if (!wanted(figures)) return;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-rec-'));
  try {
    const dirs = Array.from({ length: N }, (_, i) => path.join(root, 'work', `r${i}`));
    log(`recording ${N} calls of ${SECONDS} s …`);
    for (const d of dirs) record(d);
    const master = loadOrCreateMasterKey(root);
    const blobs = new FsBlobStore(root);

    // Baseline: the I/O floor (read the segments, write + fsync the same bytes).
    let t = performance.now();
    for (const [i, d] of dirs.entries()) {
      const bytes = Buffer.concat(scanSegments(d).segments.map((s) => fs.readFileSync(path.join(d, s.file))));
      const fd = fs.openSync(path.join(root, `copy-${i}`), 'w');
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    const floor = N / ((performance.now() - t) / 1000);

    for (const format of ['wav', 'ogg'] as const) {
      const n = format === 'wav' ? N : Math.min(N, 5);
      t = performance.now();
      let bytes = 0;
      for (const d of dirs.slice(0, n)) {
        const scan = scanSegments(d);
        const r = await finalize({ dir: d, segments: scan.segments, pauses: scan.pauses, format });
        const blob = encryptRecording(r.data, master);
        await blobs.put(`bench/${path.basename(d)}-${format}.sbrec`, blob);
        bytes += r.data.length;
        if (crypto.createHash('sha256').update(r.data).digest('hex') !== r.sha256) throw new Error('sha256 mismatch');
      }
      const rate = n / ((performance.now() - t) / 1000);
      log(`${format}: ${n} × ${SECONDS} s → ${(bytes / n / 1024).toFixed(0)} KiB each`);
      report({
        figure: `recording.finalize_${format}.recordings_per_s`,
        value: rate,
        unit: 'rec/s',
        baseline: floor,
        note: `60 s dual-channel calls; baseline = read segments + write + fsync the same bytes (I/O floor)`,
      });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
