/** IPC shapes and constants shared by bench/webrtc.bench.ts and its children. */
export const FRAME_MS = 20;
/** A gap above this between two consecutive packets of one talkspurt is a stall the caller hears. */
export const GAP_MS = 40;

/** Orchestrator → load worker. */
export type LoadCommand =
  | { type: 'start'; url: string; calls: number; intervalMs: number; dtmfMs: number }
  | { type: 'reset' }
  | { type: 'snapshot' }
  | { type: 'stop' };

export interface LoadStats {
  connected: number;
  failed: number;
  /** Peers that received media within the last 2 s (the call is alive both ways). */
  alive: number;
  packetsSent: number;
  packetsReceived: number;
  /** Gaps > GAP_MS between consecutive packets of one talkspurt (contiguous RTP timestamps). */
  gaps: number;
  maxGapMs: number;
  /** This worker's own event-loop delay p99 (generator stalls show up as gaps too). */
  loopP99Ms: number;
  cpuMs: number;
  failures: Record<string, number>;
}

export type LoadEvent = { type: 'ready'; stats: LoadStats } | { type: 'stats'; stats: LoadStats };

/** Orchestrator → server (gateway or bare). */
export type ServerCommand = { type: 'reset' } | { type: 'snapshot' } | { type: 'stop' };

export interface ServerStats {
  cpuMs: number;
  /** Outbound frames sent more than 40 ms after their slot (gateway: switchboard_media_frames_late_total). */
  late: number;
  framesOut: number;
  framesIn: number;
  loopP99Ms: number;
  /** The main thread's event-loop utilisation over the window (0–1): the media loop's own busy share, worker threads apart. */
  loopUtil: number;
  /** CPU of the main thread alone (Linux /proc; NaN elsewhere), ms. */
  mainCpuMs: number;
}

export type ServerEvent = { type: 'listening'; port: number } | { type: 'stats'; stats: ServerStats };
