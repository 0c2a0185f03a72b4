/**
 * A Twilio Media Stream as a `CallLeg`: inbound µ-law `media` messages become
 * 20 ms PCM frames (re-chunked if Twilio's chunks are not 160 bytes), `dtmf`
 * becomes DTMF, echoed `mark`s report playout, `stop` or a dropped socket
 * closes the leg. Outbound frames go out as µ-law `media` messages, paced by
 * the pipeline; `clear` drops Twilio's buffer (barge-in).
 *
 * Bad input never ends the call: malformed, oversized, duplicate or
 * out-of-order messages are dropped and reported as warnings.
 *
 * Per frame, nothing is built that can be avoided (50 messages a second each
 * way per call): inbound, the payload is base64-decoded into a shared scratch
 * buffer and µ-law-decoded into a view of a sample slab (the common `media`
 * message is read straight from the received bytes, media-scan.ts); outbound, the media
 * message is written straight into one Buffer — the call's fixed JSON prefix
 * and suffix around the base64 of the µ-law bytes — with no JSON building and
 * no intermediate strings, and the socket is corked for the rest of the media
 * tick so a frame and the marks behind it leave in one write.
 */
import type WebSocket from 'ws';
import { guardMessages } from '../../http/ws-guard.ts';
import { base64Length, decodeBase64BytesInto, decodeBase64Into, encodeBase64Into } from '../../media/base64.ts';
import { CallLeg, type LegDescription } from '../../media/call-leg.ts';
import { SampleSlab } from '../../media/frame.ts';
import { muLawDecode, muLawEncode } from '../../media/g711.ts';
import { corkForTurn, type Corkable } from '../../media/tick-cork.ts';
import { scanMedia } from './media-scan.ts';
import { MAX_MEDIA_PAYLOAD_CHARS, outbound, parseInbound, type InboundMessage } from './messages.ts';

const FRAME = 160; // 20 ms at 8 kHz
/** A sequence number this close behind the last one is a duplicate or reordered message. */
const REORDER_WINDOW = 50;
/** Decoded inbound payloads, consumed (copied into the leg's pending frame) before the next message. */
const SCRATCH = new Uint8Array((MAX_MEDIA_PAYLOAD_CHARS / 4) * 3);
const SEND_TEXT = { binary: false } as const;

export interface TwilioLegStats {
  mediaMessages: number;
  dropped: { malformed: number; outOfOrder: number; unknown: number };
  framesOut: number;
}

export class TwilioLeg extends CallLeg {
  readonly description: LegDescription;
  readonly stats: TwilioLegStats = { mediaMessages: 0, dropped: { malformed: 0, outOfOrder: 0, unknown: 0 }, framesOut: 0 };
  private lastSeq = 0;
  private readonly pending = new Uint8Array(FRAME);
  private pendingLen = 0;
  private mediaTs = 0;
  private readonly encodeBuf = new Uint8Array(FRAME);
  private readonly slab = new SampleSlab();
  /** The media message around its payload: `{"event":"media","streamSid":…,"media":{"payload":"` and `"}}`. */
  private readonly mediaHead: Buffer;
  private readonly mediaTail: Buffer;

  /** `socket`: the connection under `ws`, corked per media tick (optional: without it every message is its own write). */
  constructor(
    private readonly ws: WebSocket,
    readonly streamSid: string,
    readonly callSid: string,
    startSeq: number,
    private readonly socket: Corkable | null = null,
  ) {
    super();
    this.lastSeq = startSeq;
    const [head, tail] = outbound.media(streamSid, '\u0000').split('\u0000') as [string, string];
    this.mediaHead = Buffer.from(head);
    this.mediaTail = Buffer.from(tail);
    this.description = {
      provider: 'twilio',
      session: streamSid,
      codec: 'PCMU',
      inputRate: 8000,
      outputRate: 8000,
      reportsPlayout: true,
      resume: { callSid, streamSid },
      transfer: 'redirect',
    };
    // A handler that throws closes this socket (1011) and is reported once: it never ends the process.
    const failed = (err: unknown): void => this.warn('internal_error', `message handler failed: ${err instanceof Error ? err.message : String(err)}`);
    ws.on('message', guardMessages(ws, failed, (data, isBinary) => this.onMessage(data, isBinary)));
    ws.on('close', (code) => this.remoteClosed(`socket closed (${code})`, false));
    ws.on('error', (err) => this.fire('warning', { code: 'socket_error', message: err.message }));
  }

  sendFrame(samples: Int16Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const bytes = samples.length === FRAME ? muLawEncode(samples, this.encodeBuf) : muLawEncode(samples);
    const head = this.mediaHead;
    const tail = this.mediaTail;
    // allocUnsafe: small sizes come from Node's shared pool; every byte is written below.
    const msg = Buffer.allocUnsafe(head.length + base64Length(bytes.length) + tail.length);
    head.copy(msg, 0);
    tail.copy(msg, encodeBase64Into(bytes, msg, head.length));
    if (this.socket) corkForTurn(this.socket);
    this.ws.send(msg, SEND_TEXT);
    this.stats.framesOut++;
  }

  sendMark(name: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.socket) corkForTurn(this.socket);
    this.ws.send(outbound.mark(this.streamSid, name));
  }

  clear(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(outbound.clear(this.streamSid));
  }

  protected doClose(): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000, 'closing');
  }

  private warn(code: string, message: string): void {
    this.fire('warning', { code, message });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) {
      this.stats.dropped.malformed++;
      return this.warn('malformed_message', 'binary frame on a Twilio media stream');
    }
    if (Buffer.isBuffer(data)) {
      // The common message, read from the bytes (media-scan.ts); anything else takes the full path below.
      const m = scanMedia(data);
      if (m) return this.media(m.sequenceNumber, m.inbound, m.inbound ? decodeBase64BytesInto(data, m.payloadStart, m.payloadEnd, SCRATCH) : 0);
    }
    const parsed = parseInbound(data.toString());
    if (!parsed.ok) {
      this.stats.dropped.malformed++;
      return this.warn('malformed_message', parsed.error);
    }
    this.handle(parsed.msg);
  }

  private handle(msg: InboundMessage): void {
    switch (msg.event) {
      case 'media': {
        const inbound = msg.media.track === undefined || msg.media.track === 'inbound';
        return this.media(Number(msg.sequenceNumber), inbound, inbound ? decodeBase64Into(msg.media.payload, SCRATCH) : 0);
      }
      case 'dtmf':
        return this.fire('dtmf', { digit: msg.dtmf.digit.toUpperCase(), source: 'provider' });
      case 'mark':
        return this.fire('markPlayed', msg.mark.name);
      case 'stop':
        this.remoteClosed('twilio stop', true);
        if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'stopped');
        return;
      case 'unknown':
        this.stats.dropped.unknown++;
        return this.warn('unknown_event', `ignored Twilio event "${msg.name}"`);
      case 'connected':
      case 'start':
        return this.warn('unexpected_message', `${msg.event} after the stream started`);
    }
  }

  /**
   * One media message: sequence `n`, inbound track or not, and its payload decoded into SCRATCH (`len` bytes;
   * -1 = not strict base64).
   */
  private media(n: number, inbound: boolean, len: number): void {
    if (n <= this.lastSeq && this.lastSeq - n < REORDER_WINDOW) {
      this.stats.dropped.outOfOrder++;
      return this.warn('out_of_order', `media ${n} after ${this.lastSeq}`);
    }
    // Far behind is not a late packet but a sender that restarted its numbering: resync
    // rather than drop the rest of the call.
    if (n <= this.lastSeq) this.warn('sequence_reset', `media ${n} after ${this.lastSeq}: resynchronised`);
    this.lastSeq = n;
    if (!inbound) return;
    // Strict base64 (Node's own decoder would skip junk silently), decoded without allocating.
    if (len < 0) {
      this.stats.dropped.malformed++;
      return this.warn('malformed_message', 'media: payload is not base64');
    }
    this.stats.mediaMessages++;
    this.pushAudio(SCRATCH, len);
  }

  /** Re-chunks the first `len` µ-law bytes of `bytes` into exact 20 ms frames. */
  private pushAudio(bytes: Uint8Array, len: number): void {
    const pending = this.pending;
    for (let i = 0; i < len; i++) {
      pending[this.pendingLen++] = bytes[i] as number;
      if (this.pendingLen === FRAME) {
        const samples = muLawDecode(pending, this.slab.take(FRAME));
        this.pendingLen = 0;
        this.fire('audio', { samples, sampleRate: 8000, timestamp: this.mediaTs });
        this.mediaTs += FRAME;
      }
    }
  }
}
