/**
 * A Vonage peer for tests: plays Vonage's part in an inbound call to the gateway, as the Voice API documents it.
 *
 * - Signed webhooks: `Authorization: Bearer <JWT>` (HS256 with the signature secret; claims iat, jti, iss,
 *   application_id, api_key and, with a body, payload_hash = sha256 hex of the body). The answer webhook is a GET
 *   (query) or POST (JSON) with to/from (E.164 without `+`), uuid, conversation_uuid; events are POSTed JSON. A
 *   refused connection is retried every 200 ms for `retryMs` (a test liberty, as in the Twilio peer, so a restarted
 *   gateway can be reached).
 * - NCCO: actions run in order: `talk` (recorded), `connect` to a `websocket` (below) or a `phone`/`sip` endpoint
 *   (recorded as dialled); anything else is recorded in `unsupportedActions`. When the NCCO runs out the call ends
 *   and `completed` is POSTed for the call to /vonage/event.
 * - WebSocket: the handshake is signed (JWT in Authorization) when the endpoint asks for `authorization: {type:
 *   'vonage'}`; the first message is `websocket:connected` with the content-type and the endpoint's headers; then
 *   binary 16-bit LE PCM, 20 ms per message, paced in real time (silence when idle). Binary audio from the gateway
 *   plays out in real time; `{"action":"notify"}` is echoed as `websocket:notify` once the audio before it has
 *   played; `{"action":"clear"}` drops unplayed audio and is answered by `websocket:cleared`. More than 60 s
 *   buffered is a protocol error (Vonage buffers about a minute).
 * - Synchronous connect: when the socket closes other than by the caller and the connect action has `eventType:
 *   synchronous`, `disconnected` is POSTed (signed) to its eventUrl and a returned NCCO is run in place of the rest
 *   of the current one — that is how the gateway resumes a call.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import jsonwebtoken from 'jsonwebtoken';
import WebSocket from 'ws';
import { sha256Hex } from '../../ingress/vonage/jwt.ts';

const FRAME_MS = 20;
const RETRY_MS = 200;
export type Ncco = Array<Record<string, unknown> & { action: string }>;
export type WebhookOutcome = { status: number; body: string; contentType: string } | { error: string };

/** The JWT Vonage puts on a signed request (`body` null: no payload_hash). */
export function vonageJwt(secret: string, body: string | null, claims: Record<string, unknown> = {}): string {
  const payload: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), jti: randomUUID(), iss: 'Vonage', application_id: 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab', api_key: 'abcd1234' };
  if (body !== null) payload.payload_hash = sha256Hex(body);
  return jsonwebtoken.sign({ ...payload, ...claims }, secret, { algorithm: 'HS256' });
}

/** One HTTP request; `{error: 'connection-refused'}` for what Vonage would retry. */
export function sendRequest(url: string, method: 'GET' | 'POST', body: string | null, headers: Record<string, string>, track?: (r: http.ClientRequest) => void): Promise<WebhookOutcome> {
  return new Promise((resolve) => {
    const h: Record<string, string> = { 'User-Agent': 'Vonage-Voice-Webhook/1.0', ...headers };
    if (body !== null) Object.assign(h, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
    const req = http.request(new URL(url), { method, headers: h, agent: false, timeout: 15000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ error: err.message }));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] ?? '' }));
    });
    track?.(req);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' ? 'connection-refused' : err.message }));
    req.end(body ?? undefined);
  });
}

export interface VonagePeerOptions {
  publicUrl: string;
  /** null: send no Authorization. */
  secret: string | null;
  to: string;
  from?: string;
  answerMethod?: 'GET' | 'POST';
  retryMs?: number;
  idleSilence?: boolean;
  /** The call's uuid (default random): a call placed through the Voice API has the uuid its create answered. */
  uuid?: string;
}
export type DialResult = { kind: 'streaming' } | { kind: 'ended'; reason: string; status?: number; body?: string };
interface Live { ws: WebSocket; legUuid: string; rate: 8000 | 16000; segs: Array<{ data: Buffer; start: number }>; playEnd: number; notifies: Array<{ payload: unknown; at: number }>; timer: NodeJS.Timeout | undefined; byPeer: boolean; closed: Promise<void> }

export class VonagePeer extends EventEmitter<{ ended: [reason: string]; stream: [n: number] }> {
  readonly uuid: string;
  readonly conversationUuid = `CON-${randomUUID()}`;
  readonly from: string;
  readonly to: string;
  readonly nccos: Ncco[] = [];
  readonly talks: string[] = [];
  readonly dialed: string[] = [];
  readonly unsupportedActions: string[] = [];
  readonly protocolErrors: string[] = [];
  readonly received: Buffer[] = [];
  readonly connectedHeaders: Array<Record<string, unknown>> = [];
  streams = 0;
  notifiesEchoed = 0;
  clears = 0;
  droppedOnClearBytes = 0;
  sentFrames = 0;
  endReason: string | null = null;
  private readonly o: Required<Omit<VonagePeerOptions, 'from' | 'to' | 'uuid'>>;
  private live: Live | null = null;
  private dialP: Promise<DialResult> | undefined;
  private dialResolve: ((r: DialResult) => void) | undefined;
  private closing = false;
  private readonly playQueue: Array<{ pcm: Int16Array; off: number; done: () => void }> = [];
  private clockTimer: NodeJS.Timeout | undefined;
  private clockStart = 0;
  private clockFrames = 0;
  private readonly requests = new Set<http.ClientRequest>();

  constructor(o: VonagePeerOptions) {
    super();
    this.uuid = o.uuid ?? randomUUID();
    this.from = (o.from ?? '+15550001111').replace(/^\+/, '');
    this.to = o.to.replace(/^\+/, '');
    this.o = { publicUrl: o.publicUrl.replace(/\/+$/, ''), secret: o.secret, answerMethod: o.answerMethod ?? 'POST', retryMs: o.retryMs ?? 15000, idleSilence: o.idleSilence ?? true };
  }

  /** Everything the gateway sent, as 16-bit PCM. */
  receivedAudio(): Int16Array {
    const b = Buffer.concat(this.received);
    const out = new Int16Array(b.length >> 1);
    for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(i * 2);
    return out;
  }
  get receivedBytes(): number {
    return this.received.reduce((n, b) => n + b.length, 0);
  }

  dial(): Promise<DialResult> {
    if (!this.dialP) {
      this.dialP = new Promise((r) => (this.dialResolve = r));
      void this.run().catch((err: unknown) => this.finish(`error: ${String(err)}`));
    }
    return this.dialP;
  }

  /** Speaks PCM (at the socket's rate) in real time, 20 ms per binary message. */
  play(pcm: Int16Array): Promise<void> {
    if (this.endReason || pcm.length === 0) return Promise.resolve();
    return new Promise((done) => {
      this.playQueue.push({ pcm, off: 0, done });
      this.ensureClock();
    });
  }

  sendDtmf(digit: string): boolean {
    return this.sendText({ event: 'websocket:dtmf', digit, duration: 260 });
  }

  sendRaw(data: string | Buffer): boolean {
    const ws = this.live?.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data, { binary: Buffer.isBuffer(data) });
    return true;
  }

  /** The caller hangs up: the socket closes, then `completed` for the media leg and for the call. */
  async hangup(): Promise<WebhookOutcome | null> {
    if (this.endReason) return null;
    const live = this.live;
    this.finish('hangup');
    if (live) {
      live.byPeer = true;
      live.ws.close(1000);
      await Promise.race([live.closed, new Promise((r) => setTimeout(r, 2000))]);
      void this.postEvent({ uuid: live.legUuid, status: 'completed' });
    }
    return this.postEvent({ uuid: this.uuid, status: 'completed' });
  }

  /** POSTs a signed event to /vonage/event (or `url`), retried while refused. */
  postEvent(fields: Record<string, unknown>, url = `${this.o.publicUrl}/vonage/event`): Promise<WebhookOutcome> {
    const body = { from: this.from, to: this.to, conversation_uuid: this.conversationUuid, direction: 'inbound', timestamp: new Date().toISOString(), ...fields };
    return this.request(url, 'POST', JSON.stringify(body));
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!pred()) {
      if (performance.now() >= deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Frees everything; posts nothing. */
  async close(): Promise<void> {
    this.closing = true;
    const live = this.live;
    this.finish('closed');
    for (const r of this.requests) r.destroy();
    if (live) {
      live.byPeer = true;
      live.ws.terminate();
      await Promise.race([live.closed, new Promise((r) => setTimeout(r, 1000))]);
    }
  }

  // ---- call flow ----

  private async run(): Promise<void> {
    const params = { to: this.to, from: this.from, uuid: this.uuid, conversation_uuid: this.conversationUuid, endpoint_type: 'phone', region_url: 'https://api-us-3.vonage.com' };
    const get = this.o.answerMethod === 'GET';
    const url = `${this.o.publicUrl}/vonage/answer${get ? `?${new URLSearchParams(params).toString()}` : ''}`;
    const res = await this.request(url, get ? 'GET' : 'POST', get ? null : JSON.stringify(params));
    let ncco = this.nccoOf(res);
    if (!ncco) return;
    void this.postEvent({ uuid: this.uuid, status: 'answered' });
    while (ncco && !this.endReason) ncco = await this.execute(ncco);
    if (!this.endReason) {
      this.finish('ncco-ended');
      if (!this.closing) void this.postEvent({ uuid: this.uuid, status: 'completed' });
    }
  }

  private nccoOf(res: WebhookOutcome): Ncco | null {
    if ('error' in res) return this.finish(res.error), null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      parsed = null;
    }
    if (res.status !== 200 || !res.contentType.startsWith('application/json') || !Array.isArray(parsed)) {
      this.settle({ kind: 'ended', reason: 'bad-answer', status: res.status, body: res.body });
      this.finish(`bad-answer ${res.status}`);
      return null;
    }
    this.nccos.push(parsed as Ncco);
    return parsed as Ncco;
  }

  /** Runs one NCCO; returns a replacement NCCO (from a synchronous event) or null when it ran out. */
  private async execute(ncco: Ncco): Promise<Ncco | null> {
    for (const action of ncco) {
      if (this.endReason) return null;
      if (action.action === 'talk') {
        this.talks.push(String(action.text));
        continue;
      }
      if (action.action !== 'connect') {
        this.unsupportedActions.push(action.action);
        continue;
      }
      const ep = ((action.endpoint as Array<Record<string, unknown>> | undefined) ?? [])[0] ?? {};
      if (ep.type === 'phone' || ep.type === 'sip') {
        this.dialed.push(String(ep.number ?? ep.uri));
        continue;
      }
      if (ep.type !== 'websocket') {
        this.unsupportedActions.push(`connect:${String(ep.type)}`);
        continue;
      }
      const legUuid = randomUUID();
      const byPeer = await this.stream(ep, legUuid);
      if (byPeer || this.endReason) return null;
      const eventUrl = (action.eventUrl as string[] | undefined)?.[0];
      if (action.eventType === 'synchronous' && eventUrl) {
        const res = await this.postEvent({ uuid: legUuid, status: 'disconnected', direction: 'outbound', to: String(ep.uri), from: this.to }, eventUrl);
        if (!('error' in res) && res.status === 200 && res.body.trim() !== '' && res.body.trim() !== '[]') {
          const next = this.nccoOf(res);
          if (next) return next;
        }
      }
    }
    return null;
  }

  /** Opens one media socket and resolves when it closes: true if the caller closed it. */
  private stream(ep: Record<string, unknown>, legUuid: string): Promise<boolean> {
    const rate = /rate=16000/.test(String(ep['content-type'])) ? 16000 : 8000;
    return new Promise((resolve) => {
      const headers: Record<string, string> = {};
      if ((ep.authorization as { type?: string } | undefined)?.type === 'vonage' && this.o.secret !== null) headers.Authorization = `Bearer ${vonageJwt(this.o.secret, null)}`;
      const ws = new WebSocket(String(ep.uri), { headers, handshakeTimeout: 10000, perMessageDeflate: false });
      let onClosed: () => void = () => {};
      const closed = new Promise<void>((r) => (onClosed = r));
      const live: Live = { ws, legUuid, rate, segs: [], playEnd: performance.now(), notifies: [], timer: undefined, byPeer: false, closed };
      ws.on('unexpected-response', (_req, res) => {
        this.settle({ kind: 'ended', reason: `ws-handshake ${res.statusCode}`, status: res.statusCode });
        ws.terminate();
      });
      ws.on('error', () => undefined);
      ws.on('open', () => {
        this.live = live;
        this.streams++;
        const h = (ep.headers as Record<string, unknown> | undefined) ?? {};
        this.connectedHeaders.push(h);
        ws.send(JSON.stringify({ event: 'websocket:connected', 'content-type': ep['content-type'], ...h }));
        void this.postEvent({ uuid: legUuid, status: 'answered', direction: 'outbound' }).catch(() => undefined);
        this.settle({ kind: 'streaming' });
        this.emit('stream', this.streams);
        this.clockTimer ??= undefined;
        this.ensureClock();
      });
      ws.on('message', (data, isBinary) => this.onMessage(live, data as Buffer, isBinary));
      ws.on('close', () => {
        clearTimeout(live.timer);
        this.cut(live, performance.now());
        if (this.live === live) this.live = null;
        onClosed();
        resolve(live.byPeer);
      });
    });
  }

  private onMessage(live: Live, data: Buffer, isBinary: boolean): void {
    const now = performance.now();
    if (isBinary) {
      if (data.length % 2 !== 0) this.protocolErrors.push(`odd binary message (${data.length} bytes)`);
      this.received.push(Buffer.from(data));
      const start = Math.max(now, live.playEnd);
      live.segs.push({ data: Buffer.from(data), start });
      live.playEnd = start + data.length / ((live.rate * 2) / 1000);
      if (live.playEnd - now > 60_000) this.protocolErrors.push('more than 60 s of audio buffered');
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    } catch {
      return void this.protocolErrors.push('text message is not JSON');
    }
    if (msg.action === 'clear') {
      this.clears++;
      this.droppedOnClearBytes += this.cut(live, now);
      live.notifies = [];
      clearTimeout(live.timer);
      this.sendText({ event: 'websocket:cleared' });
    } else if (msg.action === 'notify') {
      live.notifies.push({ payload: msg.payload, at: Math.max(now, live.playEnd) });
      this.pumpNotifies(live);
    } else {
      this.protocolErrors.push(`unknown command ${JSON.stringify(msg).slice(0, 80)}`);
    }
  }

  private pumpNotifies(live: Live): void {
    clearTimeout(live.timer);
    const now = performance.now();
    while (live.notifies[0] && live.notifies[0].at <= now) {
      const n = live.notifies.shift()!;
      if (this.sendText({ event: 'websocket:notify', payload: n.payload })) this.notifiesEchoed++;
    }
    const head = live.notifies[0];
    if (head) live.timer = setTimeout(() => this.pumpNotifies(live), Math.ceil(head.at - now) + 1);
  }

  /** Stops playout at `now`; returns the bytes not played. */
  private cut(live: Live, now: number): number {
    const bpms = (live.rate * 2) / 1000;
    let dropped = 0;
    for (const s of live.segs) dropped += s.data.length - Math.min(s.data.length, Math.max(0, Math.floor(((now - s.start) * bpms) / 2) * 2));
    live.segs = [];
    live.playEnd = now;
    return dropped;
  }

  private sendText(msg: object): boolean {
    const ws = this.live?.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  private settle(r: DialResult): void {
    const resolve = this.dialResolve;
    this.dialResolve = undefined;
    resolve?.(r);
  }

  private finish(reason: string): void {
    if (this.endReason) return;
    this.endReason = reason;
    clearTimeout(this.clockTimer);
    for (const p of this.playQueue.splice(0)) p.done();
    this.settle({ kind: 'ended', reason });
    this.emit('ended', reason);
  }

  private async request(url: string, method: 'GET' | 'POST', body: string | null): Promise<WebhookOutcome> {
    const deadline = performance.now() + this.o.retryMs;
    for (;;) {
      const headers: Record<string, string> = this.o.secret === null ? {} : { Authorization: `Bearer ${vonageJwt(this.o.secret, body)}` };
      const res = await sendRequest(url, method, body, headers, (r) => {
        this.requests.add(r);
        r.on('close', () => this.requests.delete(r));
      });
      if (!('error' in res) || res.error !== 'connection-refused' || performance.now() >= deadline || this.closing) return res;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  // ---- inbound clock: frame n is due at clockStart + 20n ms ----

  private ensureClock(): void {
    if (this.clockTimer || this.endReason || this.streams === 0) return;
    if (!this.o.idleSilence && this.playQueue.length === 0) return;
    this.clockStart = performance.now();
    this.clockFrames = 0;
    this.tick();
  }

  private readonly tick = (): void => {
    this.clockTimer = undefined;
    if (this.endReason) return;
    const due = Math.floor((performance.now() - this.clockStart) / FRAME_MS) + 1;
    for (; this.clockFrames < due; this.clockFrames++) {
      const live = this.live;
      const rate = live?.rate ?? 16000;
      const n = rate / 50;
      const item = this.playQueue[0];
      if (!item && !this.o.idleSilence) return;
      const frame = Buffer.alloc(n * 2);
      if (item) {
        for (let i = 0; i < n && item.off + i < item.pcm.length; i++) frame.writeInt16LE(item.pcm[item.off + i] as number, i * 2);
        item.off += n;
        if (item.off >= item.pcm.length) (this.playQueue.shift(), item.done());
      }
      if (live && live.ws.readyState === WebSocket.OPEN) {
        live.ws.send(frame, { binary: true });
        this.sentFrames++;
      }
    }
    const nextAt = this.clockStart + this.clockFrames * FRAME_MS;
    this.clockTimer = setTimeout(this.tick, Math.max(0, nextAt - performance.now()));
  };
}
