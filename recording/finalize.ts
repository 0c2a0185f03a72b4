/**
 * Finalize: turns a recording's segments into one audio file.
 *
 * The segments are laid out on the recording clock by `planTimeline` (see
 * segments.ts): silence from the answer to the first segment, silence for
 * crash gaps (so the file lasts as long as the call, to the 20 ms block),
 * `silence` pauses as the zeros already written, and `skip` pauses left out —
 * a skipped interval is absent from the audio and present only in the
 * pauses metadata, so the file is shorter than the call by exactly the
 * skipped time (`timeline.skippedMs`).
 *
 * Formats: `wav` (default) is stereo G.711 µ-law WAV written here without
 * ffmpeg — cheap at scale — at the recording's rate (8 kHz, or 16 kHz for a
 * wideband recording: the rate is kept, only the sample coding is G.711). `ogg` (Opus) and `mp3` go through the system
 * ffmpeg; if ffmpeg is missing or fails, the result falls back to WAV with a
 * `warning` saying so (the caller logs it and stores the WAV). `sha256` is of
 * the returned plaintext bytes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { planTimeline, type Timeline } from './segments.ts';
import { BYTES_PER_FRAME, RECORDING_RATE, type RecordingRate } from './segment-files.ts';
import { transcodePcm } from './transcode.ts';
import type { Interval, PauseInterval, RecordingFormat, SegmentInfo } from './types.ts';
import { MuLawWavBuilder } from './wav.ts';

export interface FinalizeOptions {
  /** The recording's working directory (holds the segment files). */
  dir: string;
  segments: readonly SegmentInfo[];
  /** Crash gaps (filled with silence). */
  gaps?: readonly Interval[];
  /** Pauses (metadata; used to work out `skippedMs` for segments that lack it). */
  pauses?: readonly PauseInterval[];
  /** Default `wav`. */
  format?: RecordingFormat;
  /** The recording's sample rate (`scanSegments().sampleRate`); default 8000. */
  sampleRate?: RecordingRate;
  ffmpegPath?: string;
  /** For ogg/mp3, default 32 kbit/s. */
  bitrateKbps?: number;
  /** For ogg/mp3, default 300 000 ms. */
  timeoutMs?: number;
}

export interface FinalizeResult {
  data: Buffer;
  /** The format actually produced (`wav` after a fallback). */
  format: RecordingFormat;
  mimeType: string;
  /** Audio duration, ms (the call minus skipped pauses). */
  durationMs: number;
  sampleRate: RecordingRate;
  /** Hex sha256 of `data`. */
  sha256: string;
  /** Set when the requested format could not be produced and WAV was returned instead. */
  warning?: string;
  timeline: Timeline;
}

export const MIME_TYPES: Readonly<Record<RecordingFormat, string>> = {
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

const CHUNK_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK_BYTES);

/** Interleaved s16le PCM of the whole timeline, in chunks of at most 64 KiB. */
export function* timelinePcm(dir: string, timeline: Timeline): Generator<Buffer> {
  for (const piece of timeline.pieces) {
    let left = piece.frames * BYTES_PER_FRAME;
    if (piece.kind === 'silence') {
      while (left > 0) {
        const n = Math.min(left, CHUNK_BYTES);
        yield ZEROS.subarray(0, n);
        left -= n;
      }
      continue;
    }
    const fd = fs.openSync(path.join(dir, piece.file), 'r');
    try {
      let pos = 0;
      while (left > 0) {
        const buf = Buffer.alloc(Math.min(left, CHUNK_BYTES));
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n !== buf.length) throw new Error(`segment ${piece.file}: short read at byte ${pos} (file shorter than its recorded length)`);
        yield buf;
        pos += n;
        left -= n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

function checkFiles(dir: string, timeline: Timeline): void {
  for (const piece of timeline.pieces) {
    if (piece.kind !== 'audio') continue;
    const need = piece.frames * BYTES_PER_FRAME;
    let size: number;
    try {
      size = fs.statSync(path.join(dir, piece.file)).size;
    } catch (err) {
      throw new Error(`segment ${piece.file} missing from ${dir}: ${(err as Error).message}`);
    }
    if (size < need) throw new Error(`segment ${piece.file}: ${size} bytes on disk, its recorded length is ${need}`);
  }
}

/** Encodes the timeline as stereo µ-law WAV at `rate` (the rate of its PCM). */
export function timelineWav(dir: string, timeline: Timeline, rate: RecordingRate = RECORDING_RATE): Buffer {
  const wav = new MuLawWavBuilder(timeline.frames, 2, rate);
  for (const chunk of timelinePcm(dir, timeline)) wav.addPcm(chunk);
  return wav.finish();
}

export async function finalize(opts: FinalizeOptions): Promise<FinalizeResult> {
  const rate = opts.sampleRate ?? RECORDING_RATE;
  const timeline = planTimeline(opts.segments, opts.gaps ?? [], opts.pauses ?? [], rate);
  checkFiles(opts.dir, timeline);
  const wanted = opts.format ?? 'wav';
  let data: Buffer | undefined;
  let warning: string | undefined;
  if (wanted !== 'wav') {
    try {
      data = await transcodePcm(timelinePcm(opts.dir, timeline), wanted, {
        ffmpegPath: opts.ffmpegPath,
        bitrateKbps: opts.bitrateKbps,
        timeoutMs: opts.timeoutMs,
        workDir: opts.dir,
        sampleRate: rate,
      });
    } catch (err) {
      const where = opts.ffmpegPath ? ` (ffmpeg at ${opts.ffmpegPath})` : '';
      warning = `${wanted} encoding failed${where}: ${(err as Error).message}; stored µ-law WAV instead`;
    }
  }
  const format: RecordingFormat = data ? wanted : 'wav';
  data ??= timelineWav(opts.dir, timeline, rate);
  const result: FinalizeResult = {
    data,
    format,
    mimeType: MIME_TYPES[format],
    durationMs: timeline.durationMs,
    sampleRate: rate,
    sha256: createHash('sha256').update(data).digest('hex'),
    timeline,
  };
  if (warning) result.warning = warning;
  return result;
}
