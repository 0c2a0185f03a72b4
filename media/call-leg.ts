/**
 * `CallLeg`: the one provider-neutral model every ingress (Twilio, Vonage, SIP,
 * WebRTC) turns its wire protocol into. Inbound, a leg emits decoded 20 ms PCM
 * frames, DTMF digits, played-marks and its close; outbound, it accepts frames
 * that are already paced by the call's `PacedStream`, marks, and `clear()`
 * (drop what the far end has buffered — Twilio/Vonage `clear`, SIP/WebRTC: the
 * local queue only).
 *
 *   ingress/<provider> ──► CallLeg ──► MediaPipeline ──► taps (VAD, recorder, STT) / agent bridge
 */
import { performance } from 'node:perf_hooks';
import { SafeEmitter } from './emitter.ts';
import type { AudioFrame, SampleRate } from './frame.ts';

/** The name of the ingress adapter a leg came through (ingress/port.ts): data, never branched on outside it. */
export type LegProvider = string;
export type DtmfSource = 'rfc4733' | 'inband' | 'sip-info' | 'provider';

export interface LegClose {
  reason: string;
  /** True when the far end ended the media deliberately (Twilio `stop`, SIP BYE); false for a drop. */
  graceful: boolean;
}

export type CallLegEvents = {
  audio: [frame: AudioFrame];
  dtmf: [event: { digit: string; source: DtmfSource }];
  /** The far end has played all audio sent before this mark. */
  markPlayed: [name: string];
  closed: [info: LegClose];
  /** A wire-level problem that did not end the leg (malformed message, …). */
  warning: [info: { code: string; message: string }];
};

export interface LegDescription {
  provider: LegProvider;
  /** Provider's media session id (Twilio streamSid, SIP Call-ID, …). */
  session: string;
  codec: string;
  /** Rate of inbound frames. */
  inputRate: SampleRate;
  /** Rate `sendFrame` expects. */
  outputRate: SampleRate;
  /** The far end reports playout through marks (else the pipeline assumes playout = send time). */
  reportsPlayout: boolean;
  /** Provider-neutral resume data stored with the leg row (SIP dialog state, …). */
  resume: Record<string, unknown> | null;
  /**
   * How a blind transfer is carried out: `redirect` — the call is marked
   * `transferring` and the media closed; the provider asks the call webhook
   * again and is told to dial the target (Twilio <Dial>). `refer` — the leg asks the far end to transfer
   * (`blindTransfer`, SIP REFER): the call ends once the far end reports success. `none` — not possible.
   */
  transfer?: 'redirect' | 'refer' | 'none';
  /**
   * The far end expects a packet every 20 ms whether or not the agent speaks (G.711 RTP to a trunk: carriers
   * drop calls on RTP inactivity, and jitter buffers read a silence gap as network delay). The pipeline then
   * calls `sendIdle()` for every slot without agent audio.
   */
  continuousMedia?: boolean;
}

export abstract class CallLeg extends SafeEmitter<CallLegEvents> {
  private ended = false;
  private closeInfo: LegClose | null = null;
  /** Monotonic time of the last inbound audio frame (or of the leg's creation). */
  private heardAt = performance.now();

  abstract readonly description: LegDescription;

  /** A leg whose `transfer` is `refer`: asks the far end to transfer the call; resolves once it has, rejects with why not. */
  blindTransfer?(target: string): Promise<void>;

  /** Sends one paced 20 ms frame at `description.outputRate`. */
  abstract sendFrame(samples: Int16Array): void;

  /** A 20 ms slot passed with no agent audio (called only when `description.continuousMedia`). */
  sendIdle(): void {}

  /** Sends a mark behind the audio sent so far (only when `reportsPlayout`). */
  abstract sendMark(name: string): void;

  /** Asks the far end to drop audio it has buffered. */
  abstract clear(): void;

  /** Closes the media connection (the call itself may continue elsewhere). */
  protected abstract doClose(reason: string): void;

  get closed(): boolean {
    return this.ended;
  }

  /**
   * Milliseconds since the far end last sent audio (since the leg was created, before its first frame).
   * Providers stream audio continuously, silence included: a leg that has gone quiet for seconds has lost
   * its media even if its socket still looks open (a half-open connection).
   */
  get silentForMs(): number {
    return performance.now() - this.heardAt;
  }

  /** How the leg closed (null while open): for a listener that subscribes after the fact. */
  get closedWith(): LegClose | null {
    return this.closeInfo;
  }

  /** Closes once; emits `closed` once, whoever closed first. */
  close(reason: string, graceful = true): void {
    if (this.ended) return;
    this.ended = true;
    this.closeInfo = { reason, graceful };
    try {
      this.doClose(reason);
    } finally {
      this.emit('closed', { reason, graceful });
    }
  }

  /** For adapters: reports a far-end close (socket dropped, `stop`, BYE). */
  protected remoteClosed(reason: string, graceful: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.closeInfo = { reason, graceful };
    this.emit('closed', { reason, graceful });
  }

  protected fire<K extends keyof CallLegEvents>(event: K, ...args: CallLegEvents[K]): void {
    if (event === 'audio') this.heardAt = performance.now();
    const errors = this.emit(event, ...args);
    if (errors) for (const err of errors) this.emit('warning', { code: 'listener_error', message: String(err) });
  }
}
