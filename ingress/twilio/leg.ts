/**
 * A Twilio Media Stream as a `CallLeg`: inbound µ-law `media` messages become
 * 20 ms PCM frames (re-chunked if Twilio's chunks are not 160 bytes), `dtmf`
 * becomes DTMF, echoed `mark`s report playout, `stop` or a dropped socket
 * closes the leg. Outbound frames go out as µ-law `media` messages, paced by
 * the pipeline; `clear` drops Twilio's buffer (barge-in).
 *
 * Bad input never ends the call: malformed, oversized, duplicate or
 * out-of-order messages are dropped and reported as warnings.
 */
import type WebSocket from 'ws';
import { guardMessages } from '../../http/ws-guard.ts';
import { CallLeg, type LegDescription } from '../../media/call-leg.ts';
import { muLawDecode, muLawEncode } from '../../media/g711.ts';
import { outbound, parseInbound, type InboundMessage } from './messages.ts';

const FRAME = 160; // 20 ms at 8 kHz
/** A sequence number this close behind the last one is a duplicate or reordered message. */
const REORDER_WINDOW = 50;

/** Fast base64 alphabet check (no regex allocation per message). */
function isBase64(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || (c === 61 && i >= n - 2);
    if (!ok) return false;
  }
  return true;
}

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

  constructor(
    private readonly ws: WebSocket,
    readonly streamSid: string,
    readonly callSid: string,
    startSeq: number,
  ) {
    super();
    this.lastSeq = startSeq;
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
    this.ws.send(outbound.media(this.streamSid, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')));
    this.stats.framesOut++;
  }

  sendMark(name: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(outbound.mark(this.streamSid, name));
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
        const n = Number(msg.sequenceNumber);
        if (n <= this.lastSeq && this.lastSeq - n < REORDER_WINDOW) {
          this.stats.dropped.outOfOrder++;
          return this.warn('out_of_order', `media ${n} after ${this.lastSeq}`);
        }
        // Far behind is not a late packet but a sender that restarted its numbering: resync
        // rather than drop the rest of the call.
        if (n <= this.lastSeq) this.warn('sequence_reset', `media ${n} after ${this.lastSeq}: resynchronised`);
        this.lastSeq = n;
        if (msg.media.track !== undefined && msg.media.track !== 'inbound') return;
        const payload = msg.media.payload;
        // Node's base64 decoder skips junk silently: a length/character check keeps garbage out.
        if (payload.length % 4 !== 0 || !isBase64(payload)) {
          this.stats.dropped.malformed++;
          return this.warn('malformed_message', 'media: payload is not base64');
        }
        this.stats.mediaMessages++;
        this.pushAudio(Buffer.from(payload, 'base64'));
        return;
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

  /** Re-chunks µ-law into exact 20 ms frames. */
  private pushAudio(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      const take = Math.min(FRAME - this.pendingLen, bytes.length - i);
      this.pending.set(bytes.subarray(i, i + take), this.pendingLen);
      this.pendingLen += take;
      i += take;
      if (this.pendingLen === FRAME) {
        const samples = muLawDecode(this.pending);
        this.pendingLen = 0;
        this.fire('audio', { samples, sampleRate: 8000, timestamp: this.mediaTs });
        this.mediaTs += FRAME;
      }
    }
  }
}
