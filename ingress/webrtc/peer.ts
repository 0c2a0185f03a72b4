/**
 * One werift peer connection answering a browser's offer (WHIP-style: the
 * offer carries all candidates, the answer carries ours, no trickle).
 *
 *   offer ─► setRemoteDescription ─► audio transceiver sendrecv (Opus + telephone-event)
 *         ─► createAnswer ─► host candidates gathered ─► answer SDP
 *   connected ─► RTP in (Opus, RFC 4733), RTP out (Opus), data channel both ways
 *
 * ICE: ICE-lite with host candidates unless STUN/TURN servers are configured
 * (config.ts); werift skips loopback when gathering, so configured host
 * addresses (127.0.0.1 by default) are added explicitly. With several
 * candidates the browser may nominate one pair, then another: our DTLS, SRTP
 * and SCTP follow its latest nomination (nomination.ts), not werift's first.
 */
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, useOPUS, type RTCDataChannel, type RTCRtpTransceiver } from 'werift';
import type { WebrtcConfig } from './config.ts';
import { followNominations, type NominationLog } from './nomination.ts';

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface RtpIn {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  payload: Buffer;
}

export class PeerError extends Error {}

export class WebrtcPeer {
  private transceiver: RTCRtpTransceiver | null = null;
  private channel: RTCDataChannel | null = null;
  private rtpHandler: ((p: RtpIn) => void) | null = null;
  private dataHandler: ((m: string | Buffer) => void) | null = null;
  private readonly stateHandlers = new Set<(s: PeerState) => void>();
  private closed = false;
  /** Outbound RTP state (werift adds its own offsets and SSRC). */
  private seq = Math.floor(Math.random() * 0xffff);
  private ts = Math.floor(Math.random() * 0x7fffffff);

  private constructor(readonly pc: RTCPeerConnection) {
    pc.connectionStateChange.subscribe((s) => {
      for (const h of this.stateHandlers) h(s);
    });
    pc.onDataChannel.subscribe((dc) => {
      this.channel = dc;
      dc.onMessage.subscribe((m) => this.dataHandler?.(m));
    });
    pc.onRemoteTransceiverAdded.subscribe((t) => this.useTransceiver(t));
  }

  /** Negotiates an answer to `offerSdp`; throws PeerError with werift's reason for an offer it cannot take. */
  static async answer(offerSdp: string, cfg: WebrtcConfig, log?: NominationLog): Promise<{ peer: WebrtcPeer; answer: string }> {
    const lite = cfg.iceServers.length === 0;
    const pc = new RTCPeerConnection({
      iceLite: lite,
      iceServers: cfg.iceServers,
      iceAdditionalHostAddresses: cfg.hostAddresses,
      icePortRange: cfg.portRange,
      iceUseIpv6: false,
      codecs: {
        audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1 })],
        video: [],
      },
    });
    const peer = new WebrtcPeer(pc);
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
      for (const t of pc.getTransceivers()) {
        if (t.kind === 'audio') {
          t.setDirection('sendrecv');
          peer.useTransceiver(t);
        }
      }
      if (!peer.transceiver) throw new PeerError('no audio transceiver could be negotiated');
      await pc.setLocalDescription(await pc.createAnswer());
      followNominations(pc, log);
      const sdp = pc.localDescription?.sdp;
      if (!sdp) throw new PeerError('no answer could be created');
      if (!/^a=rtpmap:\d+ opus\/48000/im.test(sdp)) throw new PeerError('Opus could not be negotiated');
      return { peer, answer: sdp };
    } catch (err) {
      peer.close();
      throw err instanceof PeerError ? err : new PeerError(`the offer could not be negotiated: ${(err as Error).message}`);
    }
  }

  get state(): PeerState {
    return this.pc.connectionState;
  }

  onRtp(handler: ((p: RtpIn) => void) | null): void {
    this.rtpHandler = handler;
  }

  onData(handler: ((m: string | Buffer) => void) | null): void {
    this.dataHandler = handler;
  }

  onState(handler: (s: PeerState) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Resolves true once connected (ICE + DTLS), false if it failed, closed or timed out first. */
  connected(timeoutMs: number): Promise<boolean> {
    if (this.state === 'connected') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const off = this.onState((s) => {
        if (s === 'connected') done(true);
        else if (s === 'failed' || s === 'closed') done(false);
      });
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        off();
        resolve(ok);
      };
    });
  }

  /**
   * Sends one Opus packet. `gapFrames` > 0 means the agent was silent for that
   * many 20 ms frames: the RTP clock moves on by the gap and the marker bit
   * flags the new talkspurt (RFC 3551), so the browser plays it on time.
   */
  sendOpus(payload: Buffer, ticks: number, gapTicks: number): void {
    const sender = this.transceiver?.sender;
    if (!sender || this.closed) return;
    this.ts = (this.ts + gapTicks) >>> 0;
    const header = new RtpHeader({ payloadType: 111, sequenceNumber: this.seq, timestamp: this.ts, marker: gapTicks > 0 });
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + ticks) >>> 0;
    sender.sendRtp(new RtpPacket(header, payload)).catch(() => undefined);
  }

  /** Sends a JSON message on the browser's data channel, if it opened one. */
  sendData(msg: unknown): boolean {
    const dc = this.channel;
    if (!dc || dc.readyState !== 'open') return false;
    try {
      dc.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rtpHandler = null;
    this.dataHandler = null;
    this.pc.close().catch(() => undefined);
  }

  private useTransceiver(t: RTCRtpTransceiver): void {
    if (t.kind !== 'audio' || this.transceiver === t) return;
    if (this.transceiver) return; // one audio section (sdp.ts refuses more)
    this.transceiver = t;
    t.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((p) => {
        const h = p.header;
        this.rtpHandler?.({ payloadType: h.payloadType, sequenceNumber: h.sequenceNumber, timestamp: h.timestamp, payload: p.payload });
      });
    });
  }
}
