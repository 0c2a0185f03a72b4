/**
 * SIP transport (RFC 3261 §18): one UDP socket and one TCP listener on the same
 * port. TCP is framed by Content-Length (CRLF keep-alives skipped). Received
 * requests get `received`/`rport` on their top Via (§18.2.1, RFC 3581);
 * responses go back where §18.2.2 says: the TCP connection, else the source
 * address at the Via's rport / sent-by port (5060 when absent); a Via port
 * or address that no socket accepts falls back to the source address.
 *
 * TLS (tls.ts) is a third listener on its own port: `attachTls` hands its connections to the same stream framing,
 * as transport `tls`; responses and in-dialog requests go back over that connection, and a request to a TLS
 * destination with no open connection opens one through the connector tls.ts gives.
 *
 * Sizes are bounded before parsing: a datagram or framed message over
 * MAX_MESSAGE is dropped (TCP: a Content-Length beyond it gets 513 Message Too
 * Large, then the connection is closed), and message.ts bounds header lines and
 * their count. Every socket callback runs guarded: nothing a peer sends can
 * throw out of the event loop.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type tls from 'node:tls';
import { SafeEmitter } from '../../media/emitter.ts';
import { guarded, sendUdp } from '../../media/guard.ts';
import { formatVia, parseVia, splitList } from './headers.ts';
import { buildResponse, headerEnd, MAX_MESSAGE, parseMessage, serialize, skipLeadingLineEnds, type SipMessage, type SipRequest } from './message.ts';

/** How a SIP message travelled: datagram, TCP stream, TLS stream. */
export type SipTransportKind = 'udp' | 'tcp' | 'tls';

export interface Peer {
  transport: SipTransportKind;
  address: string;
  port: number;
  conn?: net.Socket;
}

export type TransportEvents = {
  message: [msg: SipMessage, from: Peer];
  /** A datagram or stream message that is not SIP at all (or a send that could not go): dropped. */
  dropped: [info: { from: Peer; error: string }];
};

const TCP_IDLE_MS = 10 * 60_000;

export class SipTransport extends SafeEmitter<TransportEvents> {
  private readonly conns = new Map<string, net.Socket>();
  private tls: { server: tls.Server; port: number; connect: (port: number, address: string) => tls.TLSSocket } | null = null;

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly host: string,
    readonly port: number,
  ) {
    super();
    udp.on('message', this.guard((buf: Buffer, rinfo: dgram.RemoteInfo) => this.onBytes(buf, { transport: 'udp', address: rinfo.address, port: rinfo.port }), 'udp'));
    udp.on('error', () => undefined);
    tcp.on('connection', this.guard((sock: net.Socket) => this.onConnection(sock), 'tcp accept'));
    tcp.on('error', () => undefined);
  }

  /** A socket callback that cannot throw: an exception is reported as a dropped message. */
  private guard<A extends unknown[]>(fn: (...args: A) => void, where: string): (...args: A) => void {
    return guarded(fn, (err) => this.emit('dropped', { from: { transport: 'udp', address: '', port: 0 }, error: `${where}: ${(err as Error).message}` }));
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

  /** Takes the TLS listener's connections (tls.ts): framed like TCP, reported as transport `tls`. */
  attachTls(server: tls.Server, port: number, connect: (port: number, address: string) => tls.TLSSocket): void {
    this.tls = { server, port, connect };
    server.on('secureConnection', this.guard((sock: tls.TLSSocket) => this.onConnection(sock, undefined, 'tls'), 'tls accept'));
    server.on('tlsClientError', (err, sock) => this.emit('dropped', { from: { transport: 'tls', address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 }, error: `TLS handshake: ${err.message}` }));
  }

  /** The TLS port (null: no TLS listener). */
  get tlsPort(): number | null {
    return this.tls?.port ?? null;
  }

  /** Sends a response along the request's Via (or to `from` when the Via is unusable). */
  sendResponse(msg: SipMessage, from: Peer): void {
    const bytes = serialize(msg);
    if (from.transport !== 'udp') {
      if (from.conn && !from.conn.destroyed) from.conn.write(bytes);
      return;
    }
    const first = msg.headers.get('via');
    const via = first === undefined ? null : parseVia(splitList(first)[0] ?? '');
    let address = from.address;
    let port = from.port;
    if (via) {
      const rport = via.params.rport;
      const a = via.params.received ?? unbracket(via.host);
      const p = rport ? Number(rport) : (via.port ?? 5060);
      // Only a usable Via routes the response; anything else goes back to the source.
      if (net.isIP(a) && Number.isInteger(p) && p >= 1 && p <= 65535) [address, port] = [a, p];
    }
    this.sendDatagram(bytes, port, address, from);
  }

  /** Sends a request (BYE, …) to a peer; over TCP or TLS reuses or opens a connection. */
  sendRequest(msg: SipRequest, to: { transport: SipTransportKind; address: string; port: number }): void {
    const bytes = serialize(msg);
    const peer: Peer = { transport: to.transport, address: to.address, port: to.port };
    if (to.transport === 'udp') return this.sendDatagram(bytes, to.port, to.address, peer);
    if (!net.isIP(to.address) || !Number.isInteger(to.port) || to.port < 1 || to.port > 65535) {
      return void this.emit('dropped', { from: peer, error: `unusable ${to.transport.toUpperCase()} target ${to.address}:${to.port}` });
    }
    if (to.transport === 'tls' && !this.tls) return void this.emit('dropped', { from: peer, error: 'no TLS configured (SWITCHBOARD_SIP_TLS_CERT)' });
    let conn = this.conns.get(connKey(to.transport, to.address, to.port));
    if (!conn || conn.destroyed) {
      conn = to.transport === 'tls' && this.tls ? this.tls.connect(to.port, to.address) : net.connect(to.port, to.address);
      this.onConnection(conn, { address: to.address, port: to.port }, to.transport);
    }
    conn.write(bytes);
  }

  private sendDatagram(bytes: Buffer, port: number, address: string, to: Peer): void {
    const error = sendUdp(this.udp, bytes, port, address, this.host.includes(':') ? 6 : 4);
    if (error !== null) this.emit('dropped', { from: to, error });
  }

  /** The Via sent-by for requests we originate. */
  sentBy(transport: SipTransportKind, localAddress: string): string {
    const port = transport === 'tls' ? (this.tls?.port ?? this.port) : this.port;
    return `SIP/2.0/${transport.toUpperCase()} ${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${port}`;
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.destroy();
    this.conns.clear();
    await new Promise<void>((r) => this.udp.close(() => r()));
    await new Promise<void>((r) => this.tcp.close(() => r()));
    // Not awaited: a handshake in progress would hold it open; its sockets die with the process or their timeout.
    if (this.tls?.server.listening) this.tls.server.close();
  }

  private onConnection(sock: net.Socket, remote?: { address: string; port: number }, transport: 'tcp' | 'tls' = 'tcp'): void {
    const peer: Peer = { transport, address: remote?.address ?? sock.remoteAddress ?? '', port: remote?.port ?? sock.remotePort ?? 0, conn: sock };
    const key = connKey(transport, peer.address, peer.port);
    this.conns.set(key, sock);
    let buf: Buffer = Buffer.alloc(0);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.conns.get(key) === sock) this.conns.delete(key);
    });
    // Framing (RFC 3261 §18.3): the header block is searched only in bytes not searched before, and the
    // message is cut at Content-Length; more than MAX_MESSAGE bytes of one message end the connection.
    let scanned = 0;
    sock.on(
      'data',
      this.guard((chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          const skip = skipLeadingLineEnds(buf);
          if (skip > 0) {
            buf = buf.subarray(skip);
            scanned = 0;
          }
          const he = headerEnd(buf, Math.max(0, scanned - 3));
          if (!he) {
            scanned = buf.length;
            if (buf.length > MAX_MESSAGE) sock.destroy();
            return;
          }
          const length = contentLength(buf.subarray(0, he.end));
          const total = he.bodyStart + (length ?? 0);
          if (length === null) return void this.refuseStream(buf.subarray(0, he.bodyStart), peer, sock, 400, 'Bad Request (malformed Content-Length)');
          if (total > MAX_MESSAGE) return void this.refuseStream(buf.subarray(0, he.bodyStart), peer, sock, 513, `Message Too Large (over ${MAX_MESSAGE} bytes)`);
          if (buf.length < total) return;
          const one = buf.subarray(0, total);
          buf = buf.subarray(total);
          scanned = 0;
          this.onBytes(Buffer.from(one), peer);
        }
      }, 'tcp data'),
    );
  }

  /**
   * A stream message that cannot be framed — longer than we take (513), or a Content-Length we cannot read (400):
   * the request is answered when its head parses, then the connection is closed (the stream has lost its framing).
   */
  private refuseStream(head: Buffer, peer: Peer, sock: net.Socket, status: 400 | 513, reason: string): void {
    const parsed = parseMessage(head);
    if (parsed.ok && parsed.message.kind === 'request' && parsed.message.method !== 'ACK') sock.end(serialize(buildResponse(parsed.message, status, { reason })));
    else sock.destroy();
    this.emit('dropped', { from: peer, error: reason });
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

/** Open connections by transport and remote address (TCP keys are the address alone, as before TLS). */
const connKey = (transport: SipTransportKind, address: string, port: number): string => `${transport === 'tls' ? 'tls:' : ''}${address}:${port}`;

const unbracket = (h: string): string => (h.startsWith('[') ? h.slice(1, -1) : h);

/**
 * The Content-Length of a header block (0 when absent, null when unreadable or repeated with other values), read
 * line by line without a regular expression over the block.
 */
function contentLength(head: Buffer): number | null {
  let found: number | null = null;
  for (const line of head.toString('latin1').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name !== 'content-length' && name !== 'l') continue;
    const text = line.slice(colon + 1).trim();
    const n = text.length > 0 && text.length <= 9 && /^[0-9]+$/.test(text) ? Number(text) : null;
    if (n === null || (found !== null && found !== n)) return null;
    found = n;
  }
  return found ?? 0;
}

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
