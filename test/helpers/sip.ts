/**
 * A raw SIP peer for tests: UDP sockets bound on a private loopback address
 * (127.x.y.z) at the ports torture messages' Vias name (5060 when absent), so
 * responses routed by RFC 3261 §18.2.2 come back to us without anything in the
 * stack knowing it is a test.
 */
import dgram from 'node:dgram';
import { parseMessage, type SipResponse } from '../../ingress/sip/message.ts';

export interface Received {
  at: number;
  port: number;
  raw: Buffer;
  res: SipResponse | null;
}

export class SipProbe {
  readonly received: Received[] = [];
  private constructor(
    readonly address: string,
    private readonly sockets: Map<number, dgram.Socket>,
  ) {
    for (const [port, s] of sockets) {
      s.on('message', (raw) => {
        const p = parseMessage(raw);
        this.received.push({ at: Date.now(), port, raw, res: p.ok && p.message.kind === 'response' ? p.message : null });
      });
    }
  }

  /** Binds `ports` on one random 127/8 address (retrying another address if one is taken); `net`: its first two octets (e.g. `127.77`). */
  static async open(ports: number[], net?: string): Promise<SipProbe> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      const head = net ?? `127.${10 + Math.floor(Math.random() * 200)}`;
      const address = `${head}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
      const sockets = new Map<number, dgram.Socket>();
      try {
        for (const port of ports) {
          const s = dgram.createSocket('udp4');
          sockets.set(port, s);
          await new Promise<void>((resolve, reject) => {
            s.once('error', reject);
            s.bind(port, address, () => resolve());
          });
        }
        return new SipProbe(address, sockets);
      } catch (err) {
        lastErr = err;
        for (const s of sockets.values()) s.close();
      }
    }
    throw new Error(`could not bind a SIP probe: ${String(lastErr)}`);
  }

  send(bytes: Buffer, to: { port: number; address?: string }, fromPort?: number): void {
    const s = this.sockets.get(fromPort ?? [...this.sockets.keys()][0]!)!;
    s.send(bytes, to.port, to.address ?? '127.0.0.1');
  }

  /** Responses since `since` whose Call-ID satisfies `match`. */
  responses(since: number, match: (callId: string | undefined) => boolean): SipResponse[] {
    return this.received.filter((r) => r.at >= since && r.res && match(r.res.headers.get('call-id'))).map((r) => r.res!);
  }

  async waitFor<T>(fn: () => T | undefined | null | false, ms: number): Promise<T | null> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) return null;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    for (const s of this.sockets.values()) s.close();
  }
}

/** A valid OPTIONS from the probe (Via names the probe's address and port). */
export function options(probe: SipProbe, port: number, callId: string, extra = ''): Buffer {
  return Buffer.from(
    `OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${probe.address}:${port};branch=z9hG4bK${callId}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:probe@${probe.address}>;tag=p1\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length: 0\r\n\r\n`,
  );
}
