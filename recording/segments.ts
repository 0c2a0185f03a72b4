/**
 * Crash recovery and timeline planning for a recording's segments.
 *
 * After a crash, `scanSegments(dir)` reports what the working directory holds:
 * every `seg-NNN.pcm` with the length that was flushed (a trailing partial
 * 4-byte stereo sample is ignored — the file is not modified, `bytes` simply
 * stops before it), its start from the journal, and the pauses the journal
 * recorded. A resumed call records a new segment (`nextIndex`) and a gap
 * (`resumeGap`) from the end of the last flushed audio to the new start.
 *
 * `planTimeline` lays the segments out on the recording clock for finalize:
 *  - time 0 is the call's answer, so silence leads up to the first segment;
 *  - holes between segments (crash gaps, whether listed in `gaps` or not) and a
 *    listed gap after the last segment are filled with silence, so the output
 *    lasts as long as the call;
 *  - `silence` pauses are already zeros in the segment files;
 *  - `skip` pauses have no audio: they are absent from the output (which is
 *    shorter than the call by their total) and only recorded in metadata;
 *  - audio is never dropped: if a segment starts before the previous one ended
 *    (a recorder that ran ahead of the clock by jitter), it is placed right after
 *    it and the overlap is reported.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  BYTES_PER_FRAME, framesToMs, journalFile, msToFrames, parseJournal, RECORDING_RATE, segmentIndexOf, type RecordingRate,
} from './segment-files.ts';
import type { Interval, PauseInterval, SegmentInfo } from './types.ts';

export interface ScanResult {
  /** Segments in index order. `skippedMs` is filled from the journal. */
  segments: SegmentInfo[];
  /** Pauses from the journals; one still open at the crash ends where the flushed audio ends. */
  pauses: PauseInterval[];
  /** The index a resumed recorder must use. */
  nextIndex: number;
  /** Where the last flushed audio ends on the recording clock (0 when there is none). */
  endMs: number;
  /** Trailing bytes that did not form a whole stereo sample, per file. */
  dropped: Array<{ file: string; bytes: number }>;
  /** Anything odd: a segment without a journal header, torn journal lines. */
  problems: string[];
  /**
   * The recording's sample rate, from the first segment's journal header (undefined when no
   * segment has one). A recording keeps one rate: a resumed recorder records at this rate.
   */
  sampleRate?: RecordingRate;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads the segment files and journals left in `dir` (by a crash or a clean close). */
export function scanSegments(dir: string): ScanResult {
  const out: ScanResult = { segments: [], pauses: [], nextIndex: 0, endMs: 0, dropped: [], problems: [] };
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  const indices: number[] = [];
  for (const name of names) {
    const idx = segmentIndexOf(name) ?? segmentIndexOf(name.replace(/\.log$/, '.pcm'));
    if (idx === undefined) continue;
    out.nextIndex = Math.max(out.nextIndex, idx + 1);
    if (name.endsWith('.pcm')) indices.push(idx);
  }
  indices.sort((a, b) => a - b);

  for (const idx of indices) {
    const logName = journalFile(idx);
    const file = logName.replace(/\.log$/, '.pcm');
    const size = fs.statSync(path.join(dir, file)).size;
    const frames = Math.floor(size / BYTES_PER_FRAME);
    if (size % BYTES_PER_FRAME !== 0) out.dropped.push({ file, bytes: size % BYTES_PER_FRAME });
    const text = readText(path.join(dir, logName));
    const journal = parseJournal(text ?? '');
    if (journal.badLines > 0) out.problems.push(`${logName}: ${journal.badLines} unreadable line(s) ignored`);
    let startMs = out.endMs;
    if (journal.header) startMs = journal.header.startMs;
    else out.problems.push(`${file}: no journal header; placed after the previous segment at ${startMs} ms`);
    const rate: RecordingRate = journal.header?.sampleRate ?? out.sampleRate ?? RECORDING_RATE;
    if (journal.header && out.sampleRate === undefined) out.sampleRate = rate;
    else if (journal.header && out.sampleRate !== rate) out.problems.push(`${file}: recorded at ${rate} Hz, the recording is at ${out.sampleRate} Hz`);

    const durationMs = framesToMs(frames, rate);
    let skippedMs = 0;
    let open: { startMs: number; mode: 'silence' | 'skip'; reason: string } | undefined;
    const closed: PauseInterval[] = [];
    for (const e of journal.entries) {
      if (e.kind === 'pause' && !open) open = { startMs: e.atMs, mode: e.mode, reason: e.reason };
      else if (e.kind === 'resume' && open) {
        const endMs = Math.max(open.startMs, e.atMs);
        closed.push({ ...open, endMs });
        if (open.mode === 'skip') skippedMs += endMs - open.startMs;
        open = undefined;
      }
    }
    const endMs = startMs + durationMs + skippedMs;
    if (open) closed.push({ ...open, endMs: Math.max(open.startMs, endMs) });
    out.pauses.push(...closed);
    out.segments.push({ file, startMs, durationMs, bytes: frames * BYTES_PER_FRAME, skippedMs });
    out.endMs = Math.max(out.endMs, endMs);
  }
  return out;
}

/** Where a segment's audio ends on the recording clock. */
export function segmentEndMs(seg: SegmentInfo): number {
  return seg.startMs + seg.durationMs + (seg.skippedMs ?? 0);
}

/**
 * The gap a resumed recording must record: from the end of the last flushed
 * audio to the new segment's start; undefined when there is none.
 */
export function resumeGap(segments: readonly SegmentInfo[], newStartMs: number): Interval | undefined {
  let end = 0;
  for (const s of segments) end = Math.max(end, segmentEndMs(s));
  return newStartMs > end ? { startMs: end, endMs: newStartMs } : undefined;
}

export type TimelinePiece =
  | { kind: 'audio'; file: string; /** recording clock */ atMs: number; frames: number }
  | { kind: 'silence'; atMs: number; frames: number; cause: 'lead' | 'gap' };

export interface Timeline {
  pieces: TimelinePiece[];
  /** Stereo sample frames in the output. */
  frames: number;
  /** Output duration, ms (the call minus skipped pauses). */
  durationMs: number;
  /** Where the output ends on the recording clock. */
  endMs: number;
  /** Total of skip pauses left out. */
  skippedMs: number;
  /** Audio placed later than its segment start because the previous segment ran past it. */
  overlapMs: number;
}

/**
 * Plans the output for finalize. `pauses` are used only to work out
 * `skippedMs` for segments that do not carry it (skip pauses that start inside
 * the segment's span on the recording clock). `rate` is the recording's sample
 * rate (every segment is at it); frames in the plan are at that rate.
 */
export function planTimeline(
  segments: readonly SegmentInfo[],
  gaps: readonly Interval[] = [],
  pauses: readonly PauseInterval[] = [],
  rate: RecordingRate = RECORDING_RATE,
): Timeline {
  const sorted = [...segments].sort((a, b) => a.startMs - b.startMs);
  const pieces: TimelinePiece[] = [];
  let cursor = 0; // recording clock, frames
  let frames = 0; // output frames
  let skipped = 0; // frames
  let overlap = 0; // frames
  sorted.forEach((seg, i) => {
    if (seg.bytes % BYTES_PER_FRAME !== 0 || seg.bytes < 0) {
      throw new RangeError(`segment ${seg.file}: bytes (${seg.bytes}) is not a whole number of stereo samples`);
    }
    const next = sorted[i + 1];
    const skippedMs = seg.skippedMs ?? inferSkipped(seg, next?.startMs ?? Infinity, pauses);
    const start = msToFrames(seg.startMs, rate);
    if (start > cursor) {
      pieces.push({ kind: 'silence', atMs: framesToMs(cursor, rate), frames: start - cursor, cause: i === 0 ? 'lead' : 'gap' });
      frames += start - cursor;
      cursor = start;
    } else if (start < cursor) {
      overlap += cursor - start;
    }
    const segFrames = seg.bytes / BYTES_PER_FRAME;
    if (segFrames > 0) pieces.push({ kind: 'audio', file: seg.file, atMs: framesToMs(cursor, rate), frames: segFrames });
    frames += segFrames;
    const skip = msToFrames(skippedMs, rate);
    skipped += skip;
    cursor += segFrames + skip;
  });
  let tail = cursor;
  for (const g of gaps) tail = Math.max(tail, msToFrames(g.endMs, rate));
  if (tail > cursor) {
    pieces.push({ kind: 'silence', atMs: framesToMs(cursor, rate), frames: tail - cursor, cause: sorted.length ? 'gap' : 'lead' });
    frames += tail - cursor;
    cursor = tail;
  }
  return {
    pieces,
    frames,
    durationMs: framesToMs(frames, rate),
    endMs: framesToMs(cursor, rate),
    skippedMs: framesToMs(skipped, rate),
    overlapMs: framesToMs(overlap, rate),
  };
}

function inferSkipped(seg: SegmentInfo, nextStartMs: number, pauses: readonly PauseInterval[]): number {
  let total = 0;
  for (const p of pauses) {
    if (p.mode === 'skip' && p.startMs >= seg.startMs && p.startMs < nextStartMs) total += Math.max(0, p.endMs - p.startMs);
  }
  return total;
}
