/**
 * Call control: what an ingress adapter does to a call, provider-neutral. An
 * adapter translates its provider's messages (a webhook, a status callback, a
 * SIP request, a browser's DELETE) into calls on this object; it never writes
 * a call fact itself. Every call fact is written in bridge/ (call-facts.ts,
 * inbound.ts, refusals.ts), and `call_ended` in one function (`endCall`).
 *
 *   adapter ──receive()──► inbound.ts: route by number, admission, refusals ──► accepted | rejected | busy | …
 *           ──attach()───► CallManager ──► CallSession (consent, recording, agent)
 *                          (the human a warm transfer dialled: its leg joins that call instead, human-legs.ts)
 *           ──end()──────► call_ended (its command id: the provider's retry is one row)
 *                           └► the call's session stops (its leg closes; recording learns of the end from the
 *                              store, recording/service.ts, which finalizes once the call row is `ended`)
 *           ──dial() / answered() / answeredBy() / hold() / mediaUpdated() / mediaLost() / resume() / receivedThenEnded()
 *           ──referred()─► a bridged human hands the call onward (SIP REFER accepted): bridge/transfer-dial.ts
 *
 * Ending a call thus goes adapter ─► call control ─► store, then ─► session, one route, whoever ends it.
 */
import type { Logger } from 'pino';
import type { CallLeg } from '../media/call-leg.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { CallAdmission } from './admission.ts';
import type { CallManager } from './call-manager.ts';
import type { CallSession } from './call-session.ts';
import * as facts from './call-facts.ts';
import { refuseRouted, refuseUnrouted, routeInbound, type InboundCall, type InboundDecision } from './inbound.ts';
import type { RefusalLog } from './refusals.ts';
import { bridgedPeerOf, type HumanLegs } from './human-legs.ts';
import type { Dialled } from './transfer-dial.ts';

export type { CallRef, FactResult, FactSource } from './call-facts.ts';
export type { InboundCall, InboundDecision } from './inbound.ts';

export interface CallControlDeps {
  store: Store<SwitchboardTables>;
  sessions: CallManager;
  /** New calls beyond this node's limits get the provider's busy answer (absent = no limits). */
  admission?: CallAdmission;
  /** Refused calls written at a bounded rate (absent: one `call_rejected` per refusal). */
  refusals?: RefusalLog;
  /** Calls whose media a warm transfer waits for (bridge/human-legs.ts): they join that call, not a session of their own. */
  humans?: HumanLegs;
  logger: Logger;
}

export class CallControl {
  private readonly log: Logger;

  constructor(private readonly deps: CallControlDeps) {
    this.log = deps.logger.child({ component: 'call-control' });
  }

  /**
   * A provider offers a call (a webhook, an INVITE, an offer) or asks again for one it has (a retry, a resume):
   * routed by the dialled number (bridge/inbound.ts). `caller` names the adapter's entry point (`twilio:voice`).
   */
  /** Seconds to ask a prober to wait while this node takes no new calls (draining: bridge/drain.ts), or null. */
  unavailableRetryAfter(): number | null {
    return this.deps.admission?.drainRefusal()?.retryAfterS ?? null;
  }

  receive(call: InboundCall, caller: string): Promise<InboundDecision> {
    return routeInbound(this.deps.store, call, caller, this.deps.admission, this.deps.refusals);
  }

  /** A call to a number nobody routes, refused before anything else is done for it (logged outside any tenant). */
  refuseUnknown(call: InboundCall, caller: string): Promise<InboundDecision> {
    return refuseUnrouted(this.deps.store, call, caller, this.deps.refusals);
  }

  /**
   * A call refused by the adapter's own policy before it is received (SIP: cleartext where TLS is required):
   * `call_rejected` with `reason` in the number's tenant, no call row. False when the number is not routed.
   */
  refuseByPolicy(call: InboundCall, caller: string, reason: string): Promise<boolean> {
    return refuseRouted(this.deps.store, call, caller, reason, this.deps.refusals);
  }

  /** How the call travels (SIP transport, media encryption), once it is answered. */
  recordSecurity(ref: facts.CallRef, s: { transport: 'udp' | 'tcp' | 'tls'; mediaEncryption: 'none' | 'srtp' }, src: facts.FactSource): Promise<facts.FactResult> {
    return facts.security(this.deps.store, ref, s, src);
  }

  /**
   * A call that ended before it was answered (SIP CANCEL) is still a call: received, then ended with `reason`.
   * Nothing when the number is not routed. Resolves the call id (null when none was made).
   */
  async receivedThenEnded(call: InboundCall, caller: string, end: { reason: string; source: (callId: string) => facts.FactSource }): Promise<string | null> {
    const number = this.deps.store.read(null).numbers.findOne({ number: call.to });
    if (!number) return null;
    const r = await facts.received(this.deps.store, { tenant: number.tenant, caller, provider: call.provider, providerCallId: call.providerCallId, from: call.from, to: call.to, numberId: number.id, agent: number.agent });
    if (!r.ok) return null;
    const callId = r.result.call_id;
    await this.end({ tenant: number.tenant, callId }, end.reason, end.source(callId));
    return callId;
  }

  /**
   * The call's media is connected on this node: a session (consent, recording, agent) takes the leg — or, for the
   * human a warm transfer dialled, that transfer does (bridge/human-legs.ts), and this resolves null.
   */
  async attach(ref: facts.CallRef, leg: CallLeg): Promise<CallSession | null> {
    if (this.deps.humans?.claim(ref.callId, leg)) return null;
    // After a restart: the human of a bridge in force waits for its caller, never gets a session of its own.
    if (this.deps.humans && bridgedPeerOf(this.deps.store, ref.tenant, ref.callId)) {
      this.log.info({ call: ref.callId }, "a bridged human's media is back: kept for its caller's session");
      this.deps.humans.park(ref.callId, leg);
      return null;
    }
    return this.deps.sessions.attach(ref, leg);
  }

  /** True while the call's media flows on this node (see CallManager.mediaLive). */
  mediaLive(callId: string): boolean {
    return this.deps.sessions.mediaLive(callId);
  }

  /** True while the call has a session on this node (its media may be quiet). */
  hasSession(callId: string): boolean {
    return this.deps.sessions.has(callId);
  }

  /** Before a resume: a session still attached whose media went quiet is detached (see CallManager.detachLost). */
  detachLost(callId: string, reason: string): void {
    this.deps.sessions.detachLost(callId, reason);
  }

  /**
   * The call is over (the provider's final status, BYE, a hang-up, a dial that failed, an abandoned call):
   * `call_ended` with `reason` under the adapter's command id (`src.id`), then the call's session, if one runs
   * here, stops and closes its leg. Resolves true once the call row is ended (also when it already was).
   */
  async end(ref: facts.CallRef, reason: string, src: facts.FactSource): Promise<boolean> {
    try {
      return await facts.endCall(this.deps.store, this.log, ref, reason, src);
    } finally {
      // Even when the write failed (the store is down): the call is over for the provider, so its media stops.
      this.deps.sessions.providerEnded(ref.callId, reason);
      this.deps.humans?.ended(ref.callId, reason);
    }
  }

  /**
   * The far end of call `ref` asks to hand the call to `target` (SIP REFER, accepted on its route): possible only when
   * `ref` is a human bridged into another call by a transfer (bridge/human-legs.ts) whose session runs here. Returns
   * why not (`refused`), or the outcome once `target` answered (and replaced the human in that call's mixer) or failed
   * (bridge/transfer-dial.ts `referOnward`). The adapter then ends `ref` itself.
   */
  referred(ref: facts.CallRef, target: string): { refused: string } | { done: Promise<Dialled> } {
    const caller = this.deps.humans ? bridgedPeerOf(this.deps.store, ref.tenant, ref.callId) : null;
    if (!caller) return { refused: 'this call is not a person bridged into another call: the agent cannot be transferred' };
    const done = this.deps.sessions.get(caller)?.referOnward(ref.callId, target);
    if (!done) return { refused: 'the call this person is bridged to is not running here now' };
    return { done };
  }

  /** An outbound call is placed: its row (`ringing`), or the store's refusal (`forbidden`, `number_not_found`…). */
  dial(d: Parameters<typeof facts.dialed>[1]): Promise<facts.FactResult<{ call_id: string }>> {
    return facts.dialed(this.deps.store, d);
  }

  /** The far end answered an outbound call. */
  answered(ref: facts.CallRef, src: facts.FactSource): Promise<facts.FactResult> {
    return facts.answered(this.deps.store, ref, src);
  }

  /** Who answered an outbound call: a person, a machine, or unknown (provider AMD or the media-side detector). */
  answeredBy(ref: facts.CallRef, d: { by: 'human' | 'machine' | 'unknown'; source: 'provider' | 'media'; evidence: Record<string, unknown> }, src: facts.FactSource): Promise<facts.FactResult<{ by: string; existing: boolean }>> {
    return facts.answeredBy(this.deps.store, ref, d, src);
  }

  /** The call's media was renegotiated; `resume` is the state a restart carries on with. */
  mediaUpdated(ref: facts.CallRef, media: { provider: string; codec: string | null; resume: Record<string, unknown> }, src: facts.FactSource): Promise<facts.FactResult> {
    return facts.mediaUpdated(this.deps.store, ref, media, src);
  }

  /** The far end put the call on hold (`held`) or took it off. */
  hold(ref: facts.CallRef, held: boolean, src: facts.FactSource): Promise<facts.FactResult> {
    return facts.held(this.deps.store, ref, held, src);
  }

  /**
   * One leg's media is gone for good (`call_media_lost`), said by another node than the one that carried it: a
   * SIP takeover (ingress/sip/takeover.ts) for the leg of a node that died. The call waits in `resuming`.
   */
  mediaLost(ref: facts.CallRef, legId: string, reason: string): Promise<facts.FactResult> {
    return facts.mediaLost(this.deps.store, ref, legId, reason);
  }

  /** A live call carries on on a new media connection (after a restart, a dropped socket). */
  resume(ref: facts.CallRef, reason: string, src: facts.FactSource): Promise<facts.FactResult> {
    return facts.resumeRequested(this.deps.store, ref, reason, src);
  }
}
