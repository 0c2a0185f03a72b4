/**
 * Deepgram cloud providers through the official SDK (@deepgram/sdk v5):
 * - DeepgramStt: live `/v1/listen` WebSocket (linear16 at the session rate, interim results, punctuation).
 *   `yes-no` sessions gather the final segments of an utterance (until `speech_final`, `UtteranceEnd`
 *   or the end of the stream) and map them with the `yes-no` answer phrases (vocabulary.ts):
 *   "yes" / "no" / dropped. `transcript` sessions mark a final segment that says one of their `phrases`.
 * - DeepgramTts (deepgram-tts.ts, re-exported here): Aura REST `/v1/speak`.
 * `url` points both at another base URL (a proxy, a self-hosted endpoint or the test fake); the
 * WebSocket URL is the same address with ws(s)://. The live socket is opened with reconnectAttempts 0:
 * a silent SDK reconnect would restart the clock under the results, so failures are reported as
 * SttError with `retryable` and the caller decides.
 */
import type { Deepgram, DeepgramClient } from '@deepgram/sdk';
import type { AudioFrame } from '../media/frame.ts';
import { SafeEmitter } from '../media/emitter.ts';
import { classifyYesNo, spotPhrase } from './vocabulary.ts';
import { makeDeepgramClient, permanentStatus, type DeepgramOptions } from './deepgram-client.ts';
import { pcmToBytes } from './pcm.ts';
import {
  SttError,
  type SpeechToText,
  type SttResult,
  type SttSession,
  type SttSessionEvents,
  type SttSessionOptions,
  type SttWord,
} from './stt.ts';

export type { DeepgramOptions } from './deepgram-client.ts';
export { DeepgramTts, type DeepgramTtsOptions } from './deepgram-tts.ts';

export interface DeepgramSttOptions extends DeepgramOptions {
  /** Default nova-3. */
  model?: string;
  /** Time to wait for the server to close after CloseStream. Default 10 s. */
  endTimeoutMs?: number;
}

export class DeepgramStt implements SpeechToText {
  readonly name = 'deepgram';
  private readonly client: DeepgramClient;

  constructor(private readonly opts: DeepgramSttOptions) {
    this.client = makeDeepgramClient(opts);
  }

  startSession(opts: SttSessionOptions): SttSession {
    return new DeepgramSession(this.client, this.opts, opts);
  }
}

type ListenSocket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;
type Results = Deepgram.listen.ListenV1Results;

/** Audio queued while the socket opens is capped at this many seconds. */
const MAX_QUEUE_SECONDS = 60;
const KEEPALIVE_MS = 5000;

class DeepgramSession extends SafeEmitter<SttSessionEvents> implements SttSession {
  private socket: ListenSocket | null = null;
  private open = false;
  private stopped = false;
  private failed = false;
  private closedEmitted = false;
  private closeStreamSent = false;
  private rateErrorSent = false;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private lastSend = Date.now();
  private keepAlive: NodeJS.Timeout | null = null;
  private ending: Promise<void> | null = null;
  private utterance: { texts: string[]; words: SttWord[]; conf: number[]; startMs: number; endMs: number } | null = null;
  private readonly opened: Promise<boolean>;
  private readonly socketClosed: Promise<void>;
  private resolveOpened!: (ok: boolean) => void;
  private resolveClosed!: () => void;

  constructor(
    client: DeepgramClient,
    private readonly dg: DeepgramSttOptions,
    private readonly opts: SttSessionOptions,
  ) {
    super();
    this.opened = new Promise((r) => (this.resolveOpened = r));
    this.socketClosed = new Promise((r) => (this.resolveClosed = r));
    this.connect(client).catch((e: unknown) => this.fail(e instanceof Error ? e.message : String(e), true));
  }

  private async connect(client: DeepgramClient): Promise<void> {
    const socket = await client.listen.v1.connect({
      model: this.dg.model ?? 'nova-3',
      language: this.opts.language ?? 'en-US',
      encoding: 'linear16',
      sample_rate: this.opts.sampleRate,
      channels: 1,
      interim_results: 'true',
      punctuate: 'true',
      reconnectAttempts: 0,
    });
    if (this.stopped) return void socket.close();
    this.socket = socket;
    socket.on('open', () => this.onOpen());
    socket.on('message', (m) => this.onMessage(m));
    socket.on('error', (e) => {
      const status = /server response: (\d{3})/i.exec(e.message)?.[1];
      const detail = status ? `HTTP ${status}` : e.message;
      this.fail(`Deepgram live connection failed: ${detail}`, !(status && permanentStatus(Number(status))));
    });
    socket.on('close', (ev) => this.onSocketClose(ev.code, ev.reason));
    socket.connect();
  }

  write(frame: AudioFrame): void {
    if (this.stopped || this.ending || this.failed) return;
    if (frame.sampleRate !== this.opts.sampleRate) {
      if (!this.rateErrorSent) {
        this.rateErrorSent = true;
        this.emit('error', new SttError(`frame at ${frame.sampleRate} Hz in a ${this.opts.sampleRate} Hz session (dropped)`, false));
      }
      return;
    }
    const bytes = pcmToBytes(frame.samples);
    if (this.open) return this.send(bytes);
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    // Dropping audio would shift every later timestamp: give up instead (the SDK times out first anyway).
    if (this.queuedBytes > MAX_QUEUE_SECONDS * this.opts.sampleRate * 2) {
      this.fail(`Deepgram live connection not open after ${MAX_QUEUE_SECONDS} s of audio`, true);
    }
  }

  end(): Promise<void> {
    this.ending ??= (async () => {
      const ok = await this.opened;
      if (ok && !this.stopped && this.socket) {
        try {
          this.closeStreamSent = true;
          this.socket.sendCloseStream({ type: 'CloseStream' });
        } catch {
          this.resolveClosed();
        }
        const timeoutMs = this.dg.endTimeoutMs ?? 10_000;
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          this.socketClosed.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
        ]);
        clearTimeout(timer);
        if (timedOut) this.fail(`Deepgram did not close the stream within ${timeoutMs} ms`, true);
      }
      this.flushUtterance();
      this.shutdown();
    })();
    return this.ending;
  }

  close(): void {
    this.utterance = null;
    this.shutdown();
  }

  private onOpen(): void {
    if (this.stopped) return;
    this.open = true;
    for (const b of this.queue) this.send(b);
    this.queue = [];
    this.queuedBytes = 0;
    this.keepAlive = setInterval(() => {
      if (this.open && !this.closeStreamSent && Date.now() - this.lastSend >= KEEPALIVE_MS) {
        try {
          this.socket?.sendKeepAlive({ type: 'KeepAlive' });
        } catch {
          // the close handler reports a dead socket
        }
      }
    }, KEEPALIVE_MS);
    this.keepAlive.unref();
    this.resolveOpened(true);
  }

  private send(bytes: Buffer): void {
    try {
      this.socket?.sendMedia(bytes);
      this.lastSend = Date.now();
    } catch {
      // not open any more: the close/error handler reports it
    }
  }

  private onSocketClose(code: number, reason: string): void {
    const wasOpen = this.open;
    this.open = false;
    if (this.stopped) return;
    if (wasOpen && this.closeStreamSent && code === 1000) return this.resolveClosed(); // the normal end
    // The SDK reports a failed handshake or a dropped connection as close-then-error:
    // give the error (HTTP status, errno) a turn to be the one reported.
    setImmediate(() => {
      const why = reason ? `${code} ${reason}` : String(code);
      const message = wasOpen ? `Deepgram closed the live stream: ${why}` : `Deepgram live connection closed before opening (${code})`;
      this.fail(message, code !== 1008);
    });
  }

  private onMessage(msg: unknown): void {
    if (this.stopped || typeof msg !== 'object' || msg === null) return;
    const type = (msg as { type?: unknown }).type;
    if (type === 'Results') this.onResults(msg as Results);
    else if (type === 'UtteranceEnd') this.flushUtterance();
  }

  private onResults(msg: Results): void {
    const alt = msg.channel?.alternatives?.[0];
    const text = alt?.transcript?.trim() ?? '';
    if (!alt || text === '') {
      if (msg.speech_final) this.flushUtterance();
      return;
    }
    const words: SttWord[] = (alt.words ?? []).map((w) => ({
      word: w.word,
      startMs: Math.round(w.start * 1000),
      endMs: Math.round(w.end * 1000),
    }));
    const startMs = words[0]?.startMs ?? Math.round(msg.start * 1000);
    const endMs = words[words.length - 1]?.endMs ?? Math.round((msg.start + msg.duration) * 1000);
    if (this.opts.mode === 'transcript') {
      const result: SttResult = { text, isFinal: msg.is_final === true, startMs, endMs, confidence: alt.confidence ?? null, words };
      const phrase = result.isFinal && this.opts.phrases ? spotPhrase(text, this.opts.phrases) : null;
      this.emit('result', phrase ? { ...result, phrase } : result);
      return;
    }
    if (!msg.is_final) return;
    const u = (this.utterance ??= { texts: [], words: [], conf: [], startMs, endMs });
    u.texts.push(text);
    u.words.push(...words);
    u.conf.push(alt.confidence);
    u.endMs = endMs;
    if (msg.speech_final) this.flushUtterance();
  }

  private flushUtterance(): void {
    const u = this.utterance;
    this.utterance = null;
    if (!u || this.stopped) return;
    const answer = classifyYesNo(u.texts.join(' '));
    if (!answer) return;
    const confidence = u.conf.length > 0 ? Math.min(...u.conf) : null;
    this.emit('result', { text: answer, isFinal: true, startMs: u.startMs, endMs: u.endMs, confidence, words: u.words });
  }

  /** Terminal: reports once, delivers the yes-no segments already final, closes the session. */
  private fail(message: string, retryable: boolean): void {
    if (this.stopped) return;
    if (!this.failed) {
      this.failed = true;
      this.emit('error', new SttError(message, retryable));
    }
    this.flushUtterance();
    this.shutdown();
  }

  private shutdown(): void {
    if (!this.stopped) {
      this.stopped = true;
      this.open = false;
      if (this.keepAlive) clearInterval(this.keepAlive);
      this.queue = [];
      this.resolveOpened(false);
      this.resolveClosed();
      try {
        this.socket?.close();
      } catch {
        // already closed
      }
    }
    if (!this.closedEmitted) {
      this.closedEmitted = true;
      this.emit('closed');
    }
  }
}

