/**
 * RTCP (RFC 3550 §6): receiver statistics for the far end's stream
 * (extended highest sequence, cumulative loss, interarrival jitter per A.8,
 * LSR/DLSR from its sender reports) and the compound SR/RR + SDES CNAME we
 * send every few seconds.
 */

const NTP_EPOCH_OFFSET = 2208988800;

export class ReceiverStats {
  ssrc: number | null = null;
  packets = 0;
  private baseSeq = 0;
  private maxSeq = 0;
  private cycles = 0;
  private jitter = 0;
  private lastTransit: number | null = null;
  private expectedPrior = 0;
  private receivedPrior = 0;
  /** Middle 32 bits of the last SR's NTP time, and when it arrived (ms). */
  private lastSr = 0;
  private lastSrAt = 0;

  /** Call for every RTP packet of the stream (`arrival` in RTP units of 8 kHz). */
  onRtp(ssrc: number, seq: number, timestamp: number, arrivalMs: number): void {
    if (this.ssrc !== ssrc) {
      this.ssrc = ssrc;
      this.baseSeq = seq;
      this.maxSeq = seq;
      this.cycles = 0;
      this.packets = 0;
      this.jitter = 0;
      this.lastTransit = null;
      this.expectedPrior = 0;
      this.receivedPrior = 0;
    }
    this.packets++;
    const delta = (seq - this.maxSeq) & 0xffff;
    if (delta > 0 && delta < 32768) {
      if (seq < this.maxSeq) this.cycles += 65536;
      this.maxSeq = seq;
    }
    const transit = Math.round(arrivalMs * 8) - timestamp;
    if (this.lastTransit !== null) {
      const d = Math.abs(transit - this.lastTransit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.lastTransit = transit;
  }

  onSenderReport(ntpMiddle: number, atMs: number): void {
    this.lastSr = ntpMiddle >>> 0;
    this.lastSrAt = atMs;
  }

  /** A 24-byte report block, or null before any packet. */
  reportBlock(nowMs: number): Buffer | null {
    if (this.ssrc === null) return null;
    const extMax = this.cycles + this.maxSeq;
    const expected = extMax - this.baseSeq + 1;
    const lost = Math.max(0, Math.min(0x7fffff, expected - this.packets));
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.packets - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.packets;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    const b = Buffer.alloc(24);
    b.writeUInt32BE(this.ssrc >>> 0, 0);
    b.writeUInt32BE(((fraction << 24) | lost) >>> 0, 4);
    b.writeUInt32BE(extMax >>> 0, 8);
    b.writeUInt32BE(Math.floor(this.jitter) >>> 0, 12);
    b.writeUInt32BE(this.lastSr, 16);
    b.writeUInt32BE(this.lastSr === 0 ? 0 : Math.floor(((nowMs - this.lastSrAt) / 1000) * 65536) >>> 0, 20);
    return b;
  }
}

export interface SenderState {
  ssrc: number;
  packets: number;
  octets: number;
  rtpTimestamp: number;
}

/** Compound RTCP: SR (we have sent) or RR, plus SDES with our CNAME. */
export function buildReport(sender: SenderState, receiver: ReceiverStats, cname: string, nowMs: number): Buffer {
  const block = receiver.reportBlock(nowMs);
  const rc = block ? 1 : 0;
  let head: Buffer;
  if (sender.packets > 0) {
    head = Buffer.alloc(28);
    head[0] = 0x80 | rc;
    head[1] = 200;
    const secs = Math.floor(nowMs / 1000) + NTP_EPOCH_OFFSET;
    const frac = Math.floor(((nowMs % 1000) / 1000) * 2 ** 32);
    head.writeUInt32BE(sender.ssrc >>> 0, 4);
    head.writeUInt32BE(secs >>> 0, 8);
    head.writeUInt32BE(frac >>> 0, 12);
    head.writeUInt32BE(sender.rtpTimestamp >>> 0, 16);
    head.writeUInt32BE(sender.packets >>> 0, 20);
    head.writeUInt32BE(sender.octets >>> 0, 24);
  } else {
    head = Buffer.alloc(8);
    head[0] = 0x80 | rc;
    head[1] = 201;
    head.writeUInt32BE(sender.ssrc >>> 0, 4);
  }
  const first = block ? Buffer.concat([head, block]) : head;
  first.writeUInt16BE(first.length / 4 - 1, 2);
  const name = Buffer.from(cname, 'utf8').subarray(0, 255);
  const itemLen = 4 + 2 + name.length + 1; // ssrc + type/len + text + END
  const sdes = Buffer.alloc(4 + Math.ceil(itemLen / 4) * 4);
  sdes[0] = 0x81;
  sdes[1] = 202;
  sdes.writeUInt16BE(sdes.length / 4 - 1, 2);
  sdes.writeUInt32BE(sender.ssrc >>> 0, 4);
  sdes[8] = 1;
  sdes[9] = name.length;
  name.copy(sdes, 10);
  return Buffer.concat([first, sdes]);
}

/** Walks a compound packet: calls back for SRs (the NTP middle bits) and BYEs. */
export function parseReport(buf: Buffer, on: { senderReport(ssrc: number, ntpMiddle: number): void; bye(ssrc: number): void }): boolean {
  let off = 0;
  while (off + 4 <= buf.length) {
    if ((buf[off] as number) >> 6 !== 2) return false;
    const pt = buf[off + 1] as number;
    const len = (buf.readUInt16BE(off + 2) + 1) * 4;
    if (off + len > buf.length) return false;
    if (pt === 200 && len >= 28) on.senderReport(buf.readUInt32BE(off + 4), ((buf.readUInt32BE(off + 8) & 0xffff) << 16) | (buf.readUInt32BE(off + 12) >>> 16));
    if (pt === 203 && len >= 8) on.bye(buf.readUInt32BE(off + 4));
    off += len;
  }
  return off === buf.length;
}
