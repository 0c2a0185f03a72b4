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
 */
import type { CallLeg } from '../media/call-leg.ts';

export interface HumanLegWaiter {
  /** The human's media attached: the leg is the transfer's now. */
  leg(leg: CallLeg): void;
  /** The human's call ended (before or after its media attached), with the call's end reason. */
  ended(reason: string): void;
}

export class HumanLegs {
  private readonly waiting = new Map<string, HumanLegWaiter>();

  /** Waits for the media and the end of call `callId`; the returned function stops waiting. */
  expect(callId: string, waiter: HumanLegWaiter): () => void {
    this.waiting.set(callId, waiter);
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

  /** Whether a transfer waits for this call (its media attaches to no session of its own). */
  has(callId: string): boolean {
    return this.waiting.has(callId);
  }

  /** The call ended (call control's `end`). */
  ended(callId: string, reason: string): void {
    this.waiting.get(callId)?.ended(reason);
  }
}
