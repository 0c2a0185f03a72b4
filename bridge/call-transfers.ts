/**
 * One call's transfers through its own media and the bridge they leave, for the turn manager (bridge/turn-manager.ts):
 * the call's legs (bridge/legs.ts, made at the first transfer), the human it is bridged to, and whether the agent is
 * out of the audio. The steps themselves are bridge/transfer-warm.ts and bridge/transfer-dial.ts.
 *
 *   warm(target, opts) ─► transfer-warm.ts ─► bridged: the human's hang-up ends the call; failed: the caller's back
 *   blind(target)      ─► transfer-dial.ts `blindBridge`: dialled and bridged at the answer (no hand-over)
 *   referOnward(h, t)  ─► the bridged human `h` hands the call to `t` (SIP REFER accepted): `t` answers ─► it replaces
 *                         `h` (whose call the adapter then ends); `t` fails ─► the bridge to `h` stays as it was. `h`
 *                         hanging up meanwhile puts the caller on hold (`refer:hold`) instead of ending the call; if
 *                         `t` then fails too, the call ends.
 *   restore()          ─► at attach after a restart: the call's last matrix row is a bridge (`*:bridged`) ─► the human's resumed
 *                         leg (parked or still to come, bridge/human-legs.ts) is mixed in again; the agent stays out
 *   close()            ─► the caller's media is gone: the mixer stops, and a bridged human's call ends with it
 */
import type { CallLeg } from '../media/call-leg.ts';
import type { CallContext } from './call-context.ts';
import { SessionError } from './call-context.ts';
import { CallLegs } from './legs.ts';
import { HUMAN_LEG, isBridgedReason, storedMatrix } from './legs-matrix.ts';
import { blindBridge, holdWhileReferred, referOnward, type Dialled } from './transfer-dial.ts';
import { endHumanCall, recordHumanLeg, warmTransfer, type WarmHost, type WarmOutcome } from './transfer-warm.ts';

export class CallTransfers {
  private legs: CallLegs | null = null;
  private bridged: { callId: string; leg: CallLeg } | null = null;
  /** The bridged human is handing the call onward (`referOnward`): its hang-up holds the caller instead of ending the call. */
  private referring: { humanGone: boolean } | null = null;
  /** The agent is out of the audio: the call is bridged to a human (now, or when its media came back). */
  agentOut = false;

  constructor(
    private readonly ctx: CallContext,
    private readonly closing: AbortSignal,
    private readonly hangup: (reason: string) => Promise<void>,
  ) {}

  /** Whether this gateway can make warm transfers (a dialer and the human-leg registry were given). */
  get available(): boolean {
    return this.ctx.deps.humans !== undefined && this.ctx.deps.transferDialer !== undefined;
  }

  private callLegs(): CallLegs {
    const { ctx } = this;
    if (this.legs) return this.legs;
    const call = ctx.deps.store.read(ctx.ref.tenant).calls.get(ctx.ref.callId);
    const number = call?.number_id ? (ctx.deps.store.read(ctx.ref.tenant).numbers.get(call.number_id)?.number ?? null) : null;
    return (this.legs = new CallLegs(ctx.leg, ctx.pipeline, ctx.deps.clock, ctx.log, ctx.deps.holdAudio?.forNumber(number)));
  }

  /** The host of a transfer's steps (transfer-warm.ts, transfer-dial.ts). */
  private host(): WarmHost {
    const { ctx } = this;
    const { humans, transferDialer: dialer, store } = ctx.deps;
    if (!humans || !dialer) throw new SessionError('transfer_unavailable', 'transfers through the gateway need an outbound dialer');
    const call = store.read(ctx.ref.tenant).calls.get(ctx.ref.callId);
    const number = call?.number_id ? store.read(ctx.ref.tenant).numbers.get(call.number_id) : undefined;
    const legs = this.callLegs();
    return { store, ref: ctx.ref, log: ctx.log, who: () => ctx.who(), legs, humans, dialer, from: number?.number ?? ctx.call.to, synthesize: (text) => ctx.deps.tts.synthesize(text, legs.rate), closed: this.closing };
  }

  /** One warm transfer (bridge/transfer-warm.ts); bridged, the human hanging up ends the call. */
  async warm(target: string, opts: { summary?: string; timeoutMs?: number }): Promise<WarmOutcome> {
    const out = await warmTransfer(this.host(), target, opts);
    if (out.ok) this.bridge(out.humanCallId, out.leg);
    return out;
  }

  /** A blind transfer dialled and bridged by the gateway (bridge/transfer-dial.ts); bridged, the person hanging up ends the call. */
  async blind(target: string, opts: { timeoutMs?: number } = {}): Promise<Dialled> {
    const out = await blindBridge(this.host(), target, opts);
    if (out.ok) this.bridge(out.callId, out.leg);
    return out;
  }

  /** Whether `humanCallId` is the human this call is bridged to now (a REFER from it may be accepted). */
  isBridgedTo(humanCallId: string): boolean {
    return this.bridged?.callId === humanCallId && this.referring === null;
  }

  /** The bridged human `humanCallId` hands the call to `target` (see the header). */
  async referOnward(humanCallId: string, target: string, opts: { timeoutMs?: number } = {}): Promise<Dialled> {
    if (!this.isBridgedTo(humanCallId)) return { ok: false, reason: 'failed', detail: 'the call is not bridged to that person now', endReason: null, callId: null };
    const referring = (this.referring = { humanGone: false });
    try {
      const out = await referOnward(this.host(), target, opts);
      if (out.ok) this.bridge(out.callId, out.leg);
      else if (referring.humanGone) void this.hangup('transfer: the human hung up');
      return out;
    } finally {
      this.referring = null;
    }
  }

  /** At attach: true when the call's matrix row says it is bridged (a restart mid-bridge); see the header. */
  restore(): boolean {
    const { ctx } = this;
    const stored = storedMatrix(ctx.deps.store, ctx.ref);
    const humans = ctx.deps.humans;
    if (!stored || !isBridgedReason(stored.reason) || !stored.peerCallId || !humans) return false;
    this.agentOut = true;
    const peer = stored.peerCallId;
    if (ctx.deps.store.read(ctx.ref.tenant).calls.get(peer)?.state === 'ended') {
      void this.hangup('transfer: the human hung up');
      return true;
    }
    const legs = this.callLegs();
    const stop = humans.expect(peer, {
      leg: (leg) => {
        stop();
        legs.addLeg(HUMAN_LEG, leg);
        legs.setMatrix(stored.matrix);
        this.bridge(peer, leg);
        void recordHumanLeg({ store: ctx.deps.store, ref: ctx.ref, log: ctx.log }, peer, leg);
        ctx.log.info({ human: peer, matrix: stored.n }, 'bridge rebuilt from the call matrix row after a restart');
      },
      ended: () => void this.hangup('transfer: the human hung up'),
    });
    this.closing.addEventListener('abort', stop);
    return true;
  }

  /** The caller's media is gone: the mixer stops; a bridged human's call ends with the caller's. */
  close(): void {
    this.legs?.close();
    if (this.bridged) void endHumanCall({ store: this.ctx.deps.store, ref: this.ctx.ref, log: this.ctx.log }, { ...this.bridged }, 'transfer: the caller hung up');
  }

  private bridge(callId: string, leg: CallLeg): void {
    this.agentOut = true;
    this.bridged = { callId, leg };
    leg.on('closed', () => {
      if (this.bridged?.leg !== leg) return; // replaced by the person a REFER reached
      if (this.referring) {
        this.referring.humanGone = true;
        void holdWhileReferred(this.host()).catch((err: unknown) => this.ctx.log.warn({ err }, 'hold after the referring human left failed'));
        return;
      }
      void this.hangup('transfer: the human hung up');
    });
  }
}
