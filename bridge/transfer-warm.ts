/**
 * Warm transfer: the agent hands its caller to a human, who hears a summary first and accepts or declines. The
 * caller's call stays one call; the human is an outbound call of its own (any dialer: SIP through the UAC, a
 * telephone provider's REST API), whose media joins this call's mixer (bridge/legs.ts) instead of a session of its
 * own (bridge/human-legs.ts). Every change of who hears whom is a `call_matrices` row (bridge/call-facts.ts
 * `matrixSet`), so the log tells each step:
 *
 *   warm:hold ── the caller hears hold audio; the human is dialled (its call row: call_dialed … call_answered)
 *     │  ├─ the human's call ends first (busy, no answer, refused) ─► warm:failed:busy | no_answer | failed
 *     │  └─ timeoutMs runs out while it rings ─► the dial is cancelled (SIP: CANCEL ─► 487), its call ended
 *     │     `transfer:no_answer` ─► warm:failed:no_answer
 *     ▼ the human's media attaches
 *   warm:brief ── the human hears the agent's summary (TTS on the human's side only), the caller still hears hold
 *     │  ├─ DTMF 2 ─► warm:failed:declined         ├─ the human hangs up ─► warm:failed:hangup
 *     │  └─ timeoutMs runs out ─► warm:failed:timeout (the human's call ended, BYE)
 *     ▼ DTMF 1
 *   warm:bridged ── caller ⇄ human; the agent has left the audio
 *
 *   warm:failed:<reason> ── back to caller ⇄ agent (no mixer): the agent's `onTransferFailed(ctx, { reason })` runs.
 *
 * The human's leg is recorded only as the caller's consent allows: the recorder's "everyone else" channel is what
 * the caller heard (bridge/legs.ts), and the recorder runs only under a consent that allows it.
 */
import type { Logger } from 'pino';
import type { TransferFailure } from '../agents/types.ts';
import type { CallLeg } from '../media/call-leg.ts';
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import * as facts from './call-facts.ts';
import type { HumanLegs } from './human-legs.ts';
import type { CallLegs } from './legs.ts';
import { HUMAN_LEG, WARM } from './legs-matrix.ts';

/** Places the call to the human (the gateway gives the adapters' dial router); throws when the dial is refused. */
export interface TransferDialer {
  dial(req: { tenant: string; caller: string; from: string; to: string }): Promise<{ callId: string }>;
  /** Gives up a dial still ringing (SIP: CANCEL, RFC 3261 §9; a 200 that crosses it is answered with BYE); absent: the call row alone ends. */
  cancel?(callId: string, reason: string): void;
}

export const DEFAULT_WARM_TIMEOUT_MS = 30_000;

export interface WarmHost {
  store: Store<SwitchboardTables>;
  ref: facts.CallRef;
  log: Logger;
  who(): { tenant: string; caller: string };
  legs: CallLegs;
  humans: HumanLegs;
  dialer: TransferDialer;
  /** The caller ID for the human: the tenant's number the call came in on (or was placed from). */
  from: string;
  synthesize(text: string): Promise<Int16Array>;
  /** Aborted when the caller's media closes. */
  closed: AbortSignal;
}

export type WarmOutcome = { ok: true; humanCallId: string; leg: CallLeg } | { ok: false; reason: TransferFailure; detail: string };

type Ev = { kind: 'leg'; leg: CallLeg } | { kind: 'ended'; reason: string } | { kind: 'dtmf'; digit: string } | { kind: 'human_closed' } | { kind: 'timeout' } | { kind: 'caller_gone' };

/** Events in arrival order; `next()` waits for one. */
class Events {
  private readonly items: Ev[] = [];
  private wake: (() => void) | null = null;

  push(e: Ev): void {
    this.items.push(e);
    this.wake?.();
    this.wake = null;
  }

  async next(): Promise<Ev> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.wake = r));
    return this.items.shift()!;
  }
}

/** What a human's call that ended before it was answered tells the agent. */
export function failureFor(endReason: string): TransferFailure {
  const r = endReason.toLowerCase();
  if (r.includes('busy')) return 'busy';
  if (r.includes('no-answer') || r.includes('noanswer') || r.includes('unanswered') || r.includes('timeout') || r.includes('cancel')) return 'no_answer';
  if (r.includes('declin') || r.includes('reject')) return 'declined';
  return 'failed';
}

/** Runs one warm transfer to `target` (see the header); resolves bridged or failed, never throws for the human's part. */
export async function warmTransfer(h: WarmHost, target: string, opts: { summary?: string; timeoutMs?: number }): Promise<WarmOutcome> {
  const events = new Events();
  const timer = setTimeout(() => events.push({ kind: 'timeout' }), opts.timeoutMs ?? DEFAULT_WARM_TIMEOUT_MS);
  const onGone = (): void => events.push({ kind: 'caller_gone' });
  h.closed.addEventListener('abort', onGone);
  let human: { callId: string; leg: CallLeg | null } | null = null;
  let stopWaiting: () => void = () => undefined;
  const done = (): void => {
    clearTimeout(timer);
    h.closed.removeEventListener('abort', onGone);
    stopWaiting();
  };
  const step = async (m: MixMatrix, reason: string): Promise<void> => {
    const r = await facts.matrixSet(h.store, h.ref, m, { reason, peerCallId: human?.callId ?? null }, { caller: h.who().caller });
    if (!r.ok) h.log.warn({ reason, outcome: r }, 'call matrix not recorded');
    h.legs.setMatrix(m);
  };
  const fail = async (reason: TransferFailure, detail: string, endHuman: boolean): Promise<WarmOutcome> => {
    done();
    h.log.info({ target, reason, detail }, 'warm transfer failed: the caller is back with the agent');
    if (human && endHuman) await endHumanCall(h, human, `transfer:${reason}`);
    if (!h.closed.aborted) await step(twoParty(), `warm:failed:${reason}`);
    else h.legs.setMatrix(twoParty());
    h.legs.removeLeg(HUMAN_LEG);
    return { ok: false, reason, detail };
  };

  await step(WARM.hold(), 'warm:hold');
  try {
    const dialed = await h.dialer.dial({ tenant: h.ref.tenant, caller: h.who().caller, from: h.from, to: target });
    human = { callId: dialed.callId, leg: null };
  } catch (err) {
    return fail('failed', `dial refused: ${(err as Error).message}`, false);
  }
  stopWaiting = h.humans.expect(human.callId, { leg: (leg) => events.push({ kind: 'leg', leg }), ended: (reason) => events.push({ kind: 'ended', reason }) });
  h.log.info({ target, human: human.callId }, 'warm transfer: dialling the human; the caller hears hold');

  // Ringing: the human's media, or the end of its call, or the time runs out.
  for (;;) {
    const ev = await events.next();
    if (ev.kind === 'leg') {
      human.leg = ev.leg;
      break;
    }
    if (ev.kind === 'ended') return fail(failureFor(ev.reason), `the human's call ended: ${ev.reason}`, false);
    if (ev.kind === 'timeout') return fail('no_answer', 'nobody answered in time', true);
    if (ev.kind === 'caller_gone') return fail('hangup', 'the caller hung up', true);
  }

  // Answered: the human hears the summary and decides. Its leg row (kind human) is what a restart resumes it from.
  const leg = human.leg;
  await recordHumanLeg(h, human.callId, leg);
  leg.on('dtmf', (d) => events.push({ kind: 'dtmf', digit: d.digit }));
  leg.on('closed', () => events.push({ kind: 'human_closed' }));
  h.legs.addLeg(HUMAN_LEG, leg);
  await step(WARM.brief(), 'warm:brief');
  if (opts.summary) {
    void h
      .synthesize(opts.summary)
      .then((s) => h.legs.speak(s))
      .catch((err: unknown) => h.log.warn({ err }, 'transfer summary not played'));
  }
  for (;;) {
    const ev = await events.next();
    if (ev.kind === 'dtmf' && ev.digit === '1') break;
    if (ev.kind === 'dtmf' && ev.digit === '2') return fail('declined', 'the human pressed 2', true);
    if (ev.kind === 'human_closed' || ev.kind === 'ended') return fail('hangup', 'the human hung up', true);
    if (ev.kind === 'timeout') return fail('timeout', 'the human did not accept in time', true);
    if (ev.kind === 'caller_gone') return fail('hangup', 'the caller hung up', true);
  }
  await step(WARM.bridged(), 'warm:bridged');
  done();
  h.log.info({ target, human: human.callId }, 'warm transfer: caller and human bridged; the agent has left the audio');
  return { ok: true, humanCallId: human.callId, leg };
}

/** The human's media is connected here (`call_media_connected`, kind human): a restart resumes its leg from the row. */
export async function recordHumanLeg(h: Pick<WarmHost, 'store' | 'ref' | 'log'>, callId: string, leg: CallLeg): Promise<void> {
  const r = await facts.mediaConnected(h.store, { tenant: h.ref.tenant, callId }, leg.description, 'human').catch((err: unknown) => {
    h.log.warn({ err }, "the human's leg not recorded");
    return null;
  });
  if (r && !r.ok) h.log.warn({ outcome: r }, "the human's leg not recorded");
}

/** Ends the human's call: its row (`call_ended`), then its media (the adapter hangs up: BYE), or its dial still ringing (CANCEL). */
export async function endHumanCall(h: Pick<WarmHost, 'store' | 'ref' | 'log'> & { dialer?: TransferDialer }, human: { callId: string; leg: CallLeg | null }, reason: string): Promise<void> {
  if (!human.leg) h.dialer?.cancel?.(human.callId, reason);
  await facts.endCall(h.store, h.log, { tenant: h.ref.tenant, callId: human.callId }, reason, { caller: 'transfer', id: `transfer:end:${human.callId}` }).catch((err: unknown) => h.log.warn({ err }, "the human's call not ended"));
  human.leg?.close(reason);
}
