/**
 * Client transactions (RFC 3261 §17.1, RFC 6026): what we send — the INVITE
 * of an outbound call, and BYE / CANCEL. Each is a state machine with one
 * guarded `transition()`; retransmissions (UDP) and timeouts live here, the
 * transaction user (uac.ts, uas.ts `sendRequest`) only sees responses that
 * matter and the timeout.
 *
 * INVITE client transaction:
 *
 *                 send INVITE; Timer A (T1, doubling; UDP only), Timer B (64·T1)
 *                        │
 *                        ▼
 *     ┌────────────── Calling ── Timer B: timeout ─► Terminated
 *     │ 1xx               │ 2xx          │ 300-699: ACK (same branch), to the TU
 *     ▼                   │              │
 *   Proceeding ─ 1xx ─►TU │              │
 *     │ 2xx ──────────────┤              │
 *     │ 300-699 ──────────┼──────────────┤
 *     │                   ▼              ▼
 *     │               Accepted       Completed ── final again: resend the ACK
 *     │   2xx again: to the TU          │ Timer D (32 s UDP, 0 TCP)
 *     │   (the dialog re-ACKs)          ▼
 *     │        │ Timer M (64·T1)    Terminated
 *     │        ▼
 *     │    Terminated
 *
 *   The ACK for a 2xx is not ours: it is a request of the dialog (uac.ts).
 *
 * Non-INVITE client transaction (BYE, CANCEL):
 *
 *   Trying ─ 1xx ─► Proceeding ─ 200-699 ─► Completed ─ Timer K (T4 UDP, 0 TCP) ─► Terminated
 *     Timer E: resend at T1, 2·T1 … capped at T2 (T2 once Proceeding; UDP only)
 *     Timer F (64·T1) in Trying or Proceeding: timeout ─► Terminated
 *
 * Timers come from `SipTimers` (T1/T2/T4, shortened in tests) and run on a
 * `Scheduler` (setTimeout by default; a virtual clock in unit tests).
 */
import { guarded } from '../../media/guard.ts';
import { Headers, parseCSeq, parseVia, splitList } from './headers.ts';
import type { SipRequest, SipResponse } from './message.ts';
import type { SipTimers } from './transaction.ts';

export interface Scheduler {
  set(ms: number, fn: () => void): unknown;
  clear(handle: unknown): void;
}

export const REAL_SCHEDULER: Scheduler = {
  set: (ms, fn) => {
    const h = setTimeout(fn, ms);
    h.unref();
    return h;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export enum InviteClientState {
  Calling = 'calling',
  Proceeding = 'proceeding',
  Accepted = 'accepted',
  Completed = 'completed',
  Terminated = 'terminated',
}
export enum NonInviteClientState {
  Trying = 'trying',
  Proceeding = 'proceeding',
  Completed = 'completed',
  Terminated = 'terminated',
}

const INVITE_EDGES: Record<InviteClientState, InviteClientState[]> = {
  [InviteClientState.Calling]: [InviteClientState.Proceeding, InviteClientState.Accepted, InviteClientState.Completed, InviteClientState.Terminated],
  [InviteClientState.Proceeding]: [InviteClientState.Accepted, InviteClientState.Completed, InviteClientState.Terminated],
  [InviteClientState.Accepted]: [InviteClientState.Terminated],
  [InviteClientState.Completed]: [InviteClientState.Terminated],
  [InviteClientState.Terminated]: [],
};
const NON_INVITE_EDGES: Record<NonInviteClientState, NonInviteClientState[]> = {
  [NonInviteClientState.Trying]: [NonInviteClientState.Proceeding, NonInviteClientState.Completed, NonInviteClientState.Terminated],
  [NonInviteClientState.Proceeding]: [NonInviteClientState.Completed, NonInviteClientState.Terminated],
  [NonInviteClientState.Completed]: [NonInviteClientState.Terminated],
  [NonInviteClientState.Terminated]: [],
};

/** How a client transaction reaches the network and its owner. */
export interface ClientTxHost {
  timers: SipTimers;
  /** TCP: no retransmissions, no wait in Completed. */
  reliable: boolean;
  send(req: SipRequest): void;
  scheduler?: Scheduler;
  /** Called once, when the transaction is over (the table forgets it). */
  terminated?(key: string): void;
  /** A timer callback threw: the transaction is dropped and the error reported here (never to the event loop). */
  fault?(err: unknown, key: string): void;
}

/** The transaction user's side. */
export interface ClientTxUser {
  /** A 1xx (INVITE: also every 2xx, retransmissions included, for the dialog to (re-)ACK). */
  response(res: SipResponse): void;
  /** No final response within 64·T1 (Timer B / F): treat as 408. */
  timeout(): void;
}

/** The branch of a message's top Via. */
export function topBranch(headers: Headers): string {
  return parseVia(splitList(headers.get('via') ?? '')[0] ?? '')?.params.branch ?? '';
}

/** Client transaction key (RFC 3261 §17.1.3): top Via branch + CSeq method. */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method.toUpperCase()}`;
}

abstract class ClientTransaction<S extends string> {
  private readonly handles = new Set<unknown>();
  private readonly scheduler: Scheduler;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    protected readonly host: ClientTxHost,
    protected readonly user: ClientTxUser,
    private _state: S,
    private readonly edges: Record<S, S[]>,
  ) {
    this.scheduler = host.scheduler ?? REAL_SCHEDULER;
  }

  get state(): S {
    return this._state;
  }

  protected transition(to: S): void {
    if (!this.edges[this._state].includes(to)) throw new Error(`client transaction ${this.key}: ${this._state} → ${to} is not allowed`);
    this._state = to;
    if (to === ('terminated' as S)) {
      this.clearTimers();
      this.host.terminated?.(this.key);
    }
  }

  protected timer(ms: number, fn: () => void): void {
    const run = (): void => {
      this.handles.delete(h);
      fn();
    };
    const h = this.scheduler.set(
      ms,
      guarded(run, (err) => {
        this.clearTimers();
        this.host.terminated?.(this.key);
        this.host.fault?.(err, this.key);
      }),
    );
    this.handles.add(h);
  }

  protected clearTimers(): void {
    for (const h of this.handles) this.scheduler.clear(h);
    this.handles.clear();
  }

  abstract receive(res: SipResponse): void;

  /** Stops every timer without telling the user (shutdown). */
  dispose(): void {
    this.clearTimers();
  }
}

export class InviteClientTransaction extends ClientTransaction<InviteClientState> {
  private ack: SipRequest | null = null;

  constructor(key: string, request: SipRequest, host: ClientTxHost, user: ClientTxUser) {
    super(key, request, host, user, InviteClientState.Calling, INVITE_EDGES);
  }

  /** Sends the INVITE and arms Timers A and B. */
  start(): this {
    const { T1 } = this.host.timers;
    this.host.send(this.request);
    if (!this.host.reliable) {
      // Timer A: T1, 2·T1, 4·T1 … (not capped by T2 for INVITE), while Calling.
      const resend = (interval: number): void =>
        this.timer(interval, () => {
          if (this.state !== InviteClientState.Calling) return;
          this.host.send(this.request);
          resend(interval * 2);
        });
      resend(T1);
    }
    this.timer(64 * T1, () => {
      if (this.state !== InviteClientState.Calling) return;
      this.transition(InviteClientState.Terminated);
      this.user.timeout();
    });
    return this;
  }

  receive(res: SipResponse): void {
    const s = this.state;
    if (s === InviteClientState.Terminated) return;
    if (res.status < 200) {
      if (s === InviteClientState.Calling || s === InviteClientState.Proceeding) {
        if (s === InviteClientState.Calling) {
          this.clearTimers(); // no more Timer A; Timer B only runs in Calling
          this.transition(InviteClientState.Proceeding);
        }
        this.user.response(res);
      }
      return;
    }
    if (res.status < 300) {
      if (s === InviteClientState.Completed) return;
      if (s !== InviteClientState.Accepted) {
        this.clearTimers();
        this.transition(InviteClientState.Accepted);
        this.timer(64 * this.host.timers.T1, () => this.transition(InviteClientState.Terminated)); // Timer M
      }
      this.user.response(res); // the first 2xx, and every retransmission (the dialog ACKs each)
      return;
    }
    if (s === InviteClientState.Completed) {
      if (this.ack) this.host.send(this.ack); // the final response again: our ACK was lost
      return;
    }
    if (s === InviteClientState.Accepted) return;
    this.clearTimers();
    this.ack = ackFor(this.request, res);
    this.host.send(this.ack);
    this.transition(InviteClientState.Completed);
    this.timer(this.host.reliable ? 0 : 32_000, () => this.transition(InviteClientState.Terminated)); // Timer D
    this.user.response(res);
  }
}

export class NonInviteClientTransaction extends ClientTransaction<NonInviteClientState> {
  constructor(key: string, request: SipRequest, host: ClientTxHost, user: ClientTxUser) {
    super(key, request, host, user, NonInviteClientState.Trying, NON_INVITE_EDGES);
  }

  /** Sends the request and arms Timers E and F. */
  start(): this {
    const { T1, T2 } = this.host.timers;
    this.host.send(this.request);
    if (!this.host.reliable) {
      const resend = (interval: number): void =>
        this.timer(interval, () => {
          if (this.state !== NonInviteClientState.Trying && this.state !== NonInviteClientState.Proceeding) return;
          this.host.send(this.request);
          resend(this.state === NonInviteClientState.Proceeding ? T2 : Math.min(interval * 2, T2));
        });
      resend(T1);
    }
    this.timer(64 * T1, () => {
      if (this.state === NonInviteClientState.Completed || this.state === NonInviteClientState.Terminated) return;
      this.transition(NonInviteClientState.Terminated);
      this.user.timeout();
    });
    return this;
  }

  receive(res: SipResponse): void {
    const s = this.state;
    if (s === NonInviteClientState.Completed || s === NonInviteClientState.Terminated) return;
    if (res.status < 200) {
      if (s === NonInviteClientState.Trying) this.transition(NonInviteClientState.Proceeding);
      this.user.response(res);
      return;
    }
    this.clearTimers();
    this.transition(NonInviteClientState.Completed);
    this.timer(this.host.reliable ? 0 : this.host.timers.T4, () => this.transition(NonInviteClientState.Terminated)); // Timer K
    this.user.response(res);
  }
}

export type ClientTx = InviteClientTransaction | NonInviteClientTransaction;

/**
 * The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's
 * Request-URI, top Via, From, Call-ID, Route and CSeq number; the response's To (with its tag).
 */
export function ackFor(invite: SipRequest, res: SipResponse): SipRequest {
  const h = new Headers();
  const via = splitList(invite.headers.get('via') ?? '')[0];
  if (via) h.add('via', via);
  h.add('max-forwards', '70');
  for (const name of ['from', 'call-id']) for (const v of invite.headers.lines(name)) h.add(name, v);
  h.add('to', res.headers.get('to') ?? invite.headers.get('to') ?? '');
  const seq = parseCSeq(invite.headers.get('cseq') ?? '')?.seq ?? 1;
  h.add('cseq', `${seq} ACK`);
  for (const r of invite.headers.lines('route')) h.add('route', r);
  return { kind: 'request', method: 'ACK', uri: invite.uri, version: 'SIP/2.0', badStartLine: false, headers: h, body: Buffer.alloc(0) };
}

/** The live client transactions of one transport; responses are matched by top Via branch + CSeq method. */
export class ClientTransactionTable {
  private readonly txs = new Map<string, ClientTx>();

  constructor(
    private readonly timers: SipTimers,
    private readonly scheduler?: Scheduler,
    private readonly onFault?: (err: unknown, key: string) => void,
  ) {}

  get size(): number {
    return this.txs.size;
  }

  /** Creates and starts a client transaction for `req` (INVITE or any non-INVITE but ACK). */
  start(req: SipRequest, reliable: boolean, send: (req: SipRequest) => void, user: ClientTxUser): ClientTx {
    const key = clientKey(topBranch(req.headers), req.method);
    if (this.txs.has(key)) throw new Error(`a client transaction ${key} exists`);
    const host: ClientTxHost = {
      timers: this.timers,
      reliable,
      send,
      scheduler: this.scheduler,
      terminated: (k) => {
        if (this.txs.get(k) === tx) this.txs.delete(k);
      },
      ...(this.onFault ? { fault: this.onFault } : {}),
    };
    const tx: ClientTx = req.method === 'INVITE' ? new InviteClientTransaction(key, req, host, user) : new NonInviteClientTransaction(key, req, host, user);
    this.txs.set(key, tx);
    tx.start();
    return tx;
  }

  /** Hands a response to its transaction; false when none matches (RFC 3261 §18.1.2: discard it). */
  match(res: SipResponse): boolean {
    const method = parseCSeq(res.headers.get('cseq') ?? '')?.method;
    const tx = method ? this.txs.get(clientKey(topBranch(res.headers), method)) : undefined;
    if (!tx) return false;
    tx.receive(res);
    return true;
  }

  dispose(): void {
    for (const tx of this.txs.values()) tx.dispose();
    this.txs.clear();
  }
}
