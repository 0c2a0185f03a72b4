/**
 * The WebRTC peer connections of this node, from answer to hang-up.
 *
 *   answered ─► connected within CONNECT_TIMEOUT_MS ─► WebrtcLeg ─► CallControl.attach
 *            └► not connected: peer closed; a new call that never had media is ended,
 *               a resume is left to the client's next try
 *
 * Abandoned calls: a WebRTC call has no provider to report its end (no status
 * callback). A live call with no media on this node — its tab closed without
 * `DELETE`, or this node restarted and the browser never came back — is ended
 * after `resumeGraceMs` of being orphaned, counted from when this process
 * first saw it orphaned (so a restart gives every call the full grace).
 * In cluster mode every node holds every call row: a call that another node
 * owns while that node's lease runs is not orphaned here (its media is there,
 * and that node sweeps it). Once the owner is lost or stopped (its lease ran
 * out: schema/nodes.ts), any node may resume the call (the browser's token
 * works on every node) or, after the grace, end it — one `call_ended`
 * whichever node writes it (its command id names the call and media epoch).
 */
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import type { IngressStore } from '../port.ts';
import type { WebrtcPeer } from './peer.ts';
import type { OfferSummary } from './sdp.ts';
import { call_ended } from '../../schema/reducers.ts';
import { leaseRuns } from '../../schema/nodes.ts';

/** The leg module (Opus, ~30 ms to load), imported on first use; the adapter's `warm()` brings it in early. */
export const loadLeg = (): Promise<typeof import('./leg.ts')> => import('./leg.ts');

export const CONNECT_TIMEOUT_MS = 20_000;
const PROVIDER = 'webrtc';
const LIVE_STATES = ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming'] as const;

export interface PeerAttempt {
  peer: WebrtcPeer;
  offer: OfferSummary;
  session: string;
  tenant: string;
  callId: string;
  /** A resume of a call that had media before (vs. a new call). */
  resumed: boolean;
}

export class WebrtcSessions {
  /** Peers answered but not yet attached, by session. */
  private readonly pending = new Map<string, WebrtcPeer>();
  private readonly orphanedSince = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly deps: { store: IngressStore; calls: CallControl; logger: Logger; resumeGraceMs: number; opusComplexity?: number },
  ) {
    this.sweeper = setInterval(() => void this.sweep().catch((err: unknown) => deps.logger.warn({ err }, 'webrtc sweep failed')), Math.min(5000, Math.max(250, deps.resumeGraceMs / 4)));
    this.sweeper.unref();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Waits for the browser to connect, then hands the leg to the call manager. */
  async connect(a: PeerAttempt): Promise<void> {
    const log = this.deps.logger;
    this.pending.get(a.session)?.close(); // a newer offer for the same session wins
    this.pending.set(a.session, a.peer);
    const ok = await a.peer.connected(CONNECT_TIMEOUT_MS);
    if (this.pending.get(a.session) === a.peer) this.pending.delete(a.session);
    if (!ok || this.closed) {
      a.peer.close();
      log.warn({ call: a.callId, session: a.session, state: a.peer.state }, 'webrtc peer did not connect');
      const row = this.deps.store.read(a.tenant).calls.get(a.callId);
      if (!a.resumed && row && row.state !== 'ended' && row.media_epoch === 0 && !this.closed) {
        await this.end(a.tenant, a.callId, 'webrtc: media never connected', `webrtc:noconnect:${a.session}`);
      }
      return;
    }
    // leg.ts (and the Opus WASM with it) is imported by the first connected peer, not at start (index.ts `warm`).
    const { WebrtcLeg } = await loadLeg();
    if (this.closed) return void a.peer.close();
    const leg = new WebrtcLeg(a.peer, {
      session: a.session,
      offer: a.offer,
      callEnded: () => this.deps.store.read(a.tenant).calls.get(a.callId)?.state === 'ended',
      opusComplexity: this.deps.opusComplexity,
    });
    log.info({ call: a.callId, session: a.session, resumed: a.resumed }, 'webrtc peer connected');
    await this.deps.calls.attach({ tenant: a.tenant, callId: a.callId }, leg).catch((err: unknown) => {
      log.warn({ err, call: a.callId }, 'webrtc media attach refused');
    });
  }

  /** The browser hung up (`DELETE`): ends the call (call control stops its session, closing the media). */
  async hangup(tenant: string, callId: string, session: string): Promise<void> {
    this.pending.get(session)?.close();
    this.pending.delete(session);
    await this.end(tenant, callId, 'webrtc:hangup', `webrtc:hangup:${session}`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const p of this.pending.values()) p.close();
    this.pending.clear();
  }

  private async end(tenant: string, callId: string, reason: string, id: string): Promise<void> {
    await this.deps.calls.end({ tenant, callId }, reason, { caller: 'webrtc', id });
  }

  private async sweep(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    const live = this.deps.store.read(null).calls.find({ provider: PROVIDER, state: LIVE_STATES });
    const seen = new Set<string>();
    for (const call of live) {
      seen.add(call.id);
      if (this.deps.calls.hasSession(call.id) || this.pending.has(call.provider_call_id) || this.ownedElsewhere(call.owner_node, now)) {
        this.orphanedSince.delete(call.id);
        continue;
      }
      const since = this.orphanedSince.get(call.id) ?? now;
      this.orphanedSince.set(call.id, since);
      if (now - since < this.deps.resumeGraceMs) continue;
      this.orphanedSince.delete(call.id);
      this.deps.logger.info({ call: call.id, state: call.state }, 'webrtc call not resumed in time: ended');
      await this.end(call.tenant, call.id, 'webrtc: not resumed', `webrtc:abandoned:${call.id}:${call.media_epoch}`);
    }
    for (const id of this.orphanedSince.keys()) if (!seen.has(id)) this.orphanedSince.delete(id);
  }

  /** Another node owns the call and its lease runs at `now` (cluster mode): that node carries and sweeps it. */
  private ownedElsewhere(owner: string | null, now: number): boolean {
    if (owner === null || owner === this.deps.store.node) return false;
    return leaseRuns(this.deps.store.read(null).nodes.get(owner), now);
  }
}
