/**
 * Session timers (RFC 4028): the `Session-Expires` / `Min-SE` grammar, the UAS's choice of interval and refresher
 * (§9), and the per-dialog timer that either refreshes the session (we are the refresher) or tears a dead one down
 * (the peer is the refresher and no refresh came).
 *
 *   INVITE/UPDATE with Session-Expires ─► negotiateUas ─┬─ SE < our Min-SE ─► 422 + Min-SE (§9)
 *                                                       └─ { interval, refresher } ─► 2xx Session-Expires;refresher=…
 *
 *   SessionTimer (one per dialog; started by the 2xx, restarted by every refresh — ours answered or the peer's):
 *
 *            start / refreshed(interval, refresher)
 *                        │
 *          ┌─────────────┴──────────────┐
 *    refresher = us                refresher = peer
 *          │                             │
 *   Refreshing: at interval/2      Watching: at interval − min(32, interval/3) (§10)
 *     ─► onRefresh() (re-INVITE      ─► onExpire() (BYE, `sip:session-expired`)
 *        or UPDATE); its 2xx            unless a refresh arrives first
 *        calls refreshed() again
 *          │                             │
 *          └──────── stop() (BYE, CANCEL, shutdown) ─► Stopped
 *
 * The timer itself is not written to the store: after a restart a resumed dialog starts a fresh timer from the
 * stored interval and role (DialogSnapshot.sessionTimer, as it was when the call was answered or its media last
 * changed) — our watch on the peer only gets longer by the time the node was down, and as refresher we refresh
 * half an interval after the restart.
 */
import type { Scheduler } from './client-transaction.ts';
import { REAL_SCHEDULER } from './client-transaction.ts';
import type { Headers } from './headers.ts';

/** RFC 4028 §4: the smallest Min-SE a UA may use (a lower one is allowed only by configuration, for tests). */
export const RFC_MIN_SE = 90;
/** The interval we ask for as UAC, and the one we propose when the peer only says `Supported: timer`. */
export const DEFAULT_SESSION_EXPIRES = 1800;

export type Refresher = 'uac' | 'uas';

export interface SessionExpires {
  seconds: number;
  refresher: Refresher | null;
}

/** RFC 4028 §4: `Session-Expires: delta-seconds *(;se-params)`, `refresher=uac|uas`; null when malformed. */
export function parseSessionExpires(value: string | undefined): SessionExpires | null {
  if (value === undefined) return null;
  const [secs, ...params] = value.split(';').map((s) => s.trim());
  if (!secs || !/^\d{1,10}$/.test(secs)) return null;
  const seconds = Number(secs);
  if (seconds < 1) return null;
  let refresher: Refresher | null = null;
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'refresher') {
      if (v !== 'uac' && v !== 'uas') return null;
      refresher = v;
    }
  }
  return { seconds, refresher };
}

/** RFC 4028 §5: `Min-SE: delta-seconds *(;generic-param)`; null when absent or malformed. */
export function parseMinSe(value: string | undefined): number | null {
  if (value === undefined) return null;
  const secs = value.split(';')[0]?.trim() ?? '';
  return /^\d{1,10}$/.test(secs) ? Number(secs) : null;
}

const hasTag = (h: Headers, name: string, tag: string): boolean => h.values(name).some((t) => t.toLowerCase() === tag);

export type UasTimerDecision =
  | { kind: 'none' }
  | { kind: 'too-small'; minSe: number }
  | { kind: 'timer'; interval: number; refresher: Refresher; peerSupports: boolean };

/**
 * RFC 4028 §9, the UAS side of a session refresh request (INVITE, re-INVITE or UPDATE): below our Min-SE ─► 422;
 * the interval is the request's (never raised above it); the refresher is the one the request names, else the UAC
 * when it supports timers (it asked, it refreshes), else us. No Session-Expires and no `Supported: timer`: no timer.
 */
export function negotiateUas(h: Headers, minSe: number): UasTimerDecision {
  const peerSupports = hasTag(h, 'supported', 'timer') || hasTag(h, 'require', 'timer');
  const se = parseSessionExpires(h.get('session-expires'));
  if (!se) return peerSupports ? { kind: 'timer', interval: Math.max(DEFAULT_SESSION_EXPIRES, minSe), refresher: 'uac', peerSupports } : { kind: 'none' };
  if (se.seconds < minSe) return { kind: 'too-small', minSe };
  const refresher: Refresher = se.refresher ?? (peerSupports ? 'uac' : 'uas');
  return { kind: 'timer', interval: se.seconds, refresher, peerSupports };
}

/** The 2xx headers for a UAS decision (§9: Require: timer only when the UAC said it supports timers). */
export function uasTimerHeaders(d: UasTimerDecision): Array<[string, string]> {
  if (d.kind !== 'timer') return [];
  return [['Session-Expires', `${d.interval};refresher=${d.refresher}`], ...(d.peerSupports ? ([['Require', 'timer']] as Array<[string, string]>) : [])];
}

/**
 * RFC 4028 §7.2, the UAC side: what a 2xx to our INVITE (or refresh) says. No Session-Expires in the 2xx: no
 * timer (the peer does not do them). A 2xx that names no refresher leaves it to us, the UAC.
 */
export function timerFromAnswer(h: Headers): { interval: number; refresher: Refresher } | null {
  const se = parseSessionExpires(h.get('session-expires'));
  if (!se) return null;
  return { interval: se.seconds, refresher: se.refresher ?? 'uac' };
}

/** The longest session interval a callee's `Min-SE` may ask of us (a day): beyond it a 422 ends the call. */
export const MAX_SESSION_EXPIRES = 86_400;

/**
 * RFC 4028 §7.4, a UAC's answer to `422 Session Interval Too Small`: the Session-Expires (and Min-SE) to send the
 * INVITE again with — the 422's Min-SE, never below what we asked — or null when it cannot be met: no usable Min-SE,
 * one above `MAX_SESSION_EXPIRES`, or a 422 to our retry already.
 */
export function intervalAfter422(current: number, minSeHeader: string | undefined, retried: boolean): number | null {
  const minSe = parseMinSe(minSeHeader);
  if (retried || minSe === null || minSe > MAX_SESSION_EXPIRES) return null;
  return Math.max(current, minSe);
}

/** When the refresher refreshes: half the interval (§7.2, §10). */
export const refreshAfterMs = (interval: number): number => (interval * 1000) / 2;
/** When the non-refresher gives up: interval − min(32 s, interval / 3) (§10). */
export const expireAfterMs = (interval: number): number => (interval - Math.min(32, interval / 3)) * 1000;

export type TimerState = 'stopped' | 'refreshing' | 'watching';

/**
 * One dialog's session timer (see the diagram above). `refresher` values are relative to the transaction that
 * negotiated them (RFC 4028 §4: `uac` is whoever sent that INVITE/UPDATE), so callers pass `weRefresh` instead.
 */
export class SessionTimer {
  private handle: unknown = null;
  private _state: TimerState = 'stopped';
  private _interval = 0;

  constructor(
    private readonly on: { refresh(): void; expire(): void },
    private readonly scheduler: Scheduler = REAL_SCHEDULER,
  ) {}

  get state(): TimerState {
    return this._state;
  }
  get interval(): number {
    return this._interval;
  }

  /** A session (re)negotiated `interval` seconds, refreshed by us or by the peer: the timer starts over. */
  refreshed(interval: number, weRefresh: boolean): void {
    this.clear();
    this._interval = interval;
    if (weRefresh) {
      this._state = 'refreshing';
      this.handle = this.scheduler.set(refreshAfterMs(interval), () => {
        this.handle = null;
        this.on.refresh();
      });
    } else {
      this._state = 'watching';
      this.handle = this.scheduler.set(expireAfterMs(interval), () => {
        this.handle = null;
        this._state = 'stopped';
        this.on.expire();
      });
    }
  }

  stop(): void {
    this.clear();
    this._state = 'stopped';
  }

  private clear(): void {
    if (this.handle !== null) this.scheduler.clear(this.handle);
    this.handle = null;
  }
}
