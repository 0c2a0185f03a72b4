/**
 * SIP transport (RFC 3261 §18): one UDP socket and one TCP listener on the same
 * port. TCP is framed by Content-Length (CRLF keep-alives skipped). Received
 * requests get `received`/`rport` on their top Via (§18.2.1, RFC 3581);
 * responses go back where §18.2.2 says: the TCP connection, else the source
 * address at the Via's rport / sent-by port (5060 when absent).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { SafeEmitter } from '../../media/emitter.ts';
import { formatVia, parseVia, splitList } from './headers.ts';
import { headerEnd, parseMessage, serialize, skipLeadingLineEnds, type SipMessage, type SipRequest } from './message.ts';

export interface Peer {
  transport: 'udp' | 'tcp';
  address: string;
  port: number;
  conn?: net.Socket;
}

export type TransportEvents = {
  message: [msg: SipMessage, from: Peer];
  /** A datagram or stream message that is not SIP at all: dropped. */
  dropped: [info: { from: Peer; error: string }];
};

/** Larger than any legitimate SIP message we expect; a TCP peer beyond it is cut off. */
export const MAX_MESSAGE = 64 * 1024;
const TCP_IDLE_MS = 10 * 60_000;

export class SipTransport extends SafeEmitter<TransportEvents> {
  private readonly conns = new Map<string, net.Socket>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly host: string,
    readonly port: number,
  ) {
    super();
    udp.on('message', (buf, rinfo) => this.onBytes(buf, { transport: 'udp', address: rinfo.address, port: rinfo.port }));
    udp.on('error', () => undefined);
    tcp.on('connection', (sock) => this.onConnection(sock));
  }

  /** Binds UDP and TCP on `port` (0 = one free port for both). */
  static async listen(opts: { host: string; port: number }): Promise<SipTransport> {
    const family = opts.host.includes(':') ? 'udp6' : 'udp4';
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = dgram.createSocket({ type: family });
      const port = await new Promise<number>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(opts.port, opts.host, () => resolve(udp.address().port));
      });
      const tcp = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, opts.host, () => resolve());
        });
      } catch (err) {
        udp.close();
        // With port 0 the UDP port may be taken on TCP: pick another pair.
        if (opts.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw err;
      }
      return new SipTransport(udp, tcp, opts.host, port);
    }
    throw new Error('no free port for SIP on both UDP and TCP');
  }

  /** Sends a response along the request's Via (or to `from` when the Via is unusable). */
  sendResponse(msg: SipMessage, from: Peer): void {
    const bytes = serialize(msg);
    if (from.transport === 'tcp') {
      if (from.conn && !from.conn.destroyed) from.conn.write(bytes);
      return;
    }
    const first = msg.headers.get('via');
    const via = first === undefined ? null : parseVia(splitList(first)[0] ?? '');
    let address = from.address;
    let port = from.port;
    if (via) {
      const rport = via.params.rport;
      address = via.params.received ?? unbracket(via.host);
      port = rport ? Number(rport) : (via.port ?? 5060);
      if (!net.isIP(address)) address = from.address;
    }
    this.udp.send(bytes, port, address, () => undefined);
  }

  /** Sends a request (BYE, …) to a peer; over TCP reuses or opens a connection. */
  sendRequest(msg: SipRequest, to: { transport: 'udp' | 'tcp'; address: string; port: number }): void {
    const bytes = serialize(msg);
    if (to.transport === 'udp') return void this.udp.send(bytes, to.port, to.address, () => undefined);
    let conn = this.conns.get(`${to.address}:${to.port}`);
    if (!conn || conn.destroyed) {
      conn = net.connect(to.port, to.address);
      this.onConnection(conn, { address: to.address, port: to.port });
    }
    conn.write(bytes);
  }

  /** The Via sent-by for requests we originate. */
  sentBy(transport: 'udp' | 'tcp', localAddress: string): string {
    return `SIP/2.0/${transport.toUpperCase()} ${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${this.port}`;
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.destroy();
    this.conns.clear();
    await new Promise<void>((r) => this.udp.close(() => r()));
    await new Promise<void>((r) => this.tcp.close(() => r()));
  }

  private onConnection(sock: net.Socket, remote?: { address: string; port: number }): void {
    const peer: Peer = { transport: 'tcp', address: remote?.address ?? sock.remoteAddress ?? '', port: remote?.port ?? sock.remotePort ?? 0, conn: sock };
    const key = `${peer.address}:${peer.port}`;
    this.conns.set(key, sock);
    let buf: Buffer = Buffer.alloc(0);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.conns.get(key) === sock) this.conns.delete(key);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        buf = buf.subarray(skipLeadingLineEnds(buf));
        const he = headerEnd(buf);
        if (!he) {
          if (buf.length > MAX_MESSAGE) sock.destroy();
          return;
        }
        const m = /^(?:content-length|l)[ \t]*:[ \t]*(\d+)/im.exec(buf.subarray(0, he.end).toString('latin1'));
        const total = he.bodyStart + (m ? Number(m[1]) : 0);
        if (total > MAX_MESSAGE) return void sock.destroy();
        if (buf.length < total) return;
        const one = buf.subarray(0, total);
        buf = buf.subarray(total);
        this.onBytes(Buffer.from(one), peer);
      }
    });
  }

  private onBytes(buf: Buffer, from: Peer): void {
    if (buf.length > MAX_MESSAGE) return void this.emit('dropped', { from, error: 'oversized' });
    if (skipLeadingLineEnds(buf) === buf.length) return; // keep-alive
    const parsed = parseMessage(buf);
    if (!parsed.ok) return void this.emit('dropped', { from, error: parsed.error });
    const msg = parsed.message;
    if (msg.kind === 'request') stampVia(msg, from);
    this.emit('message', msg, from);
  }
}

const unbracket = (h: string): string => (h.startsWith('[') ? h.slice(1, -1) : h);

/** RFC 3261 §18.2.1 / RFC 3581: `received` when sent-by is not the source, `rport` filled in. */
function stampVia(req: SipRequest, from: Peer): void {
  const first = req.headers.entries.find((e) => e.name === 'via');
  if (!first) return;
  const list = splitList(first.value);
  const via = parseVia(list[0] ?? '');
  if (!via) return;
  let changed = false;
  if (unbracket(via.host) !== from.address) {
    via.params.received = from.address;
    changed = true;
  }
  if ('rport' in via.params && via.params.rport === null) {
    via.params.rport = String(from.port);
    via.params.received = from.address;
    changed = true;
  }
  if (changed) first.value = [formatVia(via), ...list.slice(1)].join(', ');
}
