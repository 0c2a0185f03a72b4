/**
 * A browser's peer connection as a `CallLeg`: Opus RTP in becomes 20 ms PCM
 * frames at 16 kHz (the leg's rate both ways), RFC 4733 events and data-channel
 * `dtmf` messages become DTMF, and paced agent frames go out as Opus RTP.
 *
 * Playout cannot be reported (no marks in WebRTC): the pipeline counts audio
 * as heard when it is sent, and barge-in drops the local queue only.
 *
 * The agent's frames are encoded on the process's Opus thread (opus-thread.ts),
 * not in the media clock's tick: `sendFrame` stages the frame and returns, and
 * the packet goes out when the thread hands it back (well within the 20 ms
 * frame), in order; the RTP clock's carry-over across silence is worked out
 * when the frame is given, as before. A frame the thread refuses (it is
 * 240 ms behind) or drops as stale (it got to it > 100 ms late: an overloaded
 * machine) is counted in `framesOutDropped` and the RTP clock steps over it.
 *
 * The leg closes when the peer connection fails or closes, or when no RTP has
 * arrived for MEDIA_TIMEOUT_MS (a browser sends Opus continuously, even muted
 * — an ICE-lite gateway sends no checks of its own, so this is how a vanished
 * tab is noticed). Closing it from this side tells the browser over the data
 * channel whether the call is over (`{type:'ended'}`) so its SDK does not try
 * to resume a finished call.
 */
import { CallLeg, type LegDescription } from '../../media/call-leg.ts';
import { dataChannelDigit, TelephoneEventDeduper } from './dtmf.ts';
import { OPUS_FRAME, OPUS_RATE, OPUS_RTP_TICKS_PER_FRAME, OpusDecoder } from './opus.ts';
import { ThreadedOpusEncoder } from './opus-thread.ts';
import type { WebrtcPeer } from './peer.ts';
import type { OfferSummary } from './sdp.ts';

export const MEDIA_TIMEOUT_MS = 15_000;

export interface WebrtcLegStats {
  packetsIn: number;
  framesIn: number;
  framesOut: number;
  /** Agent frames refused because the Opus thread was far behind (opus-thread.ts: an overloaded machine). */
  framesOutDropped: number;
  dropped: { late: number; corrupt: number; unknownPayloadType: number };
  digits: number;
}

export interface WebrtcLegOptions {
  session: string;
  offer: OfferSummary;
  /** True when the call is over (so the browser is told `ended` rather than left to resume). */
  callEnded: () => boolean;
  /** Opus encoder complexity (config: SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY). */
  opusComplexity?: number;
  /** Encode on the media thread instead of the Opus thread (the benchmark's baseline; the fallback does this by itself). */
  encodeInThread?: boolean;
}

export class WebrtcLeg extends CallLeg {
  readonly description: LegDescription;
  readonly stats: WebrtcLegStats = { packetsIn: 0, framesIn: 0, framesOut: 0, framesOutDropped: 0, dropped: { late: 0, corrupt: 0, unknownPayloadType: 0 }, digits: 0 };
  private readonly decoder = new OpusDecoder();
  private readonly encoder: ThreadedOpusEncoder;
  private readonly dtmf = new TelephoneEventDeduper();
  private readonly dtmfTypes: Set<number>;
  private lastSeq: number | null = null;
  private mediaTs = 0;
  private lastPacketAt = Date.now();
  private lastSentAt = 0;
  /** RTP ticks of refused frames, added to the next frame's carry-over. */
  private droppedTicks = 0;
  /** RTP ticks of frames the thread dropped as stale, added to the next packet sent. */
  private staleTicks = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly offState: () => void;

  constructor(
    private readonly peer: WebrtcPeer,
    private readonly opts: WebrtcLegOptions,
  ) {
    super();
    this.encoder = new ThreadedOpusEncoder((packet, gapTicks, error) => this.sendPacket(packet, gapTicks, error), { complexity: opts.opusComplexity, inThread: opts.encodeInThread });
    this.dtmfTypes = new Set(opts.offer.dtmfPayloadTypes);
    this.description = {
      provider: 'webrtc',
      session: opts.session,
      codec: 'opus',
      inputRate: OPUS_RATE,
      outputRate: OPUS_RATE,
      reportsPlayout: false,
      resume: { session: opts.session },
      transfer: 'none',
    };
    peer.onRtp((p) => this.onRtp(p.payloadType, p.sequenceNumber, p.timestamp, p.payload));
    peer.onData((m) => this.onData(m));
    this.offState = peer.onState((s) => {
      if (s === 'failed' || s === 'closed') this.remoteClosed(`peer connection ${s}`, false);
    });
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastPacketAt > MEDIA_TIMEOUT_MS) this.remoteClosed(`no media for ${MEDIA_TIMEOUT_MS / 1000} s`, false);
    }, 1000);
    this.watchdog.unref();
    this.on('closed', () => this.release());
  }

  sendFrame(samples: Int16Array): void {
    if (this.closed) return;
    const now = performance.now();
    // Silence between plays sends nothing: carry the RTP clock over the gap.
    const gapFrames = this.lastSentAt === 0 ? 0 : Math.max(0, Math.round((now - this.lastSentAt) / 20) - 1);
    this.lastSentAt = now;
    const gapTicks = (gapFrames > 2 ? gapFrames * OPUS_RTP_TICKS_PER_FRAME : 0) + this.droppedTicks;
    if (this.encoder.encode(samples, gapTicks)) {
      this.droppedTicks = 0;
    } else {
      // Refused (the Opus thread is far behind): the next packet carries the RTP clock over it.
      this.stats.framesOutDropped++;
      this.droppedTicks = gapTicks + OPUS_RTP_TICKS_PER_FRAME;
    }
  }

  /** An encoded frame back from the Opus thread (in the order given), with the RTP clock's carry-over. */
  private sendPacket(payload: Buffer | null, gapTicks: number, error: string | null): void {
    if (this.closed) return;
    if (!payload && error === null) {
      // Stale on the thread (it was starved of CPU): dropped; the next packet carries the RTP clock over it.
      this.stats.framesOutDropped++;
      this.staleTicks += gapTicks + OPUS_RTP_TICKS_PER_FRAME;
      return;
    }
    if (!payload) return this.fire('warning', { code: 'encode_failed', message: error ?? 'encode failed' });
    this.peer.sendOpus(payload, OPUS_RTP_TICKS_PER_FRAME, gapTicks + this.staleTicks);
    this.staleTicks = 0;
    this.stats.framesOut++;
  }

  sendMark(): void {
    // WebRTC has no playout marks (reportsPlayout is false).
  }

  clear(): void {
    // Nothing is buffered beyond the local queue, which the pipeline drops.
  }

  protected doClose(reason: string): void {
    const ended = this.opts.callEnded();
    if (ended) this.peer.sendData({ type: 'ended', reason });
    // Give the data channel message a moment to leave before DTLS closes.
    setTimeout(() => this.peer.close(), ended ? 200 : 0).unref();
  }

  private release(): void {
    clearInterval(this.watchdog);
    this.offState();
    this.peer.onRtp(null);
    this.peer.onData(null);
    this.decoder.close();
    this.encoder.close();
    // A far-end close leaves nothing to tell: just free the transport.
    if (this.peer.state !== 'closed') setTimeout(() => this.peer.close(), 250).unref();
  }

  private onRtp(pt: number, seq: number, timestamp: number, payload: Buffer): void {
    if (this.closed) return;
    this.lastPacketAt = Date.now();
    this.stats.packetsIn++;
    if (this.dtmfTypes.has(pt)) {
      const digit = this.dtmf.accept(payload, timestamp);
      if (digit !== null) this.digit(digit, 'rfc4733');
      return;
    }
    if (pt !== this.opts.offer.opusPayloadType) {
      this.stats.dropped.unknownPayloadType++;
      return;
    }
    if (this.lastSeq !== null) {
      const delta = (seq - this.lastSeq) & 0xffff;
      if (delta === 0 || delta > 0x8000) {
        this.stats.dropped.late++; // duplicate or reordered behind what was already decoded
        return;
      }
    }
    this.lastSeq = seq;
    let frames: Int16Array[];
    try {
      frames = this.decoder.decode(payload);
    } catch (err) {
      this.stats.dropped.corrupt++;
      return this.fire('warning', { code: 'decode_failed', message: (err as Error).message });
    }
    for (const samples of frames) {
      this.stats.framesIn++;
      this.fire('audio', { samples, sampleRate: OPUS_RATE, timestamp: this.mediaTs });
      this.mediaTs += OPUS_FRAME;
    }
  }

  private onData(message: string | Buffer): void {
    const digit = dataChannelDigit(message);
    if (digit !== null) this.digit(digit, 'provider');
  }

  private digit(digit: string, source: 'rfc4733' | 'provider'): void {
    this.stats.digits++;
    this.fire('dtmf', { digit, source });
  }
}
