/**
 * Recording interfaces shared by the recorder, finalizer, encryption, blob
 * stores and the retention sweeper. Facts about a recording (started, paused,
 * finalized, failed, purged) are rows written through reducers by the caller
 * of these modules; nothing here touches the store.
 */

/** A span on the recording clock (ms since the call was answered). */
export interface Interval {
  startMs: number;
  endMs: number;
}

export interface SegmentInfo {
  /** File name inside the recording's working directory. */
  file: string;
  /** Where the segment starts on the recording clock. */
  startMs: number;
  /** Length of the audio flushed to the file, ms. */
  durationMs: number;
  bytes: number;
  /**
   * Time inside the segment covered by `skip` pauses (no audio written), ms.
   * Where the segment's audio ends on the recording clock is
   * `startMs + durationMs + skippedMs`. Optional: absent means 0 unless the
   * timeline planner is given the pauses to work it out.
   */
  skippedMs?: number;
}

export interface PauseInterval extends Interval {
  reason: string;
  /** `silence`: zeros written for the interval; `skip`: nothing written (the gap is recorded). */
  mode: 'silence' | 'skip';
}

export type RecordingFormat = 'wav' | 'ogg' | 'mp3';

/** Stores opaque blobs (encrypted recordings) by key: store/blob-store.ts (local dir or JetStream object store). */
export type { BlobStore } from '../store/blob-store.ts';
