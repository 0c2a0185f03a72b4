/**
 * A Vonage Voice WebSocket as a `CallLeg`. After `websocket:connected` (handled
 * by index.ts), Vonage sends binary messages of 16-bit signed little-endian
 * linear PCM (20 ms: 640 bytes at 16 kHz, 320 at 8 kHz) and text events.
 *
 * Inbound: binary audio is re-chunked into exact 20 ms frames; `websocket:dtmf`
 * becomes DTMF (source `provider`); `websocket:notify` echoing one of our marks
 * reports playout; `websocket:cleared` acknowledges a `clear`. Outbound: paced
 * 20 ms frames as binary messages (Vonage buffers what it is sent — about a
 * minute at most — so the pipeline's clock paces them), marks as `notify`
 * commands, barge-in as `{"action":"clear"}`. A dropped socket closes the leg;
 * Vonage then asks the synchronous eventUrl for a new NCCO and the call resumes.
 *
 * Bad input never ends the call: an odd-length or oversized binary message, a
 * malformed or unknown text message is dropped and reported as a warning.
 */
import type WebSocket from 'ws';
import { guardMessages } from '../../http/ws-guard.ts';
import { CallLeg, type LegDescription } from '../../media/call-leg.ts';
import { outbound, parseText, type InboundText } from './messages.ts';

/** A binary message longer than this much audio is not a Vonage frame (it sends 20 ms). */
export const MAX_AUDIO_MS = 200;

export interface VonageLegStats {
  audioMessages: number;
  dropped: { malformed: number; oversized: number; unknown: number };
  framesOut: number;
  clears: number;
  cleared: number;
}

export interface VonageLegInfo {
  rate: 8000 | 16000;
  /** Our id for this media connection (Vonage gives the socket none). */
  session: string;
  /** The caller's call uuid and the conversation uuid (stored with the leg row). */
  callUuid: string;
  conversationUuid: string | null;
}

export class VonageLeg extends CallLeg {
  readonly description: LegDescription;
  readonly stats: VonageLegStats = { audioMessages: 0, dropped: { malformed: 0, oversized: 0, unknown: 0 }, framesOut: 0, clears: 0, cleared: 0 };
  private readonly frameBytes: number;
  private readonly maxBytes: number;
  private readonly pending: Buffer;
  private pendingLen = 0;
  private mediaTs = 0;

  constructor(
    private readonly ws: WebSocket,
    readonly info: VonageLegInfo,
  ) {
    super();
    this.frameBytes = (info.rate / 50) * 2;
    this.maxBytes = (info.rate * 2 * MAX_AUDIO_MS) / 1000;
    this.pending = Buffer.alloc(this.frameBytes);
    this.description = {
      provider: 'vonage',
      session: info.session,
      codec: `L16/${info.rate}`,
      inputRate: info.rate,
      outputRate: info.rate,
      reportsPlayout: true,
      resume: { uuid: info.callUuid, conversation_uuid: info.conversationUuid },
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
    const buf = Buffer.allocUnsafe(samples.length * 2);
    for (let i = 0; i < samples.length; i++) buf.writeInt16LE(samples[i] as number, i * 2);
    this.ws.send(buf, { binary: true });
    this.stats.framesOut++;
  }

  sendMark(name: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(outbound.notify({ mark: name }));
  }

  clear(): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.stats.clears++;
    this.ws.send(outbound.clear());
  }

  protected doClose(): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000, 'closing');
  }

  private warn(code: string, message: string): void {
    this.fire('warning', { code, message });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) return this.onAudio(bytes);
    const parsed = parseText(bytes.toString('utf8'));
    if (!parsed.ok) {
      this.stats.dropped.malformed++;
      return this.warn('malformed_message', parsed.error);
    }
    this.handle(parsed.msg);
  }

  private handle(msg: InboundText): void {
    switch (msg.event) {
      case 'websocket:dtmf':
        return this.fire('dtmf', { digit: msg.digit.toUpperCase(), source: 'provider' });
      case 'websocket:notify': {
        const mark = msg.payload?.['mark'];
        if (typeof mark === 'string') this.fire('markPlayed', mark);
        return;
      }
      case 'websocket:cleared':
        this.stats.cleared++;
        return;
      case 'websocket:error':
        return this.warn('provider_error', JSON.stringify(msg).slice(0, 300));
      case 'websocket:connected':
        return this.warn('unexpected_message', 'websocket:connected after the stream started');
      case 'unknown':
        this.stats.dropped.unknown++;
        return this.warn('unknown_event', `ignored Vonage event "${msg.name}"`);
    }
  }

  private onAudio(bytes: Buffer): void {
    if (bytes.length % 2 !== 0) {
      this.stats.dropped.malformed++;
      return this.warn('malformed_message', `binary message of ${bytes.length} bytes is not whole 16-bit samples`);
    }
    if (bytes.length > this.maxBytes) {
      this.stats.dropped.oversized++;
      return this.warn('oversized_message', `binary message of ${bytes.length} bytes (over ${MAX_AUDIO_MS} ms of audio)`);
    }
    this.stats.audioMessages++;
    let i = 0;
    while (i < bytes.length) {
      const take = Math.min(this.frameBytes - this.pendingLen, bytes.length - i);
      bytes.copy(this.pending, this.pendingLen, i, i + take);
      this.pendingLen += take;
      i += take;
      if (this.pendingLen === this.frameBytes) {
        const samples = new Int16Array(this.frameBytes / 2);
        for (let s = 0; s < samples.length; s++) samples[s] = this.pending.readInt16LE(s * 2);
        this.pendingLen = 0;
        this.fire('audio', { samples, sampleRate: this.info.rate, timestamp: this.mediaTs });
        this.mediaTs += samples.length;
      }
    }
  }
}
