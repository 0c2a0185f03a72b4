/**
 * The UAS core: transport ─► validation ─► transaction matching ─► the
 * application (`UasHandler`). It answers what the application never sees:
 * malformed requests (400, 505, 405, 501, 416, 420, 415, 406 — stateless),
 * retransmissions (stored response), CANCEL (200 + the INVITE's 487 by the
 * handler), ACKs of error responses, and OPTIONS. Responses are discarded
 * (we keep only client transactions for the BYEs we send).
 */
import type { Logger } from 'pino';
import { buildResponse, type SipRequest, type SipResponse } from './message.ts';
import { DEFAULT_TIMERS, InviteServerTransaction, InviteTxState, NonInviteServerTransaction, TransactionTable, transactionKey, type SipTimers } from './transaction.ts';
import { SipTransport, type Peer } from './transport.ts';
import { ALLOW, SUPPORTED, validateRequest, type Refusal, type ValidRequest } from './validate.ts';
import { parseCSeq, parseVia, splitList } from './headers.ts';

export interface UasHandler {
  /** Called before anything else for a well-formed request (allowlist, rate limit, auth); a refusal is sent as is. */
  admit?(v: ValidRequest, peer: Peer): Refusal | null;
  /** A new INVITE (initial or re-INVITE); 100 Trying has been sent. */
  invite(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** An ACK for a 2xx (a new transaction, matched by the dialog). */
  ack(v: ValidRequest, peer: Peer): void;
  bye(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  info(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** A CANCEL matched an INVITE still proceeding; the handler answers that INVITE (487). */
  cancel(inviteTx: InviteServerTransaction): void;
}

export interface UasOptions {
  host: string;
  port: number;
  timers?: Partial<SipTimers>;
  logger: Logger;
  handler: UasHandler;
}

export class SipUas {
  readonly transactions: TransactionTable;
  readonly timers: SipTimers;
  private readonly clients = new Map<string, { resolve(status: number | null): void; timers: NodeJS.Timeout[] }>();
  private readonly log: Logger;

  private constructor(
    readonly transport: SipTransport,
    private readonly opts: UasOptions,
  ) {
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.transactions = new TransactionTable(this.timers);
    this.log = opts.logger;
    transport.on('message', (msg, peer) => {
      try {
        if (msg.kind === 'request') this.onRequest(msg, peer);
        else this.onResponse(msg);
      } catch (err) {
        this.log.error({ err }, 'SIP message handling failed');
      }
    });
    transport.on('dropped', (d) => this.log.debug({ from: `${d.from.address}:${d.from.port}`, error: d.error }, 'SIP datagram dropped'));
  }

  static async start(opts: UasOptions): Promise<SipUas> {
    return new SipUas(await SipTransport.listen({ host: opts.host, port: opts.port }), opts);
  }

  get port(): number {
    return this.transport.port;
  }

  /** Sends an in-dialog request with a client non-INVITE transaction (Timers E/F); resolves with the final status or null on timeout. */
  sendRequest(req: SipRequest, dest: { transport: 'udp' | 'tcp'; address: string; port: number }): Promise<number | null> {
    const branch = parseVia(splitList(req.headers.get('via') ?? '')[0] ?? '')?.params.branch ?? '';
    const { T1, T2 } = this.timers;
    return new Promise((resolve) => {
      const entry: { resolve(status: number | null): void; timers: NodeJS.Timeout[] } = { resolve, timers: [] };
      const done = (status: number | null): void => {
        for (const t of entry.timers) clearTimeout(t);
        this.clients.delete(branch);
        resolve(status);
      };
      entry.resolve = done;
      this.clients.set(branch, entry);
      const send = (interval: number): void => {
        this.transport.sendRequest(req, dest);
        if (dest.transport === 'udp') {
          const t = setTimeout(() => send(Math.min(interval * 2, T2)), interval);
          t.unref();
          entry.timers.push(t);
        }
      };
      const f = setTimeout(() => done(null), 64 * T1);
      f.unref();
      entry.timers.push(f);
      send(T1);
    });
  }

  respond(tx: InviteServerTransaction | NonInviteServerTransaction, status: number, opts: Parameters<typeof buildResponse>[2] = {}): SipResponse {
    const res = buildResponse(tx.request.req, status, opts);
    tx.respond(res);
    return res;
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.resolve(null);
    this.transactions.dispose();
    await this.transport.close();
  }

  private onResponse(res: SipResponse): void {
    const via = parseVia(splitList(res.headers.get('via') ?? '')[0] ?? '');
    const client = via?.params.branch ? this.clients.get(via.params.branch) : undefined;
    const cseq = parseCSeq(res.headers.get('cseq') ?? '');
    // Responses that match no transaction of ours are discarded (RFC 3261 §18.1.2).
    if (client && cseq && res.status >= 200) client.resolve(res.status);
  }

  private onRequest(req: SipRequest, peer: Peer): void {
    const sendTo = (res: SipResponse): void => this.transport.sendResponse(res, peer);
    const checked = validateRequest(req, peer.transport);
    if (!checked.ok) {
      const r = checked.refusal;
      this.log.info({ method: req.method, from: `${peer.address}:${peer.port}`, status: r.status, detail: r.detail }, 'SIP request refused');
      if (req.method !== 'ACK') sendTo(buildResponse(req, r.status, { reason: r.reason, headers: r.headers }));
      return;
    }
    const v = checked.value;
    const key = transactionKey(v);
    const existing = this.transactions.get(key);
    if (v.req.method === 'ACK') {
      if (existing instanceof InviteServerTransaction && existing.state !== InviteTxState.Accepted) return existing.ackReceived();
      return this.opts.handler.ack(v, peer);
    }
    if (existing) return existing.retransmitted();
    const admitted = this.opts.handler.admit?.(v, peer) ?? null;
    if (admitted) {
      if (admitted.status === 0) return; // silently dropped (rate limit)
      const tx = this.transactions.create(v, peer.transport === 'tcp', sendTo);
      // An INVITE transaction has just sent 100 Trying; the refusal follows it.
      tx.respond(buildResponse(req, admitted.status, { reason: admitted.reason, headers: admitted.headers }));
      return;
    }
    const tx = this.transactions.create(v, peer.transport === 'tcp', sendTo);
    const h = this.opts.handler;
    switch (v.req.method) {
      case 'INVITE':
        return h.invite(tx as InviteServerTransaction, v, peer);
      case 'BYE':
        return h.bye(tx as NonInviteServerTransaction, v, peer);
      case 'INFO':
        return h.info(tx as NonInviteServerTransaction, v, peer);
      case 'OPTIONS':
        return void this.respond(tx, 200, {
          headers: [
            ['Allow', ALLOW.join(', ')],
            ['Accept', 'application/sdp'],
            ['Accept-Encoding', 'identity'],
            ['Supported', SUPPORTED.join(', ')],
          ],
        });
      case 'CANCEL': {
        const invite = this.transactions.inviteFor(v);
        if (!invite) return void this.respond(tx, 481);
        this.respond(tx, 200);
        if (invite.state === InviteTxState.Proceeding) h.cancel(invite);
        return;
      }
      default:
        return void this.respond(tx, 501, { headers: [['Allow', ALLOW.join(', ')]] });
    }
  }
}
