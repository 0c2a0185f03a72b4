/**
 * The UAS core: transport ─► validation ─► transaction matching ─► the
 * application (`UasHandler`). It answers what the application never sees:
 * malformed requests (400, 505, 405, 501, 416, 420, 415, 406 — stateless),
 * admission refusals (rate limit, allowlist, digest challenge) and the application's early refusals (`screen`:
 * an INVITE to a number nobody routes) — stateless too, RFC 3261 §8.2.7: a flood from a forged source gets one
 * datagram per request, never a retransmitted one — retransmissions (stored response), CANCEL (200 + the INVITE's 487 by the
 * handler), ACKs of error responses, and OPTIONS (200, or 503 + Retry-After while the node drains). INVITE, ACK of a 2xx, BYE, INFO, PRACK (RFC 3262), UPDATE
 * (RFC 3311), REFER and NOTIFY (RFC 3515, refer.ts) go to the application. Responses go to the
 * client transactions (client-transaction.ts) of what we send — an outbound
 * INVITE (uac.ts), BYE, CANCEL; a response matching none is discarded.
 */
import type { Logger } from 'pino';
import { ClientTransactionTable, type ClientTx, type ClientTxUser, type Scheduler } from './client-transaction.ts';
import { buildResponse, type SipRequest, type SipResponse } from './message.ts';
import { DEFAULT_TIMERS, InviteServerTransaction, InviteTxState, NonInviteServerTransaction, TransactionTable, transactionKey, type SipTimers } from './transaction.ts';
import { SipTransport, type Peer, type SipTransportKind } from './transport.ts';
import { ALLOW, SUPPORTED, validateRequest, type Refusal, type ValidRequest } from './validate.ts';

export interface UasHandler {
  /** Called before anything else for a well-formed request (allowlist, rate limit, auth); a refusal is sent as is. */
  admit?(v: ValidRequest, peer: Peer): Refusal | null;
  /**
   * Called for an admitted request before a transaction is made: a promise (the refusal being recorded) means the
   * request is refused statelessly once it settles (RFC 3261 §8.2.7); null lets it through.
   */
  screen?(v: ValidRequest, peer: Peer): Promise<Refusal> | null;
  /** A new INVITE (initial or re-INVITE); 100 Trying has been sent. */
  invite(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** An ACK for a 2xx (a new transaction, matched by the dialog). */
  ack(v: ValidRequest, peer: Peer): void;
  bye(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  info(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** PRACK (RFC 3262 §4) for a reliable provisional response of ours. */
  prack?(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** UPDATE (RFC 3311): a mid-dialog offer or a session refresh. */
  update?(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** REFER (RFC 3515) in a dialog: refer.ts. Absent: 405. */
  refer?(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** NOTIFY (RFC 3515 §2.4.4: a REFER's progress) in a dialog: refer.ts. Absent: 405. */
  notify?(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void;
  /** A CANCEL matched an INVITE still proceeding; the handler answers that INVITE (487). */
  cancel(inviteTx: InviteServerTransaction): void;
  /** Retry-After seconds while the node takes no new calls (draining): OPTIONS then answers 503, else null. */
  unavailable?(): number | null;
}

export interface UasOptions {
  host: string;
  port: number;
  timers?: Partial<SipTimers>;
  logger: Logger;
  handler: UasHandler;
  /** Client transaction timers run on this (unit tests: a virtual clock). */
  scheduler?: Scheduler;
}

export type Destination = { transport: SipTransportKind; address: string; port: number };

export class SipUas {
  readonly transactions: TransactionTable;
  readonly timers: SipTimers;
  readonly clients: ClientTransactionTable;
  private readonly pending = new Set<(status: number | null) => void>();
  /** Transaction keys of requests being refused statelessly (their retransmissions meanwhile are absorbed). */
  private readonly screening = new Set<string>();
  private readonly log: Logger;

  private constructor(
    readonly transport: SipTransport,
    private readonly opts: UasOptions,
  ) {
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.log = opts.logger;
    // A transaction timer that throws drops its transaction and is logged; it never reaches the event loop.
    const onFault = (err: unknown, key: string): void => this.log.error({ err, transaction: key }, 'SIP transaction timer failed: transaction dropped');
    this.transactions = new TransactionTable(this.timers, onFault);
    this.clients = new ClientTransactionTable(this.timers, opts.scheduler, onFault);
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
  sendRequest(req: SipRequest, dest: Destination): Promise<number | null> {
    return new Promise((resolve) => {
      const done = (status: number | null): void => {
        this.pending.delete(done);
        resolve(status);
      };
      this.pending.add(done);
      this.startClient(req, dest, {
        response: (res) => {
          if (res.status >= 200) done(res.status);
        },
        timeout: () => done(null),
      });
    });
  }

  /** Starts a client transaction (INVITE or non-INVITE) for `req` towards `dest`; its responses go to `user`. */
  startClient(req: SipRequest, dest: Destination, user: ClientTxUser): ClientTx {
    return this.clients.start(req, dest.transport !== 'udp', (r) => this.transport.sendRequest(r, dest), user);
  }

  respond(tx: InviteServerTransaction | NonInviteServerTransaction, status: number, opts: Parameters<typeof buildResponse>[2] = {}): SipResponse {
    const res = buildResponse(tx.request.req, status, opts);
    tx.respond(res);
    return res;
  }

  async close(): Promise<void> {
    for (const done of [...this.pending]) done(null);
    this.clients.dispose();
    this.transactions.dispose();
    await this.transport.close();
  }

  /** RFC 3261 §8.2.7: one final answer once `refusal` settles — no transaction, no 100 Trying, no retransmission. */
  private refuseStateless(key: string, req: SipRequest, refusal: Promise<Refusal>, sendTo: (res: SipResponse) => void): void {
    this.screening.add(key);
    refusal
      .then((r) => sendTo(buildResponse(req, r.status, { reason: r.reason, headers: r.headers })))
      .catch((err: unknown) => this.log.error({ err, method: req.method }, 'SIP stateless refusal failed'))
      .finally(() => this.screening.delete(key));
  }

  private onResponse(res: SipResponse): void {
    // Responses that match no transaction of ours are discarded (RFC 3261 §18.1.2).
    if (!this.clients.match(res)) this.log.debug({ status: res.status, cseq: res.headers.get('cseq') }, 'SIP response matches no client transaction');
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
    if (this.screening.has(key)) return;
    const admitted = this.opts.handler.admit?.(v, peer) ?? null;
    if (admitted) {
      if (admitted.status === 0) return; // silently dropped (rate limit)
      // RFC 3261 §8.2.7: refused statelessly — no transaction, no 100 Trying, no retransmission of the answer
      // (Timer G would send a 401 or 503 to an INVITE ten more times to whoever the source claims to be).
      sendTo(buildResponse(req, admitted.status, { reason: admitted.reason, headers: admitted.headers }));
      return;
    }
    const screened = this.opts.handler.screen?.(v, peer) ?? null;
    if (screened) return this.refuseStateless(key, req, screened, sendTo);
    const tx = this.transactions.create(v, peer.transport !== 'udp', sendTo);
    const h = this.opts.handler;
    switch (v.req.method) {
      case 'INVITE':
        return h.invite(tx as InviteServerTransaction, v, peer);
      case 'BYE':
        return h.bye(tx as NonInviteServerTransaction, v, peer);
      case 'INFO':
        return h.info(tx as NonInviteServerTransaction, v, peer);
      case 'PRACK':
        return h.prack ? h.prack(tx as NonInviteServerTransaction, v, peer) : void this.respond(tx, 481);
      case 'UPDATE':
        return h.update ? h.update(tx as NonInviteServerTransaction, v, peer) : void this.respond(tx, 481);
      case 'REFER':
        return h.refer ? h.refer(tx as NonInviteServerTransaction, v, peer) : void this.respond(tx, 405, { headers: [['Allow', ALLOW.join(', ')]] });
      case 'NOTIFY':
        return h.notify ? h.notify(tx as NonInviteServerTransaction, v, peer) : void this.respond(tx, 405, { headers: [['Allow', ALLOW.join(', ')]] });
      case 'OPTIONS': {
        // A draining node answers 503: a dispatcher probing with OPTIONS (Kamailio) stops sending it new calls.
        const retryAfter = h.unavailable?.() ?? null;
        if (retryAfter !== null) return void this.respond(tx, 503, { headers: [['Retry-After', String(retryAfter)], ['Allow', ALLOW.join(', ')]] });
        return void this.respond(tx, 200, {
          headers: [
            ['Allow', ALLOW.join(', ')],
            ['Accept', 'application/sdp'],
            ['Accept-Encoding', 'identity'],
            ['Supported', SUPPORTED.join(', ')],
          ],
        });
      }
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
