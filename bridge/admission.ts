/**
 * Admission control for new calls: refuse a call the node cannot carry rather
 * than degrade every call it already has. One event loop paces all media
 * (media/pacer.ts); past its capacity every call's audio arrives late, not
 * only the newest one's. A refused caller gets its ingress's busy/overload
 * answer (routeInbound's `busy` decision, worded by each ingress in its own
 * protocol, with `retryAfterS`) and the attempt is logged as `call_rejected` (at a bounded rate: refusals.ts).
 *
 * Two limits, both off unless configured (cli/config/ reads them; a bad value stops the start):
 *  - `maxCalls` (SWITCHBOARD_MAX_CALLS): live calls on this node, counting
 *    calls admitted whose media has not connected yet (a webhook burst would
 *    otherwise all pass the check before the first media socket opens);
 *  - `maxLoopLagMs` (SWITCHBOARD_MAX_LOOP_LAG_MS): the event loop's delay p99
 *    over the last second; above it, new calls wait until the node recovers.
 *
 * Only new calls are checked: a provider retrying its webhook, or resuming a
 * call after a restart or a dropped socket, gets its call back.
 *
 * One more reason, always on when wired: `store_unavailable` — the store
 * cannot commit (disk full, I/O error: `Store.health`). Every inbound call,
 * new or resuming, gets the busy answer until the store recovers by itself
 * (`storeRefusal()`, checked before anything is written); live calls go on.
 *
 * And `draining` — this node is draining (bridge/drain.ts): every new call gets the busy answer
 * (`drainRefusal()`, checked only for calls the store does not know yet), so the provider or the balancer tries
 * another node; a retry or a resume of a call this node has goes on as before.
 */

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { guarded } from '../media/guard.ts';

export interface AdmissionOptions {
  /** Most live calls on this node; 0 = no limit. */
  maxCalls: number;
  /** Refuse new calls while the event loop's recent delay p99 exceeds this (ms); 0 = off. */
  maxLoopLagMs: number;
  /** Call ids with a live media session on this node. */
  live: { readonly size: number; has(callId: string): boolean };
  /** The event loop's delay p99 over the last window, ms. */
  loopLagMs?: () => number;
  /** Monotonic ms (tests). */
  now?: () => number;
  /** How long an admitted call counts while its media has not connected. Default 15 s. */
  pendingMs?: number;
  /** Why the store cannot commit now (disk full …), or null when it can. */
  storeFault?: () => string | null;
  /** True while this node drains (bridge/drain.ts): new calls are refused. */
  draining?: () => boolean;
}

export interface Refusal {
  reason: 'over_capacity' | 'overloaded' | 'store_unavailable' | 'draining';
  detail: string;
  /** Seconds a caller (or a proxy) should wait before trying this node again. */
  retryAfterS: number;
}

interface Pending {
  expires: number;
  callId: string | null;
}

export class CallAdmission {
  private readonly pending = new Map<string, Pending>();
  private readonly now: () => number;
  private readonly pendingMs: number;

  constructor(private readonly opts: AdmissionOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.pendingMs = opts.pendingMs ?? 15_000;
  }

  get enabled(): boolean {
    return this.opts.maxCalls > 0 || this.opts.maxLoopLagMs > 0;
  }

  /** Live calls plus admitted calls still waiting for their media. */
  get count(): number {
    this.prune();
    return this.opts.live.size + this.pending.size;
  }

  /** The refusal every inbound call gets while the store cannot commit (disk full …), or null. */
  storeRefusal(): Refusal | null {
    const fault = this.opts.storeFault?.() ?? null;
    return fault === null ? null : { reason: 'store_unavailable', detail: `the store cannot write: ${fault}`, retryAfterS: 30 };
  }

  /** The refusal a new call gets while this node drains, or null. */
  drainRefusal(): Refusal | null {
    return this.opts.draining?.() === true ? { reason: 'draining', detail: 'this node is draining: it takes no new calls', retryAfterS: 30 } : null;
  }

  /**
   * Checks a new call (`key`: provider + the provider's call id) and, when it may come in, holds its place until
   * `bind()`/`release()` or the pending window ends. Returns the refusal, or null when admitted.
   */
  reserve(key: string): Refusal | null {
    if (!this.enabled) return null;
    if (this.pending.has(key)) return null;
    const lag = this.opts.maxLoopLagMs > 0 ? (this.opts.loopLagMs?.() ?? 0) : 0;
    if (this.opts.maxLoopLagMs > 0 && lag > this.opts.maxLoopLagMs) {
      return { reason: 'overloaded', detail: `media loop delay p99 ${lag.toFixed(0)} ms > ${this.opts.maxLoopLagMs} ms`, retryAfterS: 5 };
    }
    const count = this.count;
    if (this.opts.maxCalls > 0 && count >= this.opts.maxCalls) {
      return { reason: 'over_capacity', detail: `${count} live calls, limit ${this.opts.maxCalls}`, retryAfterS: 30 };
    }
    this.pending.set(key, { expires: this.now() + this.pendingMs, callId: null });
    return null;
  }

  /** The reserved call got its call id: it stops counting as pending once its media session is live. */
  bind(key: string, callId: string): void {
    const p = this.pending.get(key);
    if (p) p.callId = callId;
  }

  /** The call's media session is live: from now on it counts as a live call, not as a pending one. */
  attached(callId: string): void {
    for (const [key, p] of this.pending) if (p.callId === callId) this.pending.delete(key);
  }

  /** The reserved call did not come in after all (routing failed). */
  release(key: string): void {
    this.pending.delete(key);
  }

  private prune(): void {
    const now = this.now();
    for (const [key, p] of this.pending) {
      if (p.expires <= now || (p.callId !== null && this.opts.live.has(p.callId))) this.pending.delete(key);
    }
  }
}

/** Sampling resolution of the loop-delay histogram, ms. */
const LAG_RESOLUTION_MS = 10;

/**
 * The loop's delay from a `monitorEventLoopDelay` reading (ns): the histogram records whole timer intervals,
 * resolution included, so an idle loop reads ~10 ms; the resolution is taken off.
 */
export function lagMs(histogramNs: number): number {
  return Math.max(0, histogramNs / 1e6 - LAG_RESOLUTION_MS);
}

/** What LoopLag reads: `monitorEventLoopDelay`'s histogram (a test may hand in its own). */
export type LoopDelayHistogram = Pick<IntervalHistogram, 'enable' | 'disable' | 'percentile' | 'reset'>;

export interface LoopLagOptions {
  /** A window's reading failed: told here (logged by the gateway), never thrown into the event loop. */
  onError?: (err: unknown) => void;
  histogram?: LoopDelayHistogram;
}

/**
 * The event loop's delay p99 over the last completed window (default 1 s), from
 * `monitorEventLoopDelay`. `stop()` ends the sampling. The window's timer is guarded (media/guard.ts): a failed
 * reading keeps the last p99 and goes to `onError`, it does not end the process.
 */
export class LoopLag {
  private readonly histogram: LoopDelayHistogram;
  private readonly timer: NodeJS.Timeout;
  private lastP99Ms = 0;

  constructor(windowMs = 1000, opts: LoopLagOptions = {}) {
    this.histogram = opts.histogram ?? monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    this.histogram.enable();
    const onError = opts.onError ?? (() => undefined);
    this.timer = setInterval(
      guarded(() => {
        try {
          this.lastP99Ms = lagMs(this.histogram.percentile(99));
        } finally {
          this.histogram.reset();
        }
      }, onError),
      windowMs,
    );
    this.timer.unref();
  }

  get p99Ms(): number {
    return this.lastP99Ms;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
