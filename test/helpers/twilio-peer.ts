/**
 * A Twilio peer for tests: plays Twilio's part in an inbound call to the gateway, as Twilio documents it.
 *
 * - Webhooks: form-encoded POSTs signed with X-Twilio-Signature (HMAC-SHA1 over the exact URL + sorted params);
 *   the answer must be 2xx with Content-Type text/xml or application/xml. A refused connection is retried every
 *   200 ms for `redirectRetryMs`.
 * - TwiML: <Response> verbs run in order: <Reject>, <Hangup>, <Connect [action]><Stream url><Parameter/>…,
 *   <Redirect [method]>; other verbs are recorded in `unsupportedVerbs` and skipped. When the gateway closes the
 *   stream, execution continues after <Connect> (or at Connect's action URL), e.g. at a <Redirect>.
 * - Media Streams: the WS upgrade is signed over the stream URL with no params; then `connected`, `start`, 20 ms
 *   inbound `media` frames paced in real time (silence when idle), `dtmf`, `stop`. Outbound `media` plays out at
 *   8000 bytes/s; a `mark` is echoed once the audio before it has played; `clear` drops unplayed audio and echoes
 *   pending marks at once.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { parseTwiml, type TwimlNode } from './twiml.ts';
import { twilioSignatureHeader, WebhookSender, type WebhookOutcome, type WebhookResponse } from './twilio-webhook.ts';

import type { DialResult, EndReason, PeerEvents, StreamInfo, TwilioPeerOptions } from './twilio-peer-types.ts';
import { CallerClock } from './caller-clock.ts';
import { Playout } from './playout.ts';
import { parseGatewayMessage } from './twilio-stream-messages.ts';

export { parseTwiml, type TwimlNode, type WebhookOutcome, type WebhookResponse };
export type { DialResult, EndReason, PeerEvents, RedirectInfo, StreamInfo, TwilioPeerOptions } from './twilio-peer-types.ts';

interface Live {
  info: StreamInfo;
  ws: WebSocket;
  seq: number; // sequenceNumber of the last message sent on this stream
  chunk: number;
  startedAt: number;
  playout: Playout; // outbound audio not yet fully played
  marks: Array<{ name: string; at: number }>;
  markTimer: NodeJS.Timeout | undefined;
  byPeer: boolean;
  closed: Promise<'peer' | 'gateway'>;
}
type Next = { url: string; method: 'GET' | 'POST'; status: string } | null;
type StreamFailure = { status?: number; body?: string; detail: string };

const hex32 = (): string => randomBytes(16).toString('hex');
export class TwilioPeer extends EventEmitter<PeerEvents> {
  readonly callSid: string;
  readonly accountSid: string;
  readonly from: string;
  readonly to: string;
  readonly received: Buffer[] = []; // every µ-law payload the gateway sent
  readonly streamInfos: StreamInfo[] = [];
  readonly unknownMessages: unknown[] = []; // well-formed messages with an event Twilio does not accept
  readonly protocolErrors: string[] = []; // what Twilio would reject: bad JSON, binary, bad fields, wrong streamSid
  readonly unsupportedVerbs: string[] = [];
  /** Targets of <Dial> verbs run (a transfer): the peer "connects" and the call ends when the verbs run out. */
  readonly dialed: string[] = [];
  readonly echoedMarks: string[] = [];
  streams = 0;
  marksReceived = 0;
  marksEchoed = 0;
  marksLost = 0; // pending when their stream closed: never echoed
  clears = 0;
  droppedOnClearBytes = 0;
  droppedOnCloseBytes = 0;
  sentFrames = 0; // inbound media frames sent
  droppedFrames = 0; // inbound frames due while no stream was open
  endReason: EndReason | null = null;
  endDetail = '';
  endStatus: Promise<WebhookOutcome> | null = null; // the automatic `completed` callback (statusOnEnd)

  private readonly opts: Required<Pick<TwilioPeerOptions, 'redirectRetryMs' | 'idleSilence' | 'followRedirect' | 'statusOnEnd'>> & {
    publicUrl: string;
    authToken: string | null;
  };
  private live: Live | null = null;
  private pendingWs: WebSocket | undefined;
  private dialPromise: Promise<DialResult> | undefined;
  private dialResolve: ((r: DialResult) => void) | undefined;
  private answeredAt = 0;
  private statusSeq = 0;
  private closing = false;
  private readonly heard: Buffer[] = [];
  private heardBytes = 0;
  private readonly clock: CallerClock;
  private readonly webhooks: WebhookSender;
  private readonly direction: string;
  private readonly extraParams: Record<string, string>;

  constructor(o: TwilioPeerOptions) {
    super();
    this.callSid = o.callSid ?? `CA${hex32()}`;
    this.accountSid = o.accountSid ?? `AC${hex32()}`;
    this.from = o.from ?? '+15005550006';
    this.to = o.to;
    this.direction = o.direction ?? 'inbound';
    this.extraParams = o.params ?? {};
    this.opts = {
      publicUrl: o.publicUrl.replace(/\/+$/, ''), authToken: o.authToken, redirectRetryMs: o.redirectRetryMs ?? 15000,
      idleSilence: o.idleSilence ?? true, followRedirect: o.followRedirect ?? true, statusOnEnd: o.statusOnEnd ?? true,
    };
    this.webhooks = new WebhookSender({ authToken: o.authToken, retryMs: this.opts.redirectRetryMs });
    this.clock = new CallerClock({
      idleSilence: this.opts.idleSilence,
      running: () => !this.endReason && this.streams > 0,
      send: (frame, frameTime) => this.sendFrame(frame, frameTime),
    });
  }

  /** The open stream's sid; null between streams and after the call. */
  get streamSid(): string | null {
    return this.live?.info.streamSid ?? null;
  }
  /** All µ-law the gateway sent, concatenated. */
  receivedAudio(): Buffer {
    return Buffer.concat(this.received);
  }
  /** What the caller has heard so far: outbound audio played out, cut short by clear and stream close. */
  heardAudio(): Buffer {
    const now = performance.now();
    return Buffer.concat([...this.heard, ...(this.live?.playout.played(now) ?? [])]);
  }
  get playedBytes(): number {
    const now = performance.now();
    return this.heardBytes + (this.live?.playout.playedBytes(now) ?? 0);
  }

  /** Places the call: POSTs /twilio/voice and runs the TwiML. Resolves once streaming, rejected or failed. */
  dial(): Promise<DialResult> {
    if (!this.dialPromise) {
      this.dialPromise = new Promise((resolve) => (this.dialResolve = resolve));
      this.drive().catch((err: unknown) => this.finish('http-error', String(err)));
    }
    return this.dialPromise;
  }

  /** Speaks µ-law into the call in real time (20 ms frames, last one padded with 0xFF). Resolves when all frames
   * are due and sent (dropped while no stream is open), or when the call ends. */
  play(ulaw: Buffer): Promise<void> {
    if (this.endReason || ulaw.length === 0) return Promise.resolve();
    return this.clock.play(ulaw);
  }

  sendDtmf(digit: string): boolean {
    const live = this.live;
    if (!live) return false;
    const { streamSid } = live.info;
    return this.send(live, { event: 'dtmf', streamSid, sequenceNumber: String(++live.seq), dtmf: { track: 'inbound_track', digit } });
  }

  /** Writes anything to the current socket (for bad-input tests). */
  sendRaw(data: string | Buffer): boolean {
    const ws = this.live?.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data, { binary: Buffer.isBuffer(data) });
    return true;
  }

  /** The caller hangs up: `stop`, close the socket, then the signed `completed` status callback. */
  async hangup(): Promise<WebhookOutcome> {
    if (this.endReason) return (await this.endStatus) ?? { error: `call already ended: ${this.endReason}` };
    const live = this.live;
    if (live) {
      this.sendStop(live);
      live.ws.close(1000);
      await this.bounded(live.closed, 2000);
    }
    this.finish('hangup');
    return this.postStatus('completed');
  }

  /** POSTs a signed status callback to /twilio/status (retried while refused). */
  postStatus(status: string, extra: Record<string, string> = {}): Promise<WebhookOutcome> {
    const params: Record<string, string> = {
      ...this.callParams(status), CallbackSource: 'call-progress-events', SequenceNumber: String(this.statusSeq++),
      Timestamp: new Date().toUTCString().replace('GMT', '+0000'), // RFC 2822, as Twilio sends it
    };
    if (status === 'completed' && this.answeredAt) params.CallDuration = String(Math.round((Date.now() - this.answeredAt) / 1000));
    return this.request(`${this.opts.publicUrl}/twilio/status`, 'POST', { ...params, ...extra });
  }

  /** Polls `predicate` every 10 ms; rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      if (performance.now() >= deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Ends the call and frees everything (timers, sockets, requests). `stop: false` drops the socket without a
   * `stop` message. Never follows a redirect or posts a status callback. */
  async close(options: { stop?: boolean } = {}): Promise<void> {
    this.closing = true;
    const live = this.live;
    this.finish('closed');
    this.pendingWs?.terminate();
    this.webhooks.close();
    if (!live) return;
    live.byPeer = true;
    if (options.stop ?? true) (this.sendStop(live), live.ws.close(1000));
    if (!(options.stop ?? true) || !(await this.bounded(live.closed, 1000))) live.ws.terminate();
    await this.bounded(live.closed, 1000);
  }

  // ---- call flow ----

  private async drive(): Promise<void> {
    let next: Next = { url: `${this.opts.publicUrl}/twilio/voice`, method: 'POST', status: 'ringing' };
    while (next && !this.endReason) {
      const res = await this.request(next.url, next.method, this.callParams(next.status), true);
      if (this.endReason) return;
      if ('error' in res) {
        this.settleDial({ kind: 'error', reason: res.error });
        return this.finish(res.error === 'connection-refused' ? 'retry-exhausted' : 'http-error', res.error);
      }
      const type = (res.contentType.split(';')[0] ?? '').trim().toLowerCase();
      const bad = res.status < 200 || res.status > 299 ? 'http-status' : type !== 'text/xml' && type !== 'application/xml' ? 'bad-content-type' : '';
      const verbs = bad ? null : parseTwiml(res.body);
      if (!verbs) {
        this.settleDial({ kind: 'error', status: res.status, body: res.body, reason: bad || 'bad-twiml' });
        return this.finish(bad ? 'http-error' : 'bad-twiml', `${res.status} ${type} ${res.body.slice(0, 200)}`);
      }
      this.answeredAt ||= Date.now();
      next = await this.execute(verbs, next.url, res);
    }
  }

  private async execute(verbs: TwimlNode[], docUrl: string, doc: WebhookResponse): Promise<Next> {
    const end = (reason: EndReason, dial: DialResult, detail = ''): null => (this.settleDial(dial), this.finish(reason, detail), null);
    const fail = (reason: string): DialResult => ({ kind: 'error', status: doc.status, body: doc.body, reason });
    for (const verb of verbs) {
      if (this.endReason) return null;
      const method = verb.attrs.method?.toUpperCase() === 'GET' ? 'GET' : 'POST';
      const stream = verb.name === 'Connect' ? verb.children.find((c) => c.name === 'Stream') : undefined;
      if (verb.name === 'Reject') return end('rejected', { kind: 'rejected' }, verb.attrs.reason ?? 'rejected');
      if (verb.name === 'Hangup') return end('twiml-hangup', fail('hangup'));
      if (verb.name === 'Redirect') {
        const url = new URL(verb.text, docUrl).toString();
        this.emit('redirect', { url, method, cause: 'redirect' });
        return { url, method, status: 'in-progress' };
      }
      if (verb.name === 'Dial') {
        this.dialed.push(...(verb.children.length ? verb.children.map((c) => c.text) : [verb.text]));
        this.emit('dialed', this.dialed.at(-1));
        continue;
      }
      if (!stream) {
        this.unsupportedVerbs.push(verb.name);
        continue;
      }
      const params: Record<string, string> = {};
      for (const p of stream.children) if (p.name === 'Parameter' && p.attrs.name) params[p.attrs.name] = p.attrs.value ?? '';
      const url = new URL(stream.attrs.url ?? '', docUrl);
      if (url.search) {
        this.protocolErrors.push(`<Stream url> has a query string (Twilio does not support it): ${url.href}`);
        url.search = '';
      }
      const opened = await this.openStream(url.toString(), params);
      if (!('ws' in opened)) return end('stream-failed', { kind: 'error', status: opened.status, body: opened.body, reason: 'stream-failed' }, opened.detail);
      this.settleDial({ kind: 'streaming', streamSid: opened.info.streamSid });
      if ((await opened.closed) === 'peer' || this.endReason) return null;
      if (!this.opts.followRedirect) return end('stream-closed', fail('stream-closed'), String(opened.info.closeCode));
      if (verb.attrs.action) {
        const action = new URL(verb.attrs.action, docUrl).toString();
        this.emit('redirect', { url: action, method, cause: 'connect-action' });
        return { url: action, method, status: 'in-progress' };
      }
    }
    return end('twiml-ended', fail('no-stream'));
  }

  private settleDial(result: DialResult): void {
    const resolve = this.dialResolve;
    this.dialResolve = undefined;
    resolve?.(result);
  }

  private finish(reason: EndReason, detail = ''): void {
    if (this.endReason) return;
    this.endReason = reason;
    this.endDetail = detail;
    this.clock.stop();
    this.settleDial({ kind: 'error', reason });
    this.emit('ended', reason, detail);
    const byCaller = reason === 'hangup' || reason === 'closed' || reason === 'rejected';
    if (this.answeredAt && !byCaller && this.opts.statusOnEnd && !this.closing) this.endStatus = this.postStatus('completed');
  }

  private callParams(status: string): Record<string, string> {
    const { accountSid: AccountSid, callSid: CallSid, from, to } = this;
    return { AccountSid, ApiVersion: '2010-04-01', CallSid, CallStatus: status, Called: to, Caller: from, Direction: this.direction, From: from, To: to, ...this.extraParams };
  }

  private signature(url: string, params: Record<string, string>): Record<string, string> {
    return twilioSignatureHeader(this.opts.authToken, url, params);
  }

  // ---- HTTP ----

  /** A webhook, retried while the gateway refuses connections (not after the call ended, when `abortOnEnd`). */
  private request(url: string, method: 'GET' | 'POST', params: Record<string, string>, abortOnEnd = false): Promise<WebhookOutcome> {
    return this.webhooks.send(url, method, params, () => this.closing || (abortOnEnd && this.endReason !== null));
  }

  private async bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const ok = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (t = setTimeout(() => r(false), ms)))]);
    clearTimeout(t);
    return ok;
  }

  // ---- Media Streams ----

  private openStream(url: string, params: Record<string, string>): Promise<Live | StreamFailure> {
    return new Promise((resolve) => {
      let ws: WebSocket;
      try {
        const headers = { ...this.signature(url, {}), 'User-Agent': 'Twilio.TmeWs/1.0' };
        ws = new WebSocket(url, { headers, handshakeTimeout: 10000, perMessageDeflate: false });
      } catch (err) {
        return resolve({ detail: `bad <Stream url> ${JSON.stringify(url)}: ${String(err)}` });
      }
      this.pendingWs = ws;
      let settled = false;
      const fail = (f: StreamFailure): void => {
        if (settled) return;
        settled = true;
        this.pendingWs = undefined;
        ws.terminate();
        resolve(f);
      };
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (fail({ status: res.statusCode, body, detail: `handshake HTTP ${res.statusCode}` }), req.destroy()));
      });
      ws.on('error', (err) => fail({ detail: err.message }));
      ws.on('open', () => {
        if (settled || this.endReason) return fail({ detail: 'call ended during the handshake' });
        settled = true;
        this.pendingWs = undefined;
        resolve(this.startLive(ws, url, params));
      });
    });
  }

  private startLive(ws: WebSocket, url: string, customParameters: Record<string, string>): Live {
    const info: StreamInfo = { streamSid: `MZ${hex32()}`, url, customParameters };
    let onClosed: (by: 'peer' | 'gateway') => void = () => {};
    const closed = new Promise<'peer' | 'gateway'>((r) => (onClosed = r));
    const now = performance.now();
    const live: Live = { info, ws, seq: 0, chunk: 0, startedAt: now, playout: new Playout(now), marks: [], markTimer: undefined, byPeer: false, closed };
    ws.on('message', (data, isBinary) => this.onMessage(live, data, isBinary));
    ws.on('close', (code, reason) => {
      Object.assign(info, { closedBy: live.byPeer ? 'peer' : 'gateway', closeCode: code, closeReason: reason.toString() });
      clearTimeout(live.markTimer);
      this.droppedOnCloseBytes += this.cut(live, performance.now());
      this.marksLost += live.marks.splice(0).length;
      if (this.live === live) this.live = null;
      onClosed(live.byPeer ? 'peer' : 'gateway');
    });
    this.live = live;
    this.streams++;
    this.streamInfos.push(info);
    const { streamSid } = info;
    const mediaFormat = { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 };
    this.send(live, { event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send(live, {
      event: 'start', sequenceNumber: String(++live.seq),
      start: { accountSid: this.accountSid, streamSid, callSid: this.callSid, tracks: ['inbound'], customParameters, mediaFormat },
      streamSid,
    });
    this.emit('stream', info);
    this.clock.ensure();
    return live;
  }

  private send(live: Live, msg: object): boolean {
    if (live.ws.readyState !== WebSocket.OPEN) return false;
    live.ws.send(JSON.stringify(msg));
    return true;
  }

  private sendStop(live: Live): void {
    live.byPeer = true;
    const stop = { accountSid: this.accountSid, callSid: this.callSid };
    this.send(live, { event: 'stop', sequenceNumber: String(++live.seq), streamSid: live.info.streamSid, stop });
  }

  private onMessage(live: Live, data: WebSocket.RawData, isBinary: boolean): void {
    const m = parseGatewayMessage(data, isBinary, live.info.streamSid);
    const now = performance.now();
    switch (m.kind) {
      case 'error':
        return void this.protocolErrors.push(m.error);
      case 'unknown':
        return void this.unknownMessages.push(m.msg);
      case 'media':
        this.received.push(m.audio);
        live.playout.enqueue(m.audio, now);
        this.emit('media', m.audio);
        return;
      case 'mark':
        this.marksReceived++;
        live.marks.push({ name: m.name, at: Math.max(now, live.playout.end) });
        this.pumpMarks(live);
        return;
      case 'clear':
        this.clears++;
        this.droppedOnClearBytes += this.cut(live, now);
        clearTimeout(live.markTimer);
        for (const mk of live.marks.splice(0)) this.echoMark(live, mk.name, 'cleared');
    }
  }

  /** Echoes, in order, every mark whose audio has played; re-arms for the next one. */
  private pumpMarks(live: Live): void {
    clearTimeout(live.markTimer);
    live.markTimer = undefined;
    const now = performance.now();
    for (let mk = live.marks[0]; mk && mk.at <= now; mk = live.marks[0]) this.echoMark(live, (live.marks.shift(), mk.name), 'played');
    const head = live.marks[0];
    if (head) live.markTimer = setTimeout(() => this.pumpMarks(live), Math.ceil(head.at - now) + 1);
  }

  private echoMark(live: Live, name: string, how: 'played' | 'cleared'): void {
    if (!this.send(live, { event: 'mark', sequenceNumber: String(++live.seq), streamSid: live.info.streamSid, mark: { name } })) return;
    this.marksEchoed++;
    this.echoedMarks.push(name);
    this.emit('mark', name, how);
  }

  /** Stops outbound playout at `now`: what played is kept as heard; returns the bytes dropped. */
  private cut(live: Live, now: number): number {
    const { heard, dropped } = live.playout.cut(now);
    for (const h of heard) (this.heard.push(h), (this.heardBytes += h.length));
    return dropped;
  }

  private sendFrame(frame: Buffer, frameTime: number): void {
    const live = this.live;
    if (!live || live.ws.readyState !== WebSocket.OPEN) return void this.droppedFrames++;
    const timestamp = String(Math.max(0, Math.round(frameTime - live.startedAt)));
    const media = { track: 'inbound', chunk: String(++live.chunk), timestamp, payload: frame.toString('base64') };
    this.send(live, { event: 'media', sequenceNumber: String(++live.seq), media, streamSid: live.info.streamSid });
    this.sentFrames++;
  }
}
