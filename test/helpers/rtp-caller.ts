/**
 * The media half of a scripted SIP caller (sip-ua.ts): one UDP socket sending
 * PCMU RTP in 20 ms frames paced in real time (CallerClock: queued speech,
 * 0xFF silence when idle, as a phone sends continuously), RFC 4733 DTMF
 * (events replace audio frames, as RFC 4733 §2.5.1.1 has it: a start packet
 * with the marker bit, updates, three end packets, one RTP timestamp), and
 * the gateway's RTP received and measured. With `srtp` set (sip-ua.ts `srtp: true`) every packet goes out
 * as SRTP and comes in through werift's SRTP (ingress/sip/srtp.ts); one that does not decrypt is counted.
 *
 * Agent talk spurts: the gateway sends nothing between plays, so a gap of
 * SPURT_GAP_MS ends a spurt. A spurt that started before the caller began
 * speaking and ended while they spoke is counted as cut off (`cutOff`): on
 * RTP that is what barge-in looks like from the caller's side, there being
 * no `clear` message to count.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { CallerClock } from './caller-clock.ts';
import type { SrtpContext } from '../../ingress/sip/srtp.ts';

const PCMU = 0;
export const EVENT_PT = 101;
const SPURT_GAP_MS = 120;
const DIGITS = '0123456789*#ABCD';

export class RtpCaller {
  /** Agent µ-law payloads received, in arrival order. */
  readonly received: Buffer[] = [];
  receivedBytes = 0;
  /** Packets of pure digital silence the gateway sent while the agent was quiet. */
  silencePackets = 0;
  /** The last 2,000 audio packets' arrival time, sequence number, timestamp and whether they were silence. */
  readonly arrivals: Array<{ at: number; seq: number; ts: number; silence: boolean }> = [];
  readonly protocolErrors: string[] = [];
  /** Agent talk spurts cut off by the caller's speech (see the file comment). */
  cutOff = 0;
  /** SRTP both ways (null = plain RTP), and the gateway packets that did not decrypt. */
  srtp: SrtpContext | null = null;
  srtpFailures = 0;
  private remote: { address: string; port: number } | null = null;
  private readonly clock: CallerClock;
  private readonly ssrc = crypto.randomBytes(4).readUInt32BE(0);
  /** The next sequence number (a test may set it near 65535 to make the rollover counter move). */
  seq = crypto.randomInt(0, 0xffff);
  private ts = crypto.randomInt(0, 0x7fffffff);
  private readonly events: Array<Array<{ marker: boolean; at: number; payload: Buffer }>> = [];
  private running = false;
  private spurt: { start: number; last: number } | null = null;
  private speakingSince: number | null = null;
  private readonly spurtTimer: NodeJS.Timeout;

  private constructor(readonly socket: dgram.Socket) {
    this.clock = new CallerClock({ idleSilence: true, running: () => this.running && this.remote !== null, send: (frame) => this.sendFrame(frame) });
    socket.on('message', (buf, rinfo) => this.onRtp(buf, rinfo));
    this.spurtTimer = setInterval(() => this.closeSpurt(), 20);
  }

  static async open(address: string): Promise<RtpCaller> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, address, () => resolve());
    });
    return new RtpCaller(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Starts sending to where the answer asked for RTP. */
  start(remote: { address: string; port: number }): void {
    this.remote = remote;
    this.running = true;
    this.clock.ensure();
  }

  /** Plays µ-law in real time; resolves once the last frame was sent. */
  async speak(ulaw: Buffer): Promise<void> {
    this.speakingSince = performance.now();
    try {
      await this.clock.play(ulaw);
    } finally {
      this.speakingSince = null;
    }
  }

  /** Queues one RFC 4733 event (about 100 ms); false when no media is flowing. */
  sendDtmf(digit: string): boolean {
    const event = DIGITS.indexOf(digit.toUpperCase());
    if (event < 0 || !this.running || !this.remote) return false;
    const packets: Array<{ marker: boolean; at: number; payload: Buffer }> = [];
    const at = this.ts; // every packet of one event carries its start timestamp
    for (let i = 1; i <= 8; i++) {
      const end = i > 5;
      const payload = Buffer.alloc(4);
      payload[0] = event;
      payload[1] = (end ? 0x80 : 0) | 10; // E bit, volume -10 dBm0
      payload.writeUInt16BE(Math.min(i, 5) * 160, 2);
      packets.push({ marker: i === 1, at, payload });
    }
    this.events.push(packets);
    return true;
  }

  stop(): void {
    this.running = false;
    this.clock.stop();
  }

  close(): void {
    this.stop();
    clearInterval(this.spurtTimer);
    this.socket.close();
  }

  private sendFrame(frame: Buffer): void {
    if (!this.remote) return;
    const current = this.events[0];
    let bytes: Buffer;
    const event = current?.shift();
    if (current && event) {
      if (current.length === 0) this.events.shift();
      bytes = this.packet(EVENT_PT, event.marker, event.at, event.payload);
    } else bytes = this.packet(PCMU, false, this.ts, frame);
    this.ts = (this.ts + 160) >>> 0;
    this.socket.send(this.srtp ? this.srtp.protectRtp(bytes) : bytes, this.remote.port, this.remote.address);
  }

  /** An RTP packet at the next sequence number. */
  private packet(pt: number, marker: boolean, timestamp: number, payload: Buffer): Buffer {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(this.seq, 2);
    h.writeUInt32BE(timestamp, 4);
    h.writeUInt32BE(this.ssrc, 8);
    this.seq = (this.seq + 1) & 0xffff;
    return Buffer.concat([h, payload]);
  }

  private onRtp(raw: Buffer, rinfo: dgram.RemoteInfo): void {
    const buf = this.srtp ? this.srtp.unprotectRtp(raw) : raw;
    if (!buf) return void this.srtpFailures++;
    if (buf.length < 12 || buf[0]! >> 6 !== 2) return void this.protocolErrors.push(`not RTP v2 (${buf.length} bytes)`);
    const pt = buf[1]! & 0x7f;
    if (pt >= 72 && pt <= 76) return; // RTCP on the RTP port (rtcp-mux style): not audio
    if (this.remote && (rinfo.address !== this.remote.address || rinfo.port !== this.remote.port)) {
      this.protocolErrors.push(`RTP from ${rinfo.address}:${rinfo.port}, not the answer's ${this.remote.address}:${this.remote.port}`);
    }
    if (pt !== PCMU) return void this.protocolErrors.push(`RTP payload type ${pt}, not the negotiated PCMU`);
    const cc = buf[0]! & 0x0f;
    let off = 12 + cc * 4;
    if (buf[0]! & 0x10) off += 4 + buf.readUInt16BE(off + 2) * 4;
    let end = buf.length;
    if (buf[0]! & 0x20) end -= buf[buf.length - 1]!;
    const payload = Buffer.from(buf.subarray(off, end));
    const silence = payload.every((b) => b === 0xff);
    this.arrivals.push({ at: performance.now(), seq: buf.readUInt16BE(2), ts: buf.readUInt32BE(4), silence });
    if (this.arrivals.length > 2000) this.arrivals.splice(0, 1000);
    // Digital silence (µ-law 0xFF): the gateway keeps RTP flowing between talk spurts; not agent audio.
    if (silence) {
      this.silencePackets++;
      return;
    }
    this.received.push(payload);
    this.receivedBytes += payload.length;
    const now = performance.now();
    if (!this.spurt) this.spurt = { start: now, last: now };
    else this.spurt.last = now;
  }

  private closeSpurt(): void {
    const s = this.spurt;
    if (!s || performance.now() - s.last < SPURT_GAP_MS) return;
    this.spurt = null;
    if (this.speakingSince !== null && s.start < this.speakingSince && s.last >= this.speakingSince) this.cutOff++;
  }
}
