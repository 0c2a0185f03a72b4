/**
 * A SIP call's media as a `CallLeg`: RTP audio re-chunked into 20 ms frames
 * (lost packets concealed with silence so the recording stays aligned),
 * DTMF from RFC 4733 events, SIP INFO, or — when the far end offered no
 * telephone-event — in-band Goertzel detection. Outbound frames go straight
 * out as RTP (the pacer already paces them; there is no far-end buffer to
 * clear). A blind transfer is a REFER where the route allows it (refer.ts). Closing the leg gracefully (agent hangup, consent decline) sends BYE;
 * a detach at shutdown does not, so a restarted node can carry the call on.
 */
import { CallLeg, type DtmfSource, type LegDescription } from '../../media/call-leg.ts';
import { DtmfDetector } from '../../media/dtmf.ts';
import type { DialogSnapshot } from './dialog.ts';
import type { RtpSession } from './rtp.ts';

const FRAME = 160; // 20 ms at 8 kHz
/** A silence fill never exceeds this many frames (a long pause is not loss). */
const MAX_FILL_FRAMES = 25;

export class SipLeg extends CallLeg {
  readonly description: LegDescription;
  private readonly pending = new Int16Array(FRAME);
  private pendingLen = 0;
  private mediaTs = 0;
  private inband: DtmfDetector | null = null;
  /** The far end ended the call (BYE, CANCEL): no BYE goes back. */
  private remoteEnded = false;

  constructor(
    readonly rtp: RtpSession,
    readonly dialog: DialogSnapshot,
    /** Sends BYE (called once, when the leg is closed gracefully from our side). */
    private readonly hangup: (reason: string) => void,
    /** A blind transfer by REFER (refer.ts), on routes whose SWITCHBOARD_SIP_REFER says `transfer`; absent = none. */
    private readonly refer?: (target: string) => Promise<void>,
  ) {
    super();
    this.description = {
      provider: 'sip',
      session: dialog.callId,
      codec: rtp.negotiated.codec,
      inputRate: 8000,
      outputRate: 8000,
      reportsPlayout: false,
      resume: { ...dialog } as unknown as Record<string, unknown>,
      transfer: refer ? 'refer' : 'none',
      // RTP to a trunk runs without gaps: RTP-inactivity timers, and timestamps that follow the clock.
      continuousMedia: true,
    };
    this.updateMedia();
    rtp.on('audio', (samples, gap) => this.onAudio(samples, gap));
    rtp.on('dtmf', (digit) => this.dtmf(digit, 'rfc4733'));
  }

  /** Asks the far end to transfer the call (REFER); rejects with the reason when it does not. */
  override blindTransfer(target: string): Promise<void> {
    if (!this.refer) return Promise.reject(new Error('this SIP route does not transfer by REFER'));
    return this.refer(target);
  }

  /** After a re-INVITE: in-band detection only when no telephone-event was negotiated. */
  updateMedia(): void {
    this.inband = this.rtp.negotiated.eventPayloadType === null ? (this.inband ?? new DtmfDetector(8000)) : null;
  }

  sendFrame(samples: Int16Array): void {
    this.rtp.send(samples);
  }

  /** No agent audio in this slot: silence, so the far end's RTP never stalls and our timestamps keep time. */
  override sendIdle(): void {
    this.rtp.sendSilence(FRAME);
  }

  sendMark(): void {
    /* reportsPlayout is false: the pipeline assumes playout = send time */
  }

  clear(): void {
    /* frames leave as the pacer hands them over: no local queue to drop */
  }

  /** A digit from SIP INFO (or RFC 4733 via the RTP session). */
  dtmf(digit: string, source: DtmfSource): void {
    if (!this.closed) this.fire('dtmf', { digit: digit.toUpperCase(), source });
  }

  /** The far end hung up (BYE): closes the leg without sending BYE back. */
  remoteHangup(reason: string): void {
    this.remoteEnded = true;
    this.rtp.close();
    this.remoteClosed(reason, true);
  }

  /** Marks the dialog ended by the far end before the call manager closes the leg. */
  markRemoteEnded(): void {
    this.remoteEnded = true;
  }

  private gracefulClose = true;

  override close(reason: string, graceful = true): void {
    this.gracefulClose = graceful;
    super.close(reason, graceful);
  }

  protected doClose(reason: string): void {
    if (this.gracefulClose && !this.remoteEnded) this.hangup(reason);
    this.rtp.close();
  }

  private onAudio(samples: Int16Array, gap: number): void {
    if (this.closed) return;
    const fill = Math.min(Math.floor(gap / FRAME), MAX_FILL_FRAMES);
    for (let i = 0; i < fill; i++) this.push(new Int16Array(FRAME));
    this.push(samples);
  }

  private push(samples: Int16Array): void {
    if (this.inband) for (const d of this.inband.process(samples)) this.dtmf(d, 'inband');
    let i = 0;
    while (i < samples.length) {
      const take = Math.min(FRAME - this.pendingLen, samples.length - i);
      this.pending.set(samples.subarray(i, i + take), this.pendingLen);
      this.pendingLen += take;
      i += take;
      if (this.pendingLen === FRAME) {
        this.pendingLen = 0;
        this.fire('audio', { samples: this.pending.slice(), sampleRate: 8000, timestamp: this.mediaTs });
        this.mediaTs += FRAME;
      }
    }
  }
}
