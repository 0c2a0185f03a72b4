/**
 * A scripted SIP callee for outbound-call tests (UDP, node:dgram): the phone the gateway dials. It answers the
 * INVITE (100, then 200 with a PCMU answer; the 200 repeated until the ACK), then on the ACK plays its script over
 * RTP (rtp-caller.ts, real-time 20 ms frames, digital silence when idle) and records when each part of the script
 * finished sending (`marks`, performance.now()) next to the gateway's RTP arrivals (`media.arrivals`), so a test
 * can say what the gateway sent after, say, the beep. BYE and any other request are answered 200.
 *
 * Bound on `address` at a free port: dial `callee.uri`.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseMessage, type SipRequest } from '../../ingress/sip/message.ts';
import { RtpCaller } from './rtp-caller.ts';

/** One part of what the callee "says": µ-law at 8 kHz, named so its end can be found in `marks`. */
export interface ScriptPart {
  name: string;
  ulaw: Buffer;
}

export class SipCallee {
  readonly toTag = crypto.randomBytes(6).toString('hex');
  /** Requests the gateway sent, in order. */
  readonly requests: SipRequest[] = [];
  /** performance.now() when each script part finished sending; `answered` when the ACK came. */
  readonly marks = new Map<string, number>();
  bye = false;
  private acked = false;
  private resend: NodeJS.Timeout | null = null;
  private done: Promise<void> | null = null;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly media: RtpCaller,
    private readonly script: ScriptPart[],
  ) {
    socket.on('message', (buf, rinfo) => this.onMessage(buf, rinfo));
  }

  static async open(script: ScriptPart[], address = '127.0.0.1'): Promise<SipCallee> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, address, () => resolve());
    });
    return new SipCallee(s, await RtpCaller.open(address), script);
  }

  get uri(): string {
    const a = this.socket.address();
    return `sip:callee@${a.address}:${a.port}`;
  }

  /** Resolves once the whole script was sent. */
  played(): Promise<void> {
    return this.done ?? Promise.reject(new Error('not answered'));
  }

  close(): void {
    if (this.resend) clearInterval(this.resend);
    this.media.close();
    this.socket.close();
  }

  private onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const p = parseMessage(buf);
    if (!p.ok || p.message.kind !== 'request') return;
    const req = p.message;
    this.requests.push(req);
    const reply = (status: string, extra: string[] = [], body = ''): void => {
      const to = req.headers.get('to') ?? '';
      const lines = [
        `SIP/2.0 ${status}`,
        ...req.headers.lines('via').map((v) => `Via: ${v}`),
        `From: ${req.headers.get('from') ?? ''}`,
        `To: ${/;\s*tag=/i.test(to) ? to : `${to};tag=${this.toTag}`}`,
        `Call-ID: ${req.headers.get('call-id') ?? ''}`,
        `CSeq: ${req.headers.get('cseq') ?? ''}`,
        ...extra,
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ];
      this.socket.send(Buffer.from(lines.join('\r\n')), rinfo.port, rinfo.address);
    };
    if (req.method === 'INVITE') return this.answer(req, reply);
    if (req.method === 'ACK') return this.acknowledged(req);
    if (req.method === 'BYE') {
      this.bye = true;
      this.media.stop();
    }
    reply('200 OK');
  }

  private answer(req: SipRequest, reply: (status: string, extra?: string[], body?: string) => void): void {
    const sdp = req.body.toString('utf8');
    const address = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1] ?? '127.0.0.1';
    const port = Number(/^m=audio (\d+)/m.exec(sdp)?.[1] ?? 0);
    this.remote = { address, port };
    const local = this.socket.address();
    const answer = ['v=0', `o=callee 1 1 IN IP4 ${local.address}`, 's=-', `c=IN IP4 ${local.address}`, 't=0 0', `m=audio ${this.media.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
    reply('100 Trying');
    const ok = (): void => reply('200 OK', [`Contact: <sip:callee@${local.address}:${local.port}>`, 'Content-Type: application/sdp'], answer);
    ok();
    // UDP: the 200 is repeated until the ACK (RFC 3261 §13.3.1.4).
    this.resend ??= setInterval(() => (this.acked ? undefined : ok()), 500);
  }

  private remote: { address: string; port: number } | null = null;

  private acknowledged(_req: SipRequest): void {
    if (this.acked || !this.remote) return;
    this.acked = true;
    if (this.resend) clearInterval(this.resend);
    this.marks.set('answered', performance.now());
    this.media.start(this.remote);
    this.done = (async () => {
      for (const part of this.script) {
        await this.media.speak(part.ulaw);
        this.marks.set(part.name, performance.now());
      }
    })();
    this.done.catch(() => undefined);
  }
}
