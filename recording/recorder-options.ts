/**
 * Options, results and failure reports of the call recorder (recorder.ts).
 */
import type { RecordingRate } from './segment-files.ts';
import type { RecorderIo } from './segment-writer.ts';
import type { PauseInterval, SegmentInfo } from './types.ts';

export interface RecorderOptions {
  /** The recording's working directory (created if missing). */
  dir: string;
  /** Call clock origin (epoch ms when the call was answered); recording clock = nowMs() - startedAtMs. */
  startedAtMs: number;
  nowMs: () => number;
  /** Rate the segment is recorded at (frames at other rates are resampled). Default 8000. */
  sampleRate?: RecordingRate;
  /** Segment to create; a resumed call starts a new one (`scanSegments().nextIndex`). Default 0. */
  segmentIndex?: number;
  /** Write-through interval (default 200 ms). */
  flushIntervalMs?: number;
  /** fsync interval (default 1000 ms). */
  fsyncIntervalMs?: number;
  /** Caller silence after which agent frames drive the timeline (default 60 ms). */
  callerStallMs?: number;
  /** Lag behind the clock tolerated before silence is filled in (default 100 ms). */
  maxLagMs?: number;
  /** Agent audio queued beyond this is written with caller silence (default 200 ms). */
  maxAgentBacklogMs?: number;
  /** Run `tick()` on an unref'd timer every `tickMs` (default true, 50 ms). Tests turn it off. */
  autoTick?: boolean;
  tickMs?: number;
  /** File operations (tests inject failures). */
  io?: RecorderIo;
  name?: string;
}

export interface RecorderFailure {
  /** Human-readable reason, e.g. `ENOSPC: no space left on device, write`. */
  reason: string;
  code?: string;
  /** When it failed, on the recording clock. */
  atMs: number;
  segment: string;
  /** Bytes of the segment that were flushed before the failure (all usable). */
  flushedBytes: number;
}

export interface RecorderResult {
  segments: SegmentInfo[];
  pauses: PauseInterval[];
  /** Audio in the segments, ms (skipped pauses excluded). */
  durationMs: number;
  /** Where the audio ends on the recording clock (start + audio + skipped). */
  endMs: number;
  failure?: RecorderFailure;
}

export interface RecorderStats {
  callerBlocks: number;
  agentBlocks: number;
  fillBlocks: number;
  silencedBlocks: number;
}
