/**
 * The registry of live call sessions on this node: one per call. A new media
 * connection for a call that still has one (a resume racing the old socket's
 * close) supersedes the old. `close()` detaches every session once, leaving
 * the calls in `resuming` so providers can bring them back to a live node.
 *
 * `mediaLive()` tells an ingress whether a call's media is flowing here now: a
 * provider's resume request for such a call is not from the provider's flow
 * (a replayed webhook, or a request racing the old socket's close), and a
 * second media connection for it is refused rather than allowed to supersede.
 *
 * A pause of an agent (from any node) reaches the sessions on it here (bridge/fallback.ts `followPauses`).
 */
import type { CallLeg } from '../media/call-leg.ts';
import { CallSession, type CallRef, type SessionDeps } from './call-session.ts';
import { followPauses } from './fallback.ts';

/** Providers send a media frame every 20 ms, silence included: two seconds without one is a lost stream. */
export const MEDIA_LIVE_WINDOW_MS = 2_000;

export class CallManager {
  private readonly sessions = new Map<string, CallSession>();
  private readonly attachedListeners: Array<(callId: string) => void> = [];
  private closing = false;

  private readonly stopPauses: () => void;

  constructor(private readonly deps: SessionDeps) {
    this.stopPauses = followPauses(deps.store, () => this.sessions.values());
  }

  get size(): number {
    return this.sessions.size;
  }

  /** `cb(callId)` each time a call's media session goes live on this node (a throwing listener is ignored). */
  onAttached(cb: (callId: string) => void): void {
    this.attachedListeners.push(cb);
  }

  has(callId: string): boolean {
    return this.sessions.has(callId);
  }

  get(callId: string): CallSession | undefined {
    return this.sessions.get(callId);
  }

  /**
   * True while the call has an open media connection on this node whose far end sent audio in the last
   * `withinMs`. A session whose leg went quiet (half-open socket) does not count: its media is lost.
   */
  mediaLive(callId: string, withinMs = MEDIA_LIVE_WINDOW_MS): boolean {
    const s = this.sessions.get(callId);
    return s !== undefined && !s.isClosed && !s.leg.closed && s.leg.silentForMs < withinMs;
  }

  /**
   * Before a resume is granted for a call whose media is not live: a session still attached here has gone
   * quiet (a half-open socket) and is detached, so it cannot talk over the stream that replaces it.
   */
  detachLost(callId: string, reason: string): void {
    if (!this.mediaLive(callId)) this.sessions.get(callId)?.detach(reason);
  }

  async attach(ref: CallRef, leg: CallLeg): Promise<CallSession> {
    if (this.closing) {
      leg.close('gateway shutting down', false);
      throw new Error('gateway shutting down');
    }
    const previous = this.sessions.get(ref.callId);
    if (previous) previous.detach('superseded by a new media connection');
    try {
      const session = await CallSession.attach(this.deps, ref, leg, (s) => {
        if (this.sessions.get(ref.callId) === s) this.sessions.delete(ref.callId);
      });
      if (leg.closed) return session;
      this.sessions.set(ref.callId, session);
      for (const cb of this.attachedListeners) {
        try {
          cb(ref.callId);
        } catch {
          // A listener's failure is its own; the session is live either way.
        }
      }
      return session;
    } catch (err) {
      leg.close(`media refused: ${(err as Error).message}`);
      throw err;
    }
  }

  /** The provider reported the call over. */
  providerEnded(callId: string, reason: string): void {
    this.sessions.get(callId)?.providerEnded(reason);
  }

  /** The ids of the calls with a live session here. */
  ids(): IterableIterator<string> {
    return this.sessions.keys();
  }

  /** Ends every live call with `reason` (the end of a drain with nobody to take the calls: bridge/drain.ts). */
  async hangupAll(reason: string): Promise<void> {
    await Promise.allSettled([...this.sessions.values()].map((s) => s.hangup(reason)));
  }

  /** Detaches every live session (graceful shutdown). */
  close(reason = 'gateway shutdown'): void {
    this.closing = true;
    this.stopPauses();
    for (const s of [...this.sessions.values()]) s.detach(reason);
    this.sessions.clear();
  }
}
