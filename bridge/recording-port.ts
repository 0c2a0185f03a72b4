/**
 * What the call bridge needs from recording, as an interface, so the session
 * stays provider- and storage-neutral: begin (or continue, after a resume) the
 * call's recording with a tap on the pipeline; pause for a withdrawal; finish
 * when the media ends.
 */
import type { FrameTap } from '../media/pipeline.ts';

export interface RecordingHandle {
  readonly recordingId: string;
  readonly tap: FrameTap;
  pause(reason: string): Promise<void>;
  /** Flushes this media connection's segment; finalizes when the call has ended. */
  finish(callEnded: boolean): Promise<void>;
}

export interface RecordingPort {
  /** Starts the call's recording, or continues it on a new segment after a resume. Null if refused. */
  begin(ref: { tenant: string; callId: string; answeredAt: number; sampleRate?: number }): Promise<RecordingHandle | null>;
}
