/**
 * Reliable provisional responses (RFC 3262, `100rel`): the RSeq / RAck grammar and, as UAS, the retransmission of
 * a reliable 18x until its PRACK arrives.
 *
 *   INVITE with Require: 100rel ─► 18x with Require: 100rel + RSeq: n (n random, §3)
 *                                      │
 *                            Unacked ──┤ resend at T1, 2·T1, 4·T1 … (§3; over UDP and TCP alike)
 *                                      │
 *         PRACK with RAck: n cseq INVITE ─► Acked (PRACK answered 200; the 2xx may now be sent)
 *         64·T1 without a PRACK          ─► GaveUp (the INVITE is answered 504, §3)
 *         the INVITE's final response    ─► Stopped
 *
 * A PRACK that matches no pending response is answered 481 (§4). We use 100rel only when the INVITE requires it
 * (`Require: 100rel`): `Supported: 100rel` alone gets the ordinary unreliable 18x. As UAC (uac.ts) a reliable 18x
 * is answered with a PRACK carrying its RAck (§4), once per RSeq.
 */
import type { Scheduler } from './client-transaction.ts';
import { REAL_SCHEDULER } from './client-transaction.ts';
import type { Headers } from './headers.ts';

export interface RAck {
  rseq: number;
  cseq: number;
  method: string;
}

const MAX_RSEQ = 2 ** 31 - 1;

/** RFC 3262 §7.1: `RSeq: 1*DIGIT` (1 … 2³¹−1); null when absent or malformed. */
export function parseRSeq(value: string | undefined): number | null {
  if (value === undefined || !/^\s*\d{1,10}\s*$/.test(value)) return null;
  const n = Number(value);
  return n >= 1 && n <= MAX_RSEQ ? n : null;
}

/** RFC 3262 §7.2: `RAck: response-num CSeq-num Method`; null when malformed. */
export function parseRAck(value: string | undefined): RAck | null {
  const m = value === undefined ? null : /^\s*(\d{1,10})\s+(\d{1,10})\s+([A-Za-z]+)\s*$/.exec(value);
  if (!m) return null;
  const rseq = Number(m[1]);
  const cseq = Number(m[2]);
  if (rseq < 1 || rseq > MAX_RSEQ || cseq > MAX_RSEQ) return null;
  return { rseq, cseq, method: (m[3] as string).toUpperCase() };
}

export const formatRAck = (r: RAck): string => `${r.rseq} ${r.cseq} ${r.method}`;

/** Whether the request requires reliable provisional responses (`Require: 100rel`). */
export const requires100rel = (h: Headers): boolean => h.values('require').some((t) => t.toLowerCase() === '100rel');

/** A first RSeq (§3: chosen uniformly between 1 and 2³¹−1; kept below 2³⁰ so later increments never overflow). */
export const firstRSeq = (): number => 1 + Math.floor(Math.random() * 2 ** 30);

export type ReliableState = 'unacked' | 'acked' | 'gave-up' | 'stopped';

/**
 * One reliable provisional response being retransmitted (§3). `send` puts the same 18x on the wire again;
 * `settled` resolves true on its PRACK, false when it gave up (64·T1) or was stopped.
 */
export class ReliableProvisional {
  private handle: unknown = null;
  private deadline: unknown = null;
  private _state: ReliableState = 'unacked';
  private resolve!: (acked: boolean) => void;
  readonly settled: Promise<boolean>;

  constructor(
    readonly rseq: number,
    readonly cseq: number,
    private readonly send: () => void,
    private readonly t1: number,
    private readonly scheduler: Scheduler = REAL_SCHEDULER,
  ) {
    this.settled = new Promise((r) => (this.resolve = r));
    this.send();
    this.schedule(t1);
    this.deadline = this.scheduler.set(64 * t1, () => {
      this.deadline = null;
      this.finish('gave-up', false);
    });
  }

  get state(): ReliableState {
    return this._state;
  }

  /** A PRACK arrived: true when it acknowledges this response (§4 matching: RSeq, CSeq and method INVITE). */
  prack(r: RAck): boolean {
    if (r.rseq !== this.rseq || r.cseq !== this.cseq || r.method !== 'INVITE') return false;
    if (this._state === 'unacked') this.finish('acked', true);
    return this._state === 'acked';
  }

  /** The INVITE got its final response (or the call went away): no more retransmissions. */
  stop(): void {
    if (this._state === 'unacked') this.finish('stopped', false);
  }

  private schedule(interval: number): void {
    this.handle = this.scheduler.set(interval, () => {
      this.handle = null;
      this.send();
      this.schedule(interval * 2);
    });
  }

  private finish(state: ReliableState, acked: boolean): void {
    for (const h of [this.handle, this.deadline]) if (h !== null) this.scheduler.clear(h);
    this.handle = null;
    this.deadline = null;
    this._state = state;
    this.resolve(acked);
  }
}
