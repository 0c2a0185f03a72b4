/**
 * What the call bridge needs from recording, as an interface, so the session
 * stays provider- and storage-neutral: begin (or continue, after a resume) the
 * call's recording with a tap on the pipeline; pause for a withdrawal; pause and resume the media for a PCI
 * capture (no row: the pause's own reducer writes it); finish
 * the segment when the media ends.
 */
import type { FrameTap } from '../media/pipeline.ts';

export interface RecordingHandle {
  readonly recordingId: string;
  readonly tap: FrameTap;
  pause(reason: string): Promise<void>;
  /**
   * A PCI pause (bridge/pci-pause.ts): the recorder stops taking audio at once (silence or skip, per policy); the
   * row is the pause's own (`recording_pause_started`). False if it was paused already (a withdrawal) or closed.
   */
  pauseMedia?(reason: string): boolean;
  /** Ends a PCI pause in the recorder; false if it was not paused or is closed. */
  resumeMedia?(): boolean;
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
