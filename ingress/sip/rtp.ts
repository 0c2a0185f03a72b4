/**
 * RTP/RTCP for one call (RFC 3550): a socket pair from the configured port
 * range, G.711 both ways, RFC 4733 telephone-events, symmetric RTP (RFC 4961:
 * we send from the port we receive on, to where the far end's packets come
 * from once they arrive — "latching", which gets through NATs), a small
 * reorder buffer, and RTCP reports every 5 s. Every entry from the loop
 * (socket messages, the report timer, the jitter buffer's timer) goes through
 * one FaultGuard and every send through sendUdp: an exception or an unusable
 * target is a 'fault' — reported once, the session closed — and ends only
 * this call.
 *
 *   far end ──RTP──► parse ─► latch ─► JitterBuffer ─► G.711 decode ─► 'audio'
 *                             └─ telephone-event ─► dedupe by event timestamp ─► 'dtmf'
 *   sendFrame ─► G.711 encode ─► RTP ─► latched address (else the SDP's)
 *
 * With SRTP (`srtp`, srtp.ts) every packet in is authenticated and decrypted before it is parsed (one that fails, is
 * replayed or too old is dropped and counted as ignored; it never latches), and every packet out — RTCP included,
 * as SRTCP — is protected just before it is sent.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { aLawDecode, aLawEncode, muLawDecode, muLawEncode } from '../../media/g711.ts';
import { eventToDigit, parseTelephoneEvent } from '../../media/dtmf.ts';
import { SafeEmitter } from '../../media/emitter.ts';
import { FaultGuard, sendUdp } from '../../media/guard.ts';
import { JitterBuffer } from './jitter.ts';
import { buildReport, parseReport, ReceiverStats } from './rtcp.ts';
import type { NegotiatedMedia } from './sdp.ts';
import type { SrtpContext } from './srtp.ts';

/** Allocates even RTP ports (RTCP = +1) from the configured range. */
export class RtpPortPool {
  private readonly inUse = new Set<number>();
  private next: number;

  constructor(
    readonly low: number,
    readonly high: number,
    readonly host: string,
  ) {
    this.next = low + 2 * Math.floor(Math.random() * Math.max(1, (high - low) / 2));
  }

  /** Binds a pair; `preferred` (a restart re-binding its call's port) is tried first. */
  async bind(preferred?: number): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket; port: number }> {
    const span = Math.max(1, Math.floor((this.high - this.low + 1) / 2));
    for (let i = 0; i <= span; i++) {
      let port: number;
      if (i === 0 && preferred !== undefined) port = preferred;
      else {
        port = this.next;
        this.next += 2;
        if (this.next + 1 > this.high) this.next = this.low;
      }
      if (this.inUse.has(port) || port + 1 > this.high + 1) continue;
      try {
        const rtp = await bindUdp(port, this.host);
        try {
          const rtcp = await bindUdp(port + 1, this.host);
          this.inUse.add(port);
          return { rtp, rtcp, port };
        } catch {
          rtp.close();
        }
      } catch {
        /* taken: next */
      }
    }
    throw new Error(`no free RTP port in ${this.low}-${this.high}`);
  }

  /** Binds exactly `port` (a restarted node re-binding a live call's port); throws if it is taken. */
  async bindExact(port: number): Promise<{ rtp: dgram.Socket; rtcp: dgram.Socket; port: number }> {
    if (this.inUse.has(port)) throw new Error(`RTP port ${port} is in use`);
    const rtp = await bindUdp(port, this.host);
    try {
      const rtcp = await bindUdp(port + 1, this.host);
      this.inUse.add(port);
      return { rtp, rtcp, port };
    } catch (err) {
      rtp.close();
      throw err;
    }
  }

  release(port: number): void {
    this.inUse.delete(port);
  }
}

function bindUdp(port: number, host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/** Parses an RTP packet (CSRCs, extension and padding skipped); null if it is not RTP v2. */
export function parseRtp(buf: Buffer): RtpPacket | null {
  if (buf.length < 12 || (buf[0] as number) >> 6 !== 2) return null;
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  let off = 12 + 4 * (b0 & 0x0f);
  if (b0 & 0x10) {
    if (off + 4 > buf.length) return null;
    off += 4 + 4 * buf.readUInt16BE(off + 2);
  }
  const pad = b0 & 0x20 ? (buf[buf.length - 1] as number) : 0;
  const end = buf.length - pad;
  if (off > end) return null;
  return { marker: (b1 & 0x80) !== 0, payloadType: b1 & 0x7f, seq: buf.readUInt16BE(2), timestamp: buf.readUInt32BE(4), ssrc: buf.readUInt32BE(8), payload: buf.subarray(off, end) };
}

export type RtpEvents = {
  /** Decoded 8 kHz PCM in arrival order; `gap` = samples lost just before it. */
  audio: [samples: Int16Array, gap: number];
  dtmf: [digit: string];
  latched: [to: { address: string; port: number }];
  /** RTCP BYE from the far end. */
  bye: [];
  /** The session failed (an exception in a socket or timer callback, a send that cannot go): it is closed; end the call. */
  fault: [reason: string];
};

export interface RtpSessionStats {
  packetsIn: number;
  packetsOut: number;
  ignored: number;
  events: number;
}

/** Gaps (in samples) up to this are filled with silence; longer ones are a pause, not loss. */
const MAX_FILL = 8000;
const RTCP_INTERVAL_MS = 5000;

export class RtpSession extends SafeEmitter<RtpEvents> {
  readonly stats: RtpSessionStats = { packetsIn: 0, packetsOut: 0, ignored: 0, events: 0 };
  readonly receiver = new ReceiverStats();
  private media: NegotiatedMedia;
  private target: { address: string; port: number };
  private rtcpTarget: { address: string; port: number };
  private latched: { address: string; port: number; at: number } | null = null;
  private readonly ssrc = crypto.randomBytes(4).readUInt32BE(0);
  private seq = crypto.randomBytes(2).readUInt16BE(0);
  private ts = crypto.randomBytes(4).readUInt32BE(0);
  private octets = 0;
  private firstOut = true;
  private lastEvent: { ssrc: number; ts: number } | null = null;
  private readonly jitter: JitterBuffer<Buffer>;
  private nextTs: number | null = null;
  private readonly report: NodeJS.Timeout;
  private closed = false;
  private readonly guard = new FaultGuard((err, where) => this.fail(`${where}: ${err instanceof Error ? err.message : String(err)}`));
  private readonly family: 4 | 6;
  /** Encoded digital silence for the current codec (sendSilence). */
  private silence: { codec: string; payload: Uint8Array } | null = null;
  /** SRTP/SRTCP for this call (SDES); null = plain RTP. */
  srtp: SrtpContext | null = null;

  constructor(
    private readonly sockets: { rtp: dgram.Socket; rtcp: dgram.Socket; port: number },
    media: NegotiatedMedia,
    private readonly cname: string,
  ) {
    super();
    this.media = media;
    this.family = sockets.rtp.address().family === 'IPv6' ? 6 : 4;
    this.target = { ...media.remote };
    this.rtcpTarget = media.rtcp ? { ...media.rtcp } : { address: media.remote.address, port: media.remote.port + 1 };
    this.jitter = new JitterBuffer<Buffer>((p) => this.decode(p.timestamp, p.item), undefined, undefined, this.guard);
    sockets.rtp.on('message', this.guard.wrap('RTP in', (buf: Buffer, rinfo: dgram.RemoteInfo) => this.onRtp(buf, rinfo)));
    sockets.rtcp.on('message', this.guard.wrap('RTCP in', (buf: Buffer, rinfo: dgram.RemoteInfo) => this.onRtcp(buf, rinfo)));
    this.report = setInterval(this.guard.wrap('RTCP report', () => this.sendReport()), RTCP_INTERVAL_MS);
    this.report.unref();
  }

  get port(): number {
    return this.sockets.port;
  }
  get remote(): { address: string; port: number } {
    return { ...this.target };
  }
  get negotiated(): NegotiatedMedia {
    return this.media;
  }

  /** New media from a re-INVITE (hold/unhold, codec change, new address). */
  update(media: NegotiatedMedia): void {
    const moved = media.remote.address !== this.media.remote.address || media.remote.port !== this.media.remote.port;
    this.media = media;
    if (moved && media.remote.address !== '0.0.0.0') {
      this.target = { ...media.remote };
      this.rtcpTarget = media.rtcp ? { ...media.rtcp } : { address: media.remote.address, port: media.remote.port + 1 };
      this.latched = null;
    }
    this.jitter.reset();
    this.nextTs = null;
  }

  /** Sends one frame of 8 kHz PCM (nothing while we must not send: on hold, recvonly). */
  send(samples: Int16Array): void {
    if (this.closed) return;
    this.sendPayload(this.media.codec === 'PCMA' ? aLawEncode(samples) : muLawEncode(samples), samples.length);
  }

  /** `samples` of digital silence, from a payload encoded once per codec (a slot without agent audio). */
  sendSilence(samples: number): void {
    if (this.closed) return;
    const codec = this.media.codec;
    if (this.silence?.codec !== codec || this.silence.payload.length !== samples) {
      const zero = new Int16Array(samples);
      this.silence = { codec, payload: codec === 'PCMA' ? aLawEncode(zero) : muLawEncode(zero) };
    }
    this.sendPayload(this.silence.payload, samples);
  }

  private sendPayload(payload: Uint8Array, samples: number): void {
    const dir = this.media.direction;
    if (dir === 'recvonly' || dir === 'inactive' || this.target.address === '0.0.0.0') {
      this.ts = (this.ts + samples) >>> 0;
      return;
    }
    const pkt = Buffer.alloc(12 + payload.length);
    pkt[0] = 0x80;
    pkt[1] = (this.firstOut ? 0x80 : 0) | this.media.payloadType;
    pkt.writeUInt16BE(this.seq, 2);
    pkt.writeUInt32BE(this.ts, 4);
    pkt.writeUInt32BE(this.ssrc, 8);
    pkt.set(payload, 12);
    this.firstOut = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + samples) >>> 0;
    this.stats.packetsOut++;
    this.octets += payload.length;
    this.sendTo(this.sockets.rtp, this.srtp ? this.srtp.protectRtp(pkt) : pkt, this.target);
  }

  /** A send that cannot go (no IP literal or port, a closed socket) fails the session instead of throwing. */
  private sendTo(sock: dgram.Socket, pkt: Buffer, to: { address: string; port: number }): void {
    const error = sendUdp(sock, pkt, to.port, to.address, this.family);
    if (error !== null) this.guard.report(new Error(error), sock === this.sockets.rtp ? 'RTP out' : 'RTCP out');
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.close();
    this.emit('fault', reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.report);
    this.jitter.close();
    try {
      this.sockets.rtp.close();
      this.sockets.rtcp.close();
    } catch {
      /* already closed */
    }
  }

  private onRtp(raw: Buffer, rinfo: dgram.RemoteInfo): void {
    const buf = this.srtp ? this.srtp.unprotectRtp(raw) : raw;
    if (!buf) return void this.stats.ignored++;
    const p = parseRtp(buf);
    const isEvent = p !== null && p.payloadType === this.media.eventPayloadType;
    if (!p || (p.payloadType !== this.media.payloadType && !isEvent)) {
      this.stats.ignored++;
      return;
    }
    this.stats.packetsIn++;
    this.latch(rinfo, p.ssrc);
    if (isEvent) return this.onEvent(p);
    if (this.receiver.ssrc !== null && this.receiver.ssrc !== p.ssrc) {
      // A new stream (the far end restarted it): new numbering.
      this.jitter.reset();
      this.nextTs = null;
    }
    this.receiver.onRtp(p.ssrc, p.seq, p.timestamp, Date.now());
    this.jitter.push(p.seq, p.timestamp, Buffer.from(p.payload));
  }

  /** Symmetric RTP: answer to where the stream comes from; re-latch on a new SSRC or after 1 s of silence. */
  private latch(rinfo: dgram.RemoteInfo, ssrc: number): void {
    const now = Date.now();
    const l = this.latched;
    if (l && l.address === rinfo.address && l.port === rinfo.port) {
      l.at = now;
      return;
    }
    if (l && this.receiver.ssrc === ssrc && now - l.at < 1000) return;
    this.latched = { address: rinfo.address, port: rinfo.port, at: now };
    this.target = { address: rinfo.address, port: rinfo.port };
    this.rtcpTarget = { address: rinfo.address, port: rinfo.port + 1 };
    this.emit('latched', { ...this.target });
  }

  /** RFC 4733: one digit per event (keyed by its RTP timestamp); no marker bit needed, end retransmissions deduped. */
  private onEvent(p: RtpPacket): void {
    const ev = parseTelephoneEvent(p.payload);
    if (!ev) return;
    if (this.lastEvent && this.lastEvent.ssrc === p.ssrc && this.lastEvent.ts === p.timestamp) return;
    this.lastEvent = { ssrc: p.ssrc, ts: p.timestamp };
    const digit = eventToDigit(ev.event);
    if (digit === null) return;
    this.stats.events++;
    this.emit('dtmf', digit);
  }

  private decode(timestamp: number, payload: Buffer): void {
    const samples = this.media.codec === 'PCMA' ? aLawDecode(payload) : muLawDecode(payload);
    let gap = 0;
    if (this.nextTs !== null) {
      const d = (timestamp - this.nextTs) | 0;
      if (d > 0 && d <= MAX_FILL) gap = d;
    }
    this.nextTs = (timestamp + samples.length) >>> 0;
    this.emit('audio', samples, gap);
  }

  private onRtcp(raw: Buffer, rinfo: dgram.RemoteInfo): void {
    const buf = this.srtp ? this.srtp.unprotectRtcp(raw) : raw;
    if (!buf) return;
    const ok = parseReport(buf, {
      senderReport: (_ssrc, ntp) => this.receiver.onSenderReport(ntp, Date.now()),
      bye: () => void this.emit('bye'),
    });
    if (ok) this.rtcpTarget = { address: rinfo.address, port: rinfo.port };
  }

  private sendReport(): void {
    if (this.closed || this.rtcpTarget.address === '0.0.0.0') return;
    const pkt = buildReport({ ssrc: this.ssrc, packets: this.stats.packetsOut, octets: this.octets, rtpTimestamp: this.ts }, this.receiver, this.cname, Date.now());
    this.sendTo(this.sockets.rtcp, this.srtp ? this.srtp.protectRtcp(pkt) : pkt, this.rtcpTarget);
  }
}
