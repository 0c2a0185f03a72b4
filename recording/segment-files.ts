/**
 * On-disk layout of a recording's working directory, shared by the recorder
 * (writer) and crash recovery (reader).
 *
 *   <dir>/seg-000.pcm   interleaved stereo s16le at the recording's rate (8 kHz by default, 16 kHz
 *                       for wideband legs; caller = left, agent = right), appended while
 *                       recording; its length is what was flushed
 *   <dir>/seg-000.log   the segment's journal, JSON lines, fsync'd after every line:
 *                         {"kind":"segment","v":1,"startMs":…,"sampleRate":8000|16000,"channels":2,"encoding":"s16le"}
 *                         {"kind":"pause","atMs":…,"mode":"skip"|"silence","reason":"…"}
 *                         {"kind":"resume","atMs":…}
 *
 * The journal's header line is made durable (file + directory fsync) before
 * the segment's .pcm file is created, so any .pcm found after a crash has a
 * known start on the recording clock. A torn last journal line is ignored.
 */
import { z } from 'zod';

/** Default recording sample rate (Hz): narrowband telephony. */
export const RECORDING_RATE = 8000;
/** Rates a recording can be made at: one per recording, every segment at the same rate. */
export type RecordingRate = 8000 | 16000;
export const RECORDING_RATES: readonly RecordingRate[] = [8000, 16000];

/**
 * The rate a recording of a leg at `inputRate` is made at: narrowband stays 8 kHz, anything
 * wider is kept wideband at 16 kHz (speech needs no more; 48 kHz would triple the files).
 */
export function recordingRateFor(inputRate: number | undefined): RecordingRate {
  return inputRate !== undefined && inputRate > RECORDING_RATE ? 16000 : RECORDING_RATE;
}

/** Mono samples in one 20 ms block at `rate`. */
export function blockSamplesAt(rate: RecordingRate): number {
  return (rate * 20) / 1000;
}
/** Channels in a segment file: caller (left), agent (right). */
export const RECORDING_CHANNELS = 2;
/** Bytes per stereo sample frame (2 channels × 16 bit). */
export const BYTES_PER_FRAME = 4;
/** Stereo sample frames per millisecond. */
export const FRAMES_PER_MS = RECORDING_RATE / 1000;
/** Mono samples in one 20 ms block. */
export const BLOCK_SAMPLES = 160;
/** Bytes of one 20 ms interleaved stereo block. */
export const BLOCK_BYTES = BLOCK_SAMPLES * BYTES_PER_FRAME;
/** Duration of one block, ms. */
export const BLOCK_MS = 20;

const SEGMENT_RE = /^seg-(\d{3,9})\.pcm$/;

/** File name of segment `index` (`seg-000.pcm`). */
export function segmentFile(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 999_999_999) {
    throw new RangeError(`segment index must be an integer in [0, 999999999], got ${index}`);
  }
  return `seg-${String(index).padStart(3, '0')}.pcm`;
}

/** Journal file name of segment `index` (`seg-000.log`). */
export function journalFile(index: number): string {
  return segmentFile(index).replace(/\.pcm$/, '.log');
}

/** The index of a segment file name, or undefined if `name` is not one. */
export function segmentIndexOf(name: string): number | undefined {
  const m = SEGMENT_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Converts stereo frames at `rate` (default 8 kHz) to ms. */
export function framesToMs(frames: number, rate: RecordingRate = RECORDING_RATE): number {
  return (frames * 1000) / rate;
}

/** Converts ms to whole stereo frames at `rate` (default 8 kHz; rounded to the nearest frame). */
export function msToFrames(ms: number, rate: RecordingRate = RECORDING_RATE): number {
  return Math.round((ms * rate) / 1000);
}

const headerLine = z.object({
  kind: z.literal('segment'),
  v: z.literal(1),
  startMs: z.number().finite(),
  sampleRate: z.union([z.literal(8000), z.literal(16000)]),
  channels: z.literal(RECORDING_CHANNELS),
  encoding: z.literal('s16le'),
});
const pauseLine = z.object({
  kind: z.literal('pause'),
  atMs: z.number().finite(),
  mode: z.enum(['silence', 'skip']),
  reason: z.string(),
});
const resumeLine = z.object({ kind: z.literal('resume'), atMs: z.number().finite() });
const journalLine = z.discriminatedUnion('kind', [headerLine, pauseLine, resumeLine]);

export type JournalHeader = z.infer<typeof headerLine>;
export type JournalEntry = z.infer<typeof journalLine>;

/** The header line for a segment starting at `startMs` on the recording clock. */
export function journalHeader(startMs: number, sampleRate: RecordingRate = RECORDING_RATE): JournalHeader {
  return { kind: 'segment', v: 1, startMs, sampleRate, channels: RECORDING_CHANNELS, encoding: 's16le' };
}

/** One journal line (with its trailing newline). */
export function encodeJournalLine(entry: JournalEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

export interface ParsedJournal {
  header?: JournalHeader;
  entries: JournalEntry[];
  /** Lines that did not parse (a torn last line after a crash is expected). */
  badLines: number;
}

/**
 * Parses a journal. The first valid line must be the header; later header
 * lines and unparseable lines are counted in `badLines` and skipped.
 */
export function parseJournal(text: string): ParsedJournal {
  const out: ParsedJournal = { entries: [], badLines: 0 };
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let parsed: JournalEntry;
    try {
      parsed = journalLine.parse(JSON.parse(raw));
    } catch {
      out.badLines++;
      continue;
    }
    if (parsed.kind === 'segment') {
      if (out.header || out.entries.length > 0) out.badLines++;
      else out.header = parsed;
    } else if (!out.header) {
      out.badLines++;
    } else {
      out.entries.push(parsed);
    }
  }
  return out;
}
