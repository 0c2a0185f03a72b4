/**
 * A scripted SIP user agent for tests (UDP, node:dgram): the caller a trunk
 * would be. INVITE with an SDP offer (PCMU + telephone-event), provisional
 * responses noted, a 401 challenge answered with RFC 2617 digest (qop=auth,
 * computed with ingress/sip/digest.ts), the final response ACKed (the same
 * branch for a non-2xx, a new transaction for a 2xx), then RTP through
 * rtp-caller.ts, and BYE to hang up. Requests from the gateway (its BYE) are
 * answered 200. Also sends single hand-made requests for forged-request
 * checks (`request`).
 *
 * Its sockets are bound on `address` (any 127/8 address is loopback on Linux,
 * so a test can place a caller outside a trunk's allowlist) at free ports.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { digestResponse, ha1Of, parseDigest } from '../../ingress/sip/digest.ts';
import { parseMessage, type SipRequest, type SipResponse } from '../../ingress/sip/message.ts';
import { RtpCaller, EVENT_PT } from './rtp-caller.ts';
import { freshKey, readCryptoLine, cryptoAttribute, type SdesSuite, type SrtpKey } from '../../ingress/sip/sdes.ts';
import { SrtpContext } from '../../ingress/sip/srtp.ts';
import { loadWerift } from '../../ingress/werift.ts';

// SrtpContext takes werift as loaded on first use (ingress/werift.ts); these peers load it up front.
await loadWerift();

export interface SipUaOptions {
  gateway: { address: string; port: number };
  /** The dialled number (E.164, sent as the Request-URI user). */
  to: string;
  /** Digest credentials for the trunk; none: INVITE unauthenticated. */
  credentials?: { username: string; password: string };
  /** Local address to bind (default 127.0.0.1). */
  address?: string;
  /** The Call-ID (default: random). */
  callId?: string;
  /** Offer SDES-SRTP (RTP/SAVP, one a=crypto line of `srtpSuite`) and run the media through it. */
  srtp?: boolean;
  /** The suite of our a=crypto line (default AES_CM_128_HMAC_SHA1_80). */
  srtpSuite?: SdesSuite;
}

export interface InviteResult {
  /** Final status (0: no final response in time). */
  status: number;
  /** Every status received for the INVITE(s), in order. */
  statuses: number[];
  /** The final response's Retry-After, if any. */
  retryAfter?: string;
}

const rnd = (): string => crypto.randomBytes(8).toString('hex');
const tagOf = (nameAddr: string | undefined): string | null => /;\s*tag=([^;>\s,]+)/i.exec(nameAddr ?? '')?.[1] ?? null;

export class SipUa {
  readonly callId: string;
  readonly fromTag = rnd();
  toTag: string | null = null;
  readonly responses: SipResponse[] = [];
  /** Requests the gateway sent us (BYE…). */
  readonly requests: SipRequest[] = [];
  /** The gateway hung up (its BYE). */
  remoteBye = false;
  private cseq = 0;
  private lastInvite: Buffer | null = null;
  private ackTarget: string;
  private readonly listeners = new Set<(r: SipResponse) => void>();
  /** Our SRTP master key (srtp: true), the same in every offer of the call unless a test re-keys (`rekey`). */
  srtpKey: SrtpKey;

  private constructor(
    private readonly opts: SipUaOptions,
    private readonly socket: dgram.Socket,
    readonly media: RtpCaller,
  ) {
    this.callId = opts.callId ?? `${rnd()}@sip-ua.test`;
    this.srtpKey = freshKey(this.suite);
    this.ackTarget = this.requestUri;
    socket.on('message', (raw) => {
      const p = parseMessage(raw);
      if (!p.ok) return;
      if (p.message.kind === 'response') {
        this.responses.push(p.message);
        for (const l of this.listeners) l(p.message);
      } else this.onRequest(p.message);
    });
  }

  static async open(opts: SipUaOptions): Promise<SipUa> {
    const address = opts.address ?? '127.0.0.1';
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return new SipUa(opts, socket, await RtpCaller.open(address));
  }

  get address(): string {
    return this.socket.address().address;
  }

  get port(): number {
    return this.socket.address().port;
  }

  get requestUri(): string {
    return `sip:${this.opts.to}@${this.opts.gateway.address}:${this.opts.gateway.port}`;
  }

  get suite(): SdesSuite {
    return this.opts.srtpSuite ?? 'AES_CM_128_HMAC_SHA1_80';
  }

  /** A new master key for our next offer (the media keeps the old one until `useSrtp` reads the answer). */
  rekey(): void {
    this.srtpKey = freshKey(this.suite);
  }

  /** Our SDP: the offer, or (late offer) the answer, whose a=crypto line carries `cryptoTag` (default 1). */
  offer(o: { cryptoTag?: number } = {}): string {
    const a = this.address;
    return [
      'v=0', `o=- ${Date.now()} 1 IN IP4 ${a}`, 's=sip-ua', `c=IN IP4 ${a}`, 't=0 0',
      `m=audio ${this.media.port} ${this.opts.srtp ? 'RTP/SAVP' : 'RTP/AVP'} 0 ${EVENT_PT}`, 'a=rtpmap:0 PCMU/8000',
      ...(this.opts.srtp ? [`a=crypto:${cryptoAttribute(o.cryptoTag ?? 1, this.suite, this.srtpKey)}`] : []), `a=rtpmap:${EVENT_PT} telephone-event/8000`, `a=fmtp:${EVENT_PT} 0-15`, 'a=ptime:20', 'a=sendrecv', '',
    ].join('\r\n');
  }

  /**
   * A request of this call's dialog (or outside it, without a To tag): `extra` header lines, `body` (SDP).
   * Returns the bytes, so a test can retransmit them as they are.
   */
  build(method: string, o: { branch?: string; cseq?: number; toTag?: string | null; extra?: string[]; body?: string; uri?: string } = {}): Buffer {
    const body = o.body ?? '';
    const toTag = o.toTag === undefined ? this.toTag : o.toTag;
    const lines = [
      `${method} ${o.uri ?? this.requestUri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.address}:${this.port};branch=z9hG4bK${o.branch ?? rnd()};rport`,
      'Max-Forwards: 70',
      `From: <sip:caller@${this.address}>;tag=${this.fromTag}`,
      `To: <sip:${this.opts.to}@${this.opts.gateway.address}>${toTag ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${o.cseq ?? ++this.cseq} ${method === 'ACK' ? 'ACK' : method}`,
      `Contact: <sip:caller@${this.address}:${this.port}>`,
      ...(o.extra ?? []),
      ...(body ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    return Buffer.from(lines.join('\r\n'));
  }

  send(bytes: Buffer): void {
    this.socket.send(bytes, this.opts.gateway.port, this.opts.gateway.address);
  }

  /** The next response matching `pred` received after now, or null after `ms`. */
  next(pred: (r: SipResponse) => boolean, ms: number): Promise<SipResponse | null> {
    return new Promise((resolve) => {
      const done = (r: SipResponse | null): void => {
        clearTimeout(timer);
        this.listeners.delete(on);
        resolve(r);
      };
      const on = (r: SipResponse): void => void (pred(r) && done(r));
      const timer = setTimeout(() => done(null), ms);
      this.listeners.add(on);
    });
  }

  /** Sends `bytes` and waits for its final response (by CSeq number and method), answering a non-2xx INVITE response with ACK. */
  async transact(bytes: Buffer, ms = 10_000, statuses: number[] = []): Promise<SipResponse | null> {
    const head = bytes.toString('latin1', 0, Math.min(bytes.length, 2048));
    const cseq = /\r\nCSeq: (\d+) (\w+)/.exec(head);
    const branch = /branch=([^;\s]+)/.exec(head)?.[1];
    const same = (r: SipResponse): boolean => (r.headers.get('cseq') ?? '').trim() === `${cseq?.[1]} ${cseq?.[2]}` && (r.headers.get('call-id') ?? '') === this.callId;
    const collect = (r: SipResponse): void => void (same(r) && statuses.push(r.status));
    this.listeners.add(collect);
    const final = this.next((r) => same(r) && r.status >= 200, ms);
    this.send(bytes);
    const res = await final;
    this.listeners.delete(collect);
    if (res && cseq?.[2] === 'INVITE' && res.status >= 300 && branch) {
      this.send(this.build('ACK', { branch: branch.replace(/^z9hG4bK/, ''), cseq: Number(cseq[1]), toTag: tagOf(res.headers.get('to')) }));
    }
    return res;
  }

  /** The Authorization value answering `challenge` (a 401's WWW-Authenticate) for `method`. */
  authorization(challenge: string, method: string, creds: { username: string; password: string }, nc = 1): string {
    const c = parseDigest(challenge) ?? {};
    const realm = c.realm ?? '';
    const nonce = c.nonce ?? '';
    const cnonce = rnd();
    const ncHex = nc.toString(16).padStart(8, '0');
    const response = digestResponse({ ha1: ha1Of(creds.username, realm, creds.password), method, uri: this.requestUri, nonce, qop: 'auth', nc: ncHex, cnonce });
    return `Digest username="${creds.username}", realm="${realm}", nonce="${nonce}", uri="${this.requestUri}", response="${response}", algorithm=MD5, qop=auth, nc=${ncHex}, cnonce="${cnonce}"`;
  }

  /**
   * Places the call: INVITE (again with credentials after a 401), ACK of the final response; on a 2xx, RTP
   * starts towards the answer's media address. `ack: false` leaves a 2xx unacknowledged (retransmission tests).
   */
  async invite(o: { ack?: boolean } = {}): Promise<InviteResult> {
    const statuses: number[] = [];
    let bytes = this.build('INVITE', { body: this.offer(), toTag: null });
    let res = await this.transact(bytes, 10_000, statuses);
    if (res?.status === 401 && this.opts.credentials) {
      const auth = this.authorization(res.headers.get('www-authenticate') ?? '', 'INVITE', this.opts.credentials);
      bytes = this.build('INVITE', { body: this.offer(), toTag: null, extra: [`Authorization: ${auth}`] });
      res = await this.transact(bytes, 10_000, statuses);
    }
    this.lastInvite = bytes;
    if (!res) return { status: 0, statuses };
    if (res.status >= 200 && res.status < 300) {
      this.confirm(res);
      if (o.ack !== false) this.ack(res);
      const sdp = res.body.toString('utf8');
      const ip = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
      const port = Number(/^m=audio (\d+)/m.exec(sdp)?.[1]);
      if (this.opts.srtp) this.useSrtp(sdp);
      if (!ip || !port) this.media.protocolErrors.push(`2xx without a usable SDP answer: ${JSON.stringify(sdp)}`);
      else this.media.start({ address: ip, port });
    }
    const retryAfter = res.headers.get('retry-after');
    return { status: res.status, statuses, ...(retryAfter ? { retryAfter } : {}) };
  }

  /** The dialog a 2xx to our INVITE confirmed: its To tag, and its Contact as the target of ACK and BYE. */
  confirm(res: SipResponse): void {
    this.toTag = tagOf(res.headers.get('to'));
    this.ackTarget = /<([^>]+)>/.exec(res.headers.get('contact') ?? '')?.[1] ?? this.requestUri;
  }

  /**
   * The media's SRTP from the gateway's SDP: its a=crypto line (the one with `tag`, else the first) as the far end's
   * key, ours (`srtpKey`) as the local one. A new context each time (a re-key).
   */
  useSrtp(sdp: string, tag?: number): void {
    const values = [...sdp.matchAll(/^a=crypto:(.*)$/gm)].map((m) => (m[1] ?? '').trim());
    const line = readCryptoLine(values.find((v) => tag === undefined || v.startsWith(`${tag} `)) ?? '');
    if (!line.ok) return void this.media.protocolErrors.push(`SRTP answer without a usable a=crypto: ${line.reason}`);
    const fresh = new SrtpContext({ suite: line.line.suite, local: this.srtpKey, remote: line.line.key });
    // The gateway's stream goes on: its rollover counter carries over to the new keys.
    if (this.media.srtp) fresh.restore(this.media.srtp.inbound());
    this.media.srtp = fresh;
  }

  /** The INVITE as last sent (its retransmission is these bytes again). */
  get inviteBytes(): Buffer | null {
    return this.lastInvite;
  }

  /** ACK for a 2xx: a new transaction to the Contact, the INVITE's CSeq number; `body` = the answer to a late offer. */
  ack(res: SipResponse, body?: string): void {
    const n = Number(/^\s*(\d+)/.exec(res.headers.get('cseq') ?? '')?.[1]);
    this.send(this.build('ACK', { cseq: n, uri: this.ackTarget, ...(body ? { body } : {}) }));
  }

  /** Hangs up: BYE in the dialog; resolves with its final status (null: none). */
  async bye(): Promise<number | null> {
    this.media.stop();
    if (!this.toTag || this.remoteBye) return null;
    const res = await this.transact(this.build('BYE', { uri: this.ackTarget }));
    return res?.status ?? null;
  }

  close(): void {
    this.media.close();
    this.socket.close();
  }

  private onRequest(req: SipRequest): void {
    this.requests.push(req);
    if (req.method === 'ACK') return;
    if (req.method === 'BYE') {
      this.remoteBye = true;
      this.media.stop();
    }
    const h = (n: string): string => req.headers.lines(n).map((v) => `${n === 'via' ? 'Via' : n}: ${v}`).join('\r\n');
    const res = [
      'SIP/2.0 200 OK',
      h('via'),
      `From: ${req.headers.get('from') ?? ''}`,
      `To: ${req.headers.get('to') ?? ''}`,
      `Call-ID: ${req.headers.get('call-id') ?? ''}`,
      `CSeq: ${req.headers.get('cseq') ?? ''}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    this.send(Buffer.from(res));
  }
}
