/**
 * What the call bridge needs from recording, as an interface, so the session
 * stays provider- and storage-neutral: begin (or continue, after a resume) the
 * call's recording with a tap on the pipeline; pause for a withdrawal; finish
 * the segment when the media ends.
 */
import type { FrameTap } from '../media/pipeline.ts';

export interface RecordingHandle {
  readonly recordingId: string;
  readonly tap: FrameTap;
  pause(reason: string): Promise<void>;
  /**
   * Flushes and closes this media connection's segment. Finalizing is not the session's: the recording service
   * finalizes once the call row is `ended`, whoever ended it (one route, recording/service.ts).
   */
  finish(): Promise<void>;
}

export interface RecordingPort {
  /** Starts the call's recording, or continues it on a new segment after a resume. Null if refused. */
  begin(ref: { tenant: string; callId: string; answeredAt: number; sampleRate?: number }): Promise<RecordingHandle | null>;
}
