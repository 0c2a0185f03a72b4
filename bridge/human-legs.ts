/**
 * Legs a call is waiting for: the human a warm transfer dials (bridge/transfer-warm.ts) is an outbound call of its
 * own (its row: `call_dialed`, then `call_answered` by the dialer), but its media joins the transferring call's mixer
 * instead of a session of its own. Call control (bridge/call-control.ts) asks here first when media attaches, and
 * tells here when a call ends, so the waiting transfer learns that its human answered, or that the dial failed and
 * why (busy, no answer …). Provider-neutral: any dialer whose answered call attaches through call control will do.
 *
 *   transfer ──expect(humanCallId, {leg, ended})──► HumanLegs
 *   adapter ──calls.attach(ref, leg)──► CallControl ──claim(callId, leg)──► the transfer gets the leg (no session)
 *   adapter ──calls.end(ref, reason)──► CallControl ──ended(callId, reason)──► the transfer learns why
 *
 * After a restart both calls of a bridge come back on their own (SIP dialogs from the store), in either order. The
 * human's leg, when nobody waits for it yet but the call's matrix row says it is bridged (`bridgedPeerOf`), is parked
 * here (never given an agent session) until the caller's session claims it (`expect`); one nobody claims within
 * PARK_MS is closed.
 */
import type { CallLeg } from '../media/call-leg.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { currentMatrix } from '../schema/call-matrix.ts';
import { isBridgedReason } from './legs-matrix.ts';

/** How long a resumed human leg waits for its caller's session to come back. */
export const PARK_MS = 30_000;

/**
 * The call `callId` is the human of a bridge still in force: the caller's call (not ended) whose last matrix row is
 * a bridge (`warm:bridged`, `blind:bridged`, `refer:bridged`) names it. Null otherwise.
 */
export function bridgedPeerOf(store: Pick<Store<SwitchboardTables>, 'read'>, tenant: string, callId: string): string | null {
  const read = store.read(tenant);
  for (const row of read.call_matrices.find({ peer_call_id: callId })) {
    const now = currentMatrix(read.call_matrices.find({ call_id: row.call_id }));
    if (now && isBridgedReason(now.reason) && now.peer_call_id === callId && read.calls.get(row.call_id)?.state !== 'ended') return row.call_id;
  }
  return null;
}

export interface HumanLegWaiter {
  /** The human's media attached: the leg is the transfer's now. */
  leg(leg: CallLeg): void;
  /** The human's call ended (before or after its media attached), with the call's end reason. */
  ended(reason: string): void;
}

export class HumanLegs {
  private readonly waiting = new Map<string, HumanLegWaiter>();
  private readonly parked = new Map<string, { leg: CallLeg; timer: NodeJS.Timeout }>();

  /** Waits for the media and the end of call `callId` (a leg parked for it is given at once); the returned function stops waiting. */
  expect(callId: string, waiter: HumanLegWaiter): () => void {
    this.waiting.set(callId, waiter);
    const parked = this.parked.get(callId);
    if (parked) {
      this.parked.delete(callId);
      clearTimeout(parked.timer);
      waiter.leg(parked.leg);
    }
    return () => {
      if (this.waiting.get(callId) === waiter) this.waiting.delete(callId);
    };
  }

  /** True when a transfer waits for this call's media (it has taken the leg); false: attach it as any call. */
  claim(callId: string, leg: CallLeg): boolean {
    const w = this.waiting.get(callId);
    if (!w) return false;
    w.leg(leg);
    return true;
  }

  /** A resumed human leg of a bridge whose caller has not come back yet (see the header): kept, closed after PARK_MS. */
  park(callId: string, leg: CallLeg, parkMs = PARK_MS): void {
    const timer = setTimeout(() => {
      if (this.parked.get(callId)?.leg !== leg) return;
      this.parked.delete(callId);
      leg.close('transfer: the caller did not come back');
    }, parkMs);
    timer.unref();
    this.parked.set(callId, { leg, timer });
    leg.on('closed', () => {
      if (this.parked.get(callId)?.leg === leg) this.parked.delete(callId);
    });
  }

  /** Whether a transfer waits for this call (its media attaches to no session of its own). */
  has(callId: string): boolean {
    return this.waiting.has(callId);
  }

  /** The call ended (call control's `end`). */
  ended(callId: string, reason: string): void {
    this.waiting.get(callId)?.ended(reason);
  }
}
