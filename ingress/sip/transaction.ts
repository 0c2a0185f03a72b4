/**
 * Server transactions (RFC 3261 §17.2, RFC 6026). Each is a state machine with
 * one guarded `transition()`. Retransmitted requests are absorbed here and
 * answered with the stored response; the TU only sees new requests.
 *
 * INVITE server transaction:
 *
 *                    INVITE ─► send 100 Trying, pass to TU
 *                        │
 *                        ▼        INVITE: resend last response
 *     ┌───────────── Proceeding ─────────────┐
 *     │ 2xx from TU                           │ 300-699 from TU
 *     ▼                                       ▼
 *   Accepted                              Completed ── Timer G: resend (UDP); INVITE: resend
 *     │ Timer G': resend 2xx until ACK        │ ACK            │ Timer H (64·T1): no ACK
 *     │ ACK (from the dialog) stops it        ▼                ▼
 *     │ Timer H': no ACK → onNoAck        Confirmed ─ Timer I ─► Terminated
 *     └── Timer L (64·T1) ─────────────────────────────────────► Terminated
 *
 * Non-INVITE server transaction:
 *
 *   Trying ─ 1xx ─► Proceeding ─ 200-699 ─► Completed ─ Timer J (64·T1 UDP, 0 TCP) ─► Terminated
 *   (a retransmitted request in Proceeding/Completed gets the last response again)
 */
import { guarded } from '../../media/guard.ts';
import { buildResponse, type SipResponse } from './message.ts';
import type { ValidRequest } from './validate.ts';

export interface SipTimers {
  /** RTT estimate (500 ms). */
  T1: number;
  /** Cap on retransmit intervals (4 s). */
  T2: number;
  /** Max time a message stays in the network (5 s). */
  T4: number;
}
export const DEFAULT_TIMERS: SipTimers = { T1: 500, T2: 4000, T4: 5000 };

export enum InviteTxState {
  Proceeding = 'proceeding',
  Completed = 'completed',
  Confirmed = 'confirmed',
  Accepted = 'accepted',
  Terminated = 'terminated',
}
export enum NonInviteTxState {
  Trying = 'trying',
  Proceeding = 'proceeding',
  Completed = 'completed',
  Terminated = 'terminated',
}

const INVITE_EDGES: Record<InviteTxState, InviteTxState[]> = {
  [InviteTxState.Proceeding]: [InviteTxState.Completed, InviteTxState.Accepted, InviteTxState.Terminated],
  [InviteTxState.Completed]: [InviteTxState.Confirmed, InviteTxState.Terminated],
  [InviteTxState.Confirmed]: [InviteTxState.Terminated],
  [InviteTxState.Accepted]: [InviteTxState.Terminated],
  [InviteTxState.Terminated]: [],
};
const NON_INVITE_EDGES: Record<NonInviteTxState, NonInviteTxState[]> = {
  [NonInviteTxState.Trying]: [NonInviteTxState.Proceeding, NonInviteTxState.Completed, NonInviteTxState.Terminated],
  [NonInviteTxState.Proceeding]: [NonInviteTxState.Completed, NonInviteTxState.Terminated],
  [NonInviteTxState.Completed]: [NonInviteTxState.Terminated],
  [NonInviteTxState.Terminated]: [],
};

/** Transaction key: RFC 3261 branch + sent-by + method (ACK matches its INVITE), else the RFC 2543 fields. */
export function transactionKey(v: ValidRequest, method = v.req.method === 'ACK' ? 'INVITE' : v.req.method): string {
  const top = v.vias[0];
  const sentBy = top ? `${top.host}:${top.port ?? ''}` : '';
  const branch = top?.params.branch ?? '';
  if (branch.startsWith('z9hG4bK')) return `${branch}|${sentBy}|${method}`;
  return `2543|${v.callId}|${v.cseq.seq}|${v.from.params.tag ?? ''}|${v.req.uri}|${sentBy}|${method}`;
}

interface TxHost {
  timers: SipTimers;
  reliable: boolean;
  send(res: SipResponse): void;
  terminated(key: string): void;
  /** A timer callback threw: the transaction is dropped and the error reported here (never to the event loop). */
  fault?(err: unknown, key: string): void;
}

abstract class ServerTransaction<S extends string> {
  private readonly handles = new Set<NodeJS.Timeout>();
  protected last: SipResponse | null = null;

  constructor(
    readonly key: string,
    readonly request: ValidRequest,
    protected readonly host: TxHost,
    private _state: S,
    private readonly edges: Record<S, S[]>,
  ) {}

  get state(): S {
    return this._state;
  }
  get lastResponse(): SipResponse | null {
    return this.last;
  }

  protected transition(to: S): void {
    if (!this.edges[this._state].includes(to)) throw new Error(`transaction ${this.key}: ${this._state} → ${to} is not allowed`);
    this._state = to;
    if (to === ('terminated' as S)) {
      for (const h of this.handles) clearTimeout(h);
      this.handles.clear();
      this.host.terminated(this.key);
    }
  }

  protected timer(ms: number, fn: () => void): void {
    const run = (): void => {
      this.handles.delete(h);
      fn();
    };
    const h = setTimeout(
      guarded(run, (err) => {
        this.clearTimers();
        this.host.terminated(this.key);
        this.host.fault?.(err, this.key);
      }),
      ms,
    );
    h.unref();
    this.handles.add(h);
  }

  protected clearTimers(): void {
    for (const h of this.handles) clearTimeout(h);
    this.handles.clear();
  }

  protected sendLast(): void {
    if (this.last) this.host.send(this.last);
  }

  /** A retransmission of the request arrived. */
  abstract retransmitted(): void;

  /** Stops every timer (shutdown). */
  dispose(): void {
    this.clearTimers();
  }
}

export class InviteServerTransaction extends ServerTransaction<InviteTxState> {
  /** Set by the TU: called when a 2xx was never ACKed (Timer H' fired). */
  onNoAck: (() => void) | null = null;

  constructor(key: string, request: ValidRequest, host: TxHost) {
    super(key, request, host, InviteTxState.Proceeding, INVITE_EDGES);
    // 100 Trying at once (RFC 3261 §17.2.1 allows 200 ms; we do not wait).
    this.respond(buildResponse(request.req, 100));
  }

  respond(res: SipResponse): void {
    const { T1, T2 } = this.host.timers;
    if (this.state !== InviteTxState.Proceeding) return;
    this.last = res;
    this.host.send(res);
    if (res.status < 200) return;
    if (res.status < 300) {
      this.transition(InviteTxState.Accepted);
      const resend = (interval: number): void =>
        this.timer(interval, () => {
          this.host.send(res);
          resend(Math.min(interval * 2, T2));
        });
      resend(T1);
      this.timer(64 * T1, () => {
        this.clearTimers();
        this.transition(InviteTxState.Terminated);
        this.onNoAck?.();
      });
      return;
    }
    this.transition(InviteTxState.Completed);
    if (!this.host.reliable) {
      const resend = (interval: number): void =>
        this.timer(interval, () => {
          this.host.send(res);
          resend(Math.min(interval * 2, T2));
        });
      resend(T1);
    }
    this.timer(64 * T1, () => this.transition(InviteTxState.Terminated));
  }

  /** ACK for a non-2xx final response (same branch). */
  ackReceived(): void {
    if (this.state !== InviteTxState.Completed) return;
    this.clearTimers();
    this.transition(InviteTxState.Confirmed);
    this.timer(this.host.reliable ? 0 : this.host.timers.T4, () => this.transition(InviteTxState.Terminated));
  }

  /** The dialog saw the ACK for our 2xx: stop retransmitting, absorb INVITE copies until Timer L. */
  acknowledged(): void {
    if (this.state !== InviteTxState.Accepted) return;
    this.clearTimers();
    this.onNoAck = null;
    this.timer(64 * this.host.timers.T1, () => this.transition(InviteTxState.Terminated));
  }

  retransmitted(): void {
    if (this.state === InviteTxState.Proceeding || this.state === InviteTxState.Completed) this.sendLast();
  }
}

export class NonInviteServerTransaction extends ServerTransaction<NonInviteTxState> {
  constructor(key: string, request: ValidRequest, host: TxHost) {
    super(key, request, host, NonInviteTxState.Trying, NON_INVITE_EDGES);
  }

  respond(res: SipResponse): void {
    if (this.state === NonInviteTxState.Completed || this.state === NonInviteTxState.Terminated) return;
    this.last = res;
    this.host.send(res);
    if (res.status < 200) {
      if (this.state === NonInviteTxState.Trying) this.transition(NonInviteTxState.Proceeding);
      return;
    }
    this.transition(NonInviteTxState.Completed);
    this.timer(this.host.reliable ? 0 : 64 * this.host.timers.T1, () => this.transition(NonInviteTxState.Terminated));
  }

  retransmitted(): void {
    if (this.state !== NonInviteTxState.Trying) this.sendLast();
  }
}

export type ServerTx = InviteServerTransaction | NonInviteServerTransaction;

/** The live server transactions of one transport, keyed by `transactionKey`. */
export class TransactionTable {
  private readonly txs = new Map<string, ServerTx>();

  constructor(
    private readonly timers: SipTimers,
    private readonly onFault?: (err: unknown, key: string) => void,
  ) {}

  get size(): number {
    return this.txs.size;
  }

  get(key: string): ServerTx | undefined {
    return this.txs.get(key);
  }

  /** Creates the transaction for a new request (not ACK). */
  create(v: ValidRequest, reliable: boolean, send: (res: SipResponse) => void): ServerTx {
    const key = transactionKey(v);
    const host: TxHost = {
      timers: this.timers,
      reliable,
      send,
      terminated: (k) => {
        if (this.txs.get(k) === tx) this.txs.delete(k);
      },
      ...(this.onFault ? { fault: this.onFault } : {}),
    };
    const tx: ServerTx = v.req.method === 'INVITE' ? new InviteServerTransaction(key, v, host) : new NonInviteServerTransaction(key, v, host);
    this.txs.set(key, tx);
    return tx;
  }

  /** The INVITE transaction a CANCEL (same branch) refers to. */
  inviteFor(cancel: ValidRequest): InviteServerTransaction | undefined {
    const tx = this.txs.get(transactionKey(cancel, 'INVITE'));
    return tx instanceof InviteServerTransaction ? tx : undefined;
  }

  dispose(): void {
    for (const tx of this.txs.values()) tx.dispose();
    this.txs.clear();
  }
}
