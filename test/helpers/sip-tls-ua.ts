/**
 * A scripted SIP user agent over TLS for tests (node:tls): one connection to the gateway's TLS port, requests
 * framed by Content-Length as RFC 3261 §18.3 says, responses and the gateway's requests (its BYE: answered 200)
 * read off the same connection. INVITE with an SDP offer (PCMU), ACK, BYE; or one hand-made request. `TlsUas` is
 * the far end of an outbound call: a TLS listener that answers an INVITE 200 with an SDP answer and notes the
 * client certificate it was shown.
 * Also `tlsCertificates` (openssl: a self-signed P-256 CA-less leaf, or a CA and a leaf it signs) for the tests.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { headerEnd, parseMessage, type SipRequest, type SipResponse } from '../../ingress/sip/message.ts';

const rnd = (): string => crypto.randomBytes(8).toString('hex');

export interface TlsUaOptions {
  port: number;
  /** Dialled number (Request-URI user). */
  to: string;
  /** Trusted CA for the gateway's certificate (its self-signed certificate in tests). */
  ca: Buffer;
  /** Client certificate and key (mutual TLS). */
  cert?: Buffer;
  key?: Buffer;
  /** Extra tls.connect options (maxVersion, ciphers …). */
  tlsOptions?: tls.ConnectionOptions;
}

export class SipTlsUa {
  readonly callId = `${rnd()}@sip-tls-ua.test`;
  readonly fromTag = rnd();
  toTag: string | null = null;
  readonly responses: SipResponse[] = [];
  readonly requests: SipRequest[] = [];
  /** The To (with our tag) of the last request we answered with a tag: our side of the dialog, as far end. */
  answeredTo = '';
  /** The connection's error (a TLS alert from the gateway), if any. */
  error: (Error & { code?: string }) | null = null;
  private cseq = 0;
  private buf = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  /** Answers a request from the far end (default: 200 OK, nothing for ACK). */
  onRequest: (req: SipRequest) => void = (req) => {
    if (req.method !== 'ACK') this.answer(req, 200);
  };

  constructor(
    readonly socket: tls.TLSSocket,
    private readonly opts: TlsUaOptions,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.error = err;
      for (const w of [...this.waiters]) w();
    });
    socket.on('close', () => {
      for (const w of [...this.waiters]) w();
    });
  }

  /** Connects and completes the handshake; rejects with the TLS error when the handshake fails. */
  static connect(opts: TlsUaOptions): Promise<SipTlsUa> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: opts.port, ca: opts.ca, cert: opts.cert, key: opts.key, ...opts.tlsOptions });
      socket.once('secureConnect', () => resolve(new SipTlsUa(socket, opts)));
      socket.once('error', reject);
    });
  }

  get local(): string {
    return `${this.socket.localAddress ?? '127.0.0.1'}:${this.socket.localPort ?? 0}`;
  }

  build(method: string, o: { cseq?: number; body?: string; extra?: string[] } = {}): Buffer {
    const body = o.body ?? '';
    const lines = [
      `${method} sip:${this.opts.to}@127.0.0.1:${this.opts.port};transport=tls SIP/2.0`,
      `Via: SIP/2.0/TLS ${this.local};branch=z9hG4bK${rnd()};rport`,
      'Max-Forwards: 70',
      `From: <sip:caller@127.0.0.1>;tag=${this.fromTag}`,
      `To: <sip:${this.opts.to}@127.0.0.1>${this.toTag && method !== 'INVITE' ? `;tag=${this.toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${o.cseq ?? ++this.cseq} ${method}`,
      `Contact: <sip:caller@${this.local};transport=tls>`,
      ...(o.extra ?? []),
      ...(body ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    return Buffer.from(lines.join('\r\n'));
  }

  offer(rtpPort: number): string {
    return ['v=0', `o=- 1 1 IN IP4 127.0.0.1`, 's=tls-ua', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${rtpPort} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for a response matching `pred` (already received or later); null after `ms`. */
  async response(pred: (r: SipResponse) => boolean, ms: number): Promise<SipResponse | null> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.responses.find(pred);
      if (hit) return hit;
      const left = end - Date.now();
      if (left <= 0 || this.socket.destroyed) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.add(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** INVITE with an offer; resolves the final response (ACKed when 2xx) or null. */
  async invite(rtpPort: number, ms = 15_000): Promise<SipResponse | null> {
    this.send(this.build('INVITE', { body: this.offer(rtpPort) }));
    const final = await this.response((r) => r.status >= 200 && /INVITE/.test(r.headers.get('cseq') ?? ''), ms);
    if (final && final.status < 300) {
      this.toTag = /;\s*tag=([^;>\s,]+)/i.exec(final.headers.get('to') ?? '')?.[1] ?? null;
      const cseq = Number((final.headers.get('cseq') ?? '1').split(' ')[0]);
      this.send(this.build('ACK', { cseq }));
    }
    return final;
  }

  async bye(ms = 10_000): Promise<SipResponse | null> {
    this.send(this.build('BYE'));
    return this.response((r) => /BYE/.test(r.headers.get('cseq') ?? ''), ms);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      while (this.buf.length && (this.buf[0] === 13 || this.buf[0] === 10)) this.buf = this.buf.subarray(1);
      const he = headerEnd(this.buf, 0);
      if (!he) return;
      const cl = Number(/\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(this.buf.subarray(0, he.end).toString('latin1'))?.[1] ?? 0);
      const total = he.bodyStart + cl;
      if (this.buf.length < total) return;
      const p = parseMessage(this.buf.subarray(0, total));
      this.buf = this.buf.subarray(total);
      if (!p.ok) continue;
      if (p.message.kind === 'response') this.responses.push(p.message);
      else {
        this.requests.push(p.message);
        this.onRequest(p.message);
      }
      for (const w of [...this.waiters]) w();
      this.waiters.clear();
    }
  }

  /** Answers `req` on the connection (`toTag` added to To, `extra` header lines, `body` as SDP). */
  answer(req: SipRequest, status: number, o: { toTag?: string; extra?: string[]; body?: string } = {}): void {
    if (o.toTag) this.answeredTo = `${req.headers.get('to') ?? ''};tag=${o.toTag}`;
    const h = ['via', 'from', 'to', 'call-id', 'cseq'].flatMap((n) => req.headers.values(n).map((v) => `${n}: ${n === 'to' && o.toTag ? `${v};tag=${o.toTag}` : v}`));
    const body = o.body ?? '';
    const lines = [...h, ...(o.extra ?? []), ...(body ? ['Content-Type: application/sdp'] : []), `Content-Length: ${Buffer.byteLength(body)}`];
    this.socket.write(`SIP/2.0 ${status} ${status === 200 ? 'OK' : 'Other'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
  }
}

/**
 * The far end of an outbound call over TLS: answers each INVITE 200 with a PCMU answer, and remembers the
 * connections (`calls`) and the client certificates it was shown.
 */
export class TlsUas {
  readonly calls: SipTlsUa[] = [];
  readonly clientCertificates: Array<string | null> = [];

  private constructor(readonly server: tls.Server) {}

  static async listen(o: { cert: Buffer; key: Buffer; ca: Buffer }): Promise<TlsUas> {
    const server = tls.createServer({ cert: o.cert, key: o.key, ca: o.ca, requestCert: true, rejectUnauthorized: true });
    const uas = new TlsUas(server);
    server.on('secureConnection', (sock) => {
      const peer = sock.getPeerX509Certificate();
      uas.clientCertificates.push(peer?.fingerprint256 ?? null);
      const call = new SipTlsUa(sock, { port: 0, to: '', ca: o.ca });
      call.onRequest = (req) => {
        if (req.method === 'ACK') return;
        if (req.method !== 'INVITE') return call.answer(req, 200);
        const contact = `<sip:far@${sock.localAddress}:${sock.localPort};transport=tls>`;
        call.answer(req, 200, { toTag: rnd(), extra: [`Contact: ${contact}`], body: call.offer(40_000) });
      };
      uas.calls.push(call);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return uas;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  close(): void {
    for (const c of this.calls) c.close();
    this.server.close();
  }
}

/** A self-signed P-256 certificate for 127.0.0.1/localhost (its own CA), as PEM files in `dir`. */
export function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** A certificate for 127.0.0.1/localhost signed by the CA `ca` (a trunk's client certificate, a server's), as PEM files in `dir`. */
export function issuedBy(dir: string, ca: { cert: string; key: string }, name: string): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-copy_extensions', 'copy', '-days', '1', '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** The SHA-256 fingerprint of a PEM certificate file (to compare with a peer's). */
export const fingerprintOf = (file: string): string => new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;
