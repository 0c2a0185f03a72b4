/**
 * Dialling a person into a live call without a warm hand-over (bridge/transfer-warm.ts has the warm one): the dial
 * and its wait, shared by the blind "dial and bridge" transfer and by a bridged human transferring the call onward
 * (SIP REFER accepted, ingress/sip/refer-accept.ts). The person's call is an outbound call of its own (its row:
 * `call_dialed` … `call_answered`), whose media joins this call's mixer (bridge/human-legs.ts).
 *
 *   dialHuman ── dial (the adapters' dial router) ──► waits for: the media (answered) ─► { ok, leg }
 *                                                   │ the call's end (busy, declined …) ─► failed with its reason
 *                                                   │ timeoutMs ─► the dial is cancelled (SIP: CANCEL) ─► no_answer
 *                                                   └ the caller hangs up ─► the dial is cancelled ─► hangup
 *
 *   blindBridge ─► `blind:hold` (the caller hears hold) ─► dialHuman ─► `blind:bridged` (caller ⇄ person, the agent
 *                  has left) | `blind:failed:<reason>` (caller ⇄ agent again)
 *
 *   referOnward ─► (the caller and the bridged human go on talking) ─► dialHuman ─► `refer:bridged` (caller ⇄ the new
 *                  person, who replaces the human in the mixer) | nothing changes (the outcome says why)
 *
 * Every change of who hears whom is a `call_matrices` row (bridge/call-facts.ts `matrixSet`).
 */
import type { TransferFailure } from '../agents/types.ts';
import type { CallLeg } from '../media/call-leg.ts';
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import * as facts from './call-facts.ts';
import { HUMAN_LEG, WARM } from './legs-matrix.ts';
import { DEFAULT_WARM_TIMEOUT_MS, endHumanCall, failureFor, recordHumanLeg, type WarmHost } from './transfer-warm.ts';

/** What a dial into a call came to: answered (its leg), or why not (`endReason`: the dialled call's own, when it ended). */
export type Dialled = { ok: true; callId: string; leg: CallLeg } | { ok: false; reason: TransferFailure; detail: string; endReason: string | null; callId: string | null };

export type DialHost = Pick<WarmHost, 'store' | 'ref' | 'log' | 'who' | 'humans' | 'dialer' | 'from' | 'closed'>;

/** Dials `target` and waits for its media, the end of its call, `timeoutMs`, or the caller hanging up (see the header). */
export async function dialHuman(h: DialHost, target: string, timeoutMs: number): Promise<Dialled> {
  let callId: string;
  try {
    callId = (await h.dialer.dial({ tenant: h.ref.tenant, caller: h.who().caller, from: h.from, to: target })).callId;
  } catch (err) {
    return { ok: false, reason: 'failed', detail: `dial refused: ${(err as Error).message}`, endReason: null, callId: null };
  }
  h.log.info({ target, call: callId }, 'transfer: dialling');
  return new Promise<Dialled>((resolve) => {
    let settled = false;
    let stop: () => void = () => undefined;
    const finish = (d: Dialled): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      h.closed.removeEventListener('abort', onGone);
      stop();
      resolve(d);
    };
    const giveUp = (reason: TransferFailure, detail: string): void => {
      if (settled) return;
      stop();
      void endHumanCall(h, { callId, leg: null }, `transfer:${reason}`).finally(() => finish({ ok: false, reason, detail, endReason: null, callId }));
    };
    const onGone = (): void => giveUp('hangup', 'the caller hung up');
    const timer = setTimeout(() => giveUp('no_answer', 'nobody answered in time'), timeoutMs);
    stop = h.humans.expect(callId, {
      leg: (leg) => finish({ ok: true, callId, leg }),
      ended: (reason) => finish({ ok: false, reason: failureFor(reason), detail: `the call ended: ${reason}`, endReason: reason, callId }),
    });
    if (settled) stop();
    if (h.closed.aborted) onGone();
    else h.closed.addEventListener('abort', onGone);
  });
}

/** Writes the matrix row, then the mixer follows it. */
async function step(h: DialHost & Pick<WarmHost, 'legs'>, m: MixMatrix, reason: string, peerCallId: string | null): Promise<void> {
  const r = await facts.matrixSet(h.store, h.ref, m, { reason, peerCallId }, { caller: h.who().caller });
  if (!r.ok) h.log.warn({ reason, outcome: r }, 'call matrix not recorded');
  h.legs.setMatrix(m);
}

/** Blind transfer by dialling and bridging (see the header): resolves bridged or failed, never throws for the person's part. */
export async function blindBridge(h: WarmHost, target: string, opts: { timeoutMs?: number } = {}): Promise<Dialled> {
  await step(h, WARM.hold(), 'blind:hold', null);
  const d = await dialHuman(h, target, opts.timeoutMs ?? DEFAULT_WARM_TIMEOUT_MS);
  if (!d.ok) {
    h.log.info({ target, reason: d.reason, detail: d.detail }, 'blind transfer failed');
    if (!h.closed.aborted) await step(h, twoParty(), `blind:failed:${d.reason}`, d.callId);
    else h.legs.setMatrix(twoParty());
    return d;
  }
  await recordHumanLeg(h, d.callId, d.leg);
  h.legs.addLeg(HUMAN_LEG, d.leg);
  await step(h, WARM.bridged(), 'blind:bridged', d.callId);
  h.log.info({ target, human: d.callId }, 'blind transfer: caller and the person bridged; the agent has left the audio');
  return d;
}

/** The bridged human hands the call to `target` (see the header): bridged, the new person replaces the human in the mixer. */
export async function referOnward(h: WarmHost, target: string, opts: { timeoutMs?: number } = {}): Promise<Dialled> {
  const d = await dialHuman(h, target, opts.timeoutMs ?? DEFAULT_WARM_TIMEOUT_MS);
  if (!d.ok) return d;
  await recordHumanLeg(h, d.callId, d.leg);
  h.legs.removeLeg(HUMAN_LEG);
  h.legs.addLeg(HUMAN_LEG, d.leg);
  await step(h, WARM.bridged(), 'refer:bridged', d.callId);
  h.log.info({ target, human: d.callId }, 'the bridged human transferred the call onward: the caller is bridged to the new person');
  return d;
}

/** The matrix a caller hears while its bridged human has left and the call onward is still ringing. */
export async function holdWhileReferred(h: DialHost & Pick<WarmHost, 'legs'>): Promise<void> {
  h.legs.removeLeg(HUMAN_LEG);
  await step(h, WARM.hold(), 'refer:hold', null);
}
