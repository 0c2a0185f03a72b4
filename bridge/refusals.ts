/**
 * Refused calls, written at a bounded rate whatever the rate they arrive at. Every ingress refuses calls to
 * unknown numbers, to a number bound to another provider, and beyond the node's capacity; a flood of such calls
 * (a scanner dialling number after number, a spoofed source) must not turn into one log event per packet.
 *
 *  - The first refusal of a (tenant, provider, source, reason) in a window is its own `call_rejected`, written
 *    before the caller is answered, as it always was: a single refused call is on record with its call id.
 *  - Further refusals of the same key in that window are counted in memory and written as one
 *    `call_rejections_aggregated` (count, last number dialled) when the window ends (`windowMs`, default 60 s),
 *    or at shutdown. So a key costs at most two events per window.
 *  - At most `maxRows` keys get a row of their own per window (default 200): past that, a refusal from a new key
 *    is counted under source `*` — a flood from many (or forged) sources is bounded in total, not per source.
 *
 * `source` is what the ingress knows of where the call came from: the SIP peer's address, the HTTP client's
 * address for WebRTC, the caller's number for provider webhooks (their requests all come from the provider). The
 * per-source request limits stay in the ingresses (the SIP rate limit refuses a source over it before anything
 * here is reached: such a source gets nothing written at all).
 *
 * The count lives in memory until its window ends: a crash loses at most one window's counts, never a
 * `call_rejected` row (those are written before the answer).
 */
import type { Logger } from 'pino';
import type { LegProvider } from '../media/call-leg.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { call_rejected, call_rejections_aggregated } from '../schema/reducers.ts';

export interface Refusal {
  tenant: string;
  /** Caller of the commands (the ingress). */
  caller: string;
  /** The `call_rejected` command id (its idempotency key: a provider's retry of the same call is one row). */
  id: string;
  provider: LegProvider;
  providerCallId: string;
  from: string;
  to: string;
  /** `class: detail` (the class — unknown_number, over_capacity… — is part of the key). */
  reason: string;
  /** Where the call came from, as the ingress knows it (see the module comment). */
  source: string;
}

export interface RefusalLogOptions {
  windowMs?: number;
  maxRows?: number;
  logger?: Logger;
}

interface Counted {
  tenant: string;
  caller: string;
  provider: LegProvider;
  source: string;
  reason: string;
  count: number;
  lastTo: string | null;
}

export class RefusalLog {
  readonly windowMs: number;
  private readonly maxRows: number;
  private keys = new Map<string, Counted>();
  private rows = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly log: Logger | undefined;

  constructor(
    private readonly store: Store<SwitchboardTables>,
    opts: RefusalLogOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxRows = opts.maxRows ?? 200;
    this.log = opts.logger;
    this.timer = setInterval(() => void this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** Records one refusal: a `call_rejected` row (awaited) if it is the first of its key in this window, else a count. */
  async refuse(r: Refusal): Promise<void> {
    const reason = reasonClass(r.reason);
    const key = keyOf(r.tenant, r.provider, r.source, reason);
    const seen = this.keys.get(key);
    if (seen) return void this.count(seen, r.to);
    if (this.rows >= this.maxRows || this.closed) {
      const overflow = keyOf(r.tenant, r.provider, '*', reason);
      const o = this.keys.get(overflow) ?? this.track(overflow, { ...r, source: '*' }, reason);
      return void this.count(o, r.to);
    }
    this.track(key, r, reason);
    this.rows++;
    await this.store.submit(
      call_rejected,
      { provider: r.provider, provider_call_id: r.providerCallId, from: r.from, to: r.to, reason: r.reason },
      { tenant: r.tenant, caller: r.caller, id: r.id },
    );
  }

  /** Ends the window: every count becomes one `call_rejections_aggregated`; the next refusal of any key is a row again. */
  async flush(): Promise<void> {
    const ended = this.keys;
    this.keys = new Map();
    this.rows = 0;
    const writes = [...ended.values()]
      .filter((c) => c.count > 0)
      .map((c) =>
        this.store
          .submit(
            call_rejections_aggregated,
            { provider: c.provider, source: c.source.slice(0, 256), reason: c.reason, count: c.count, window_ms: this.windowMs, last_to: c.lastTo },
            { tenant: c.tenant, caller: c.caller },
          )
          .catch((err: unknown) => this.log?.warn({ err, count: c.count, reason: c.reason }, 'refused calls could not be counted in the log')),
      );
    await Promise.all(writes);
  }

  /** Stops the window timer and writes the counts so far (before the store closes). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }

  private track(key: string, r: Refusal, reason: string): Counted {
    const c: Counted = { tenant: r.tenant, caller: r.caller, provider: r.provider, source: r.source, reason, count: 0, lastTo: null };
    this.keys.set(key, c);
    return c;
  }

  private count(c: Counted, to: string): void {
    c.count++;
    c.lastTo = to.slice(0, 512);
  }
}

const keyOf = (tenant: string, provider: string, source: string, reason: string): string => `${tenant}\0${provider}\0${source}\0${reason}`;

/** `over_capacity: 3 live calls, limit 3` → `over_capacity`; `provider_mismatch: number is twilio` → `provider_mismatch`. */
export function reasonClass(reason: string): string {
  return (reason.split(':', 1)[0] ?? reason).trim().slice(0, 200) || 'refused';
}
