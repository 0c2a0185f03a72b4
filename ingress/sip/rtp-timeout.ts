/**
 * RTP inactivity timeout for one answered SIP call (what carriers and SBCs do: rtpengine's timeout, FreeSWITCH's
 * media_timeout, Asterisk's rtptimeout). A far end that is gone without a BYE — its BYE lost, e.g. sent while this
 * node was down and the resumed leg re-bound its port — would otherwise leave the call `active` for ever.
 *
 *   start (the call is answered — SipApp.track — or carried on after a restart / a takeover: a fresh full timeout)
 *     │
 *     ▼  every tick (≤ 1 s, never longer than the limit in force)
 *   packets received since the last tick (RTP or SRTP that passed its checks)? ── yes ─► idle since now
 *   hold state changed (re-INVITE / UPDATE)?                                    ── yes ─► idle since now
 *   limit = held by the far end (sendonly / inactive / c=0.0.0.0) ? holdMs : activeMs   (0 = never)
 *   idle ≥ limit ─► onTimeout(): the call ends `sip:rtp-timeout` through call control, BYE with
 *                   `Reason: SIP;cause=408;text="RTP timeout"` (byeReason)
 *     │
 *   stop() (BYE either way, shutdown, the call ended otherwise) ─► no more ticks
 *
 * It reads the RTP session's packet counter instead of being told of each packet, so the media path is untouched
 * and a call costs one timer a second. The tick's granularity makes the timeout up to one tick late, never early.
 * Nothing is stored: a restarted node's resumed leg starts its own watch from the restart.
 */
import type { Scheduler } from './client-transaction.ts';
import { REAL_SCHEDULER } from './client-transaction.ts';

/** The end reason of a call whose far end sent no RTP for the limit. */
export const RTP_TIMEOUT_REASON = 'sip:rtp-timeout';

/** The longest tick: the timeout fires at most this late. */
const MAX_TICK_MS = 1000;

export interface RtpTimeoutLimits {
  /** SWITCHBOARD_SIP_RTP_TIMEOUT_MS: no packet for this long while not held ─► the call ends; 0 = never. */
  activeMs: number;
  /** SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS: the same while the far end holds the call; 0 = never. */
  holdMs: number;
}

export const DEFAULT_RTP_TIMEOUT: RtpTimeoutLimits = { activeMs: 60_000, holdMs: 0 };

export interface RtpTimeoutSource {
  /** Packets received so far (RtpSession.stats.packetsIn): any change is activity. */
  packets(): number;
  /** Whether the far end holds the call now (CallCtx.held). */
  held(): boolean;
}

export class RtpInactivity {
  private handle: unknown = null;
  private lastPackets = 0;
  private lastHeld = false;
  private idleSince = 0;
  private stopped = true;

  constructor(
    private readonly limits: RtpTimeoutLimits,
    private readonly source: RtpTimeoutSource,
    private readonly onTimeout: (idleMs: number, held: boolean) => void,
    private readonly scheduler: Scheduler = REAL_SCHEDULER,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a watch runs (false when both limits are 0, or after stop / timeout). */
  get running(): boolean {
    return !this.stopped;
  }

  /** Starts (or restarts) the watch with a full timeout from now; does nothing when both limits are 0. */
  start(): void {
    this.stop();
    if (this.limits.activeMs <= 0 && this.limits.holdMs <= 0) return;
    this.stopped = false;
    this.lastPackets = this.source.packets();
    this.lastHeld = this.source.held();
    this.idleSince = this.now();
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== null) this.scheduler.clear(this.handle);
    this.handle = null;
  }

  private limit(held: boolean): number {
    return held ? this.limits.holdMs : this.limits.activeMs;
  }

  private arm(): void {
    const active = this.limits.activeMs > 0 ? this.limits.activeMs : MAX_TICK_MS;
    const hold = this.limits.holdMs > 0 ? this.limits.holdMs : MAX_TICK_MS;
    const tick = Math.max(1, Math.min(MAX_TICK_MS, active, hold));
    this.handle = this.scheduler.set(tick, () => {
      this.handle = null;
      if (!this.stopped) this.check();
    });
  }

  private check(): void {
    const now = this.now();
    const packets = this.source.packets();
    const held = this.source.held();
    if (packets !== this.lastPackets || held !== this.lastHeld) this.idleSince = now;
    this.lastPackets = packets;
    this.lastHeld = held;
    const limit = this.limit(held);
    const idle = now - this.idleSince;
    if (limit > 0 && idle >= limit) {
      this.stopped = true;
      this.onTimeout(idle, held);
      return;
    }
    this.arm();
  }
}

/**
 * The `Reason` header of our BYE (RFC 3326): 408 "RTP timeout" for an RTP timeout, else cause 200 with the end reason.
 * The leg's close reason is the end reason, or `call ended: <end reason>` when call control closed it (call-session.ts).
 */
export function byeReason(reason: string): string {
  if (reason === RTP_TIMEOUT_REASON || reason.endsWith(`: ${RTP_TIMEOUT_REASON}`)) return 'SIP;cause=408;text="RTP timeout"';
  return `SIP;cause=200;text="${reason.replace(/["\\]/g, '').slice(0, 80)}"`;
}
