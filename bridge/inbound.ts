/**
 * Routing an inbound call, for every ingress: the dialled number picks the
 * tenant and agent (`numbers`); a provider retry or a resume of a known call
 * finds the same call row. The provider's webhook for an outbound call we
 * placed (`call_dialed`) is routed by the number it was placed from. Unknown numbers are logged as `call_rejected`.
 *
 * A number registered for one provider (`numbers.provider`) answers only calls
 * arriving through that provider: a Twilio number must not be callable by any
 * browser through `/webrtc/offer` or by a SIP trunk (a free way into a paid
 * agent, and around the channel the tenant chose). The caller gets the same
 * refusal as for an unknown number (no enumeration); the tenant's log records
 * the attempt. A number without a provider answers every ingress.
 *
 * With a `RefusalLog` (refusals.ts), refusals are written at a bounded rate: the first of a (tenant, source,
 * reason) in a window is its `call_rejected` row, the rest of the window are counted in one aggregated event.
 */
import type { CallAdmission, Refusal } from './admission.ts';
import type { RefusalLog } from './refusals.ts';
import type { LegProvider } from '../media/call-leg.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { call_answered, call_received, call_rejected, call_resume_requested } from '../schema/reducers.ts';

/** Tenant under which calls to unknown numbers are logged. */
export const UNROUTED_TENANT = '_unrouted';

export interface InboundCall {
  provider: LegProvider;
  providerCallId: string;
  from: string;
  to: string;
  /** Where the call came from (SIP peer address, HTTP client address); default: `from`. Keys refusal counting. */
  source?: string;
}

export type InboundDecision =
  | { kind: 'rejected'; reason: string }
  /** The node is at capacity or overloaded (admission.ts): the provider's busy / 503 answer, try again later. */
  | { kind: 'busy'; reason: Refusal['reason']; retryAfterS: number }
  | { kind: 'ended'; tenant: string; callId: string }
  /** The call is being handed to a human: the provider should dial `target`. */
  | { kind: 'transfer'; tenant: string; callId: string; target: string }
  | { kind: 'accepted'; tenant: string; callId: string; agent: string; resumed: boolean };

export async function routeInbound(
  store: Store<SwitchboardTables>,
  call: InboundCall,
  caller: string,
  admission?: CallAdmission,
  refusals?: RefusalLog,
): Promise<InboundDecision> {
  // The store cannot commit (disk full): busy, without writing (a write would only wait for the disk).
  const down = admission?.storeRefusal();
  if (down) return { kind: 'busy', reason: down.reason, retryAfterS: down.retryAfterS };
  const number = ourNumber(store, call);
  if (!number) return refuseUnrouted(store, call, caller, refusals);
  const who = { tenant: number.tenant, caller };
  if (number.provider !== null && number.provider !== call.provider) {
    await refuse(store, refusals, call, { ...who, id: `${call.provider}:reject:${call.providerCallId}` }, `provider_mismatch: number is ${number.provider}`);
    return { kind: 'rejected', reason: 'provider_mismatch' };
  }
  // A new call (not a retry or a resume of one we have) must fit on this node.
  const key = `${call.provider}:${call.providerCallId}`;
  const known = store.read(number.tenant).calls.findOne({ provider: call.provider, provider_call_id: call.providerCallId }) !== undefined;
  const draining = known ? null : (admission?.drainRefusal() ?? null);
  if (draining) {
    await refuse(store, refusals, call, { ...who, id: `${call.provider}:busy:${call.providerCallId}` }, `${draining.reason}: ${draining.detail}`);
    return { kind: 'busy', reason: draining.reason, retryAfterS: draining.retryAfterS };
  }
  const gated = admission?.enabled === true && !known;
  if (gated) {
    const refusal = admission.reserve(key);
    if (refusal) {
      await refuse(store, refusals, call, { ...who, id: `${call.provider}:busy:${call.providerCallId}` }, `${refusal.reason}: ${refusal.detail}`);
      return { kind: 'busy', reason: refusal.reason, retryAfterS: refusal.retryAfterS };
    }
  }
  try {
    const decision = await receive(store, call, number, who);
    if (gated) {
      if (decision.kind === 'accepted') admission.bind(key, decision.callId);
      else admission.release(key);
    }
    return decision;
  } catch (err) {
    if (gated) admission.release(key);
    throw err;
  }
}

/**
 * The tenant's number a provider's request is about: the dialled number (`to`) for an inbound call; for an
 * outbound call we placed (known by the provider's id, `call_dialed`), the number it was placed from — the
 * provider's webhook for it names the callee as `to`.
 */
function ourNumber(store: Store<SwitchboardTables>, call: InboundCall): NumberRow & { provider: string | null } | undefined {
  const dialed = store.read(null).calls.findOne({ provider: call.provider, provider_call_id: call.providerCallId });
  if (dialed?.direction === 'outbound' && dialed.number_id !== null) return store.read(dialed.tenant).numbers.get(dialed.number_id);
  return store.read(null).numbers.findOne({ number: call.to });
}

/** A call to a number nobody routes: logged outside any tenant (`UNROUTED_TENANT`), refused. */
export async function refuseUnrouted(store: Store<SwitchboardTables>, call: InboundCall, caller: string, refusals?: RefusalLog): Promise<InboundDecision> {
  await refuse(store, refusals, call, { tenant: UNROUTED_TENANT, caller, id: `${call.provider}:reject:${call.providerCallId}` }, 'unknown_number');
  return { kind: 'rejected', reason: 'unknown_number' };
}

/**
 * A call to a routed number refused by the ingress's own policy (SIP: cleartext where TLS is required): recorded
 * in the number's tenant as `reason` (`class: detail`), no call row. Resolves false when the number is not routed.
 */
export async function refuseRouted(store: Store<SwitchboardTables>, call: InboundCall, caller: string, reason: string, refusals?: RefusalLog): Promise<boolean> {
  const number = store.read(null).numbers.findOne({ number: call.to });
  if (!number) return false;
  await refuse(store, refusals, call, { tenant: number.tenant, caller, id: `${call.provider}:reject:${call.providerCallId}` }, reason);
  return true;
}

/** One refusal: through the refusal log when there is one (bounded rate), else its own `call_rejected` row. */
async function refuse(store: Store<SwitchboardTables>, refusals: RefusalLog | undefined, call: InboundCall, who: { tenant: string; caller: string; id: string }, reason: string): Promise<void> {
  if (refusals) {
    return refusals.refuse({ ...who, provider: call.provider, providerCallId: call.providerCallId, from: call.from, to: call.to, reason, source: call.source ?? call.from });
  }
  await store.submit(call_rejected, { provider: call.provider, provider_call_id: call.providerCallId, from: call.from, to: call.to, reason }, who);
}

type NumberRow = { id: string; tenant: string; agent: string };

async function receive(store: Store<SwitchboardTables>, call: InboundCall, number: NumberRow, who: { tenant: string; caller: string }): Promise<InboundDecision> {
  const received = await store.submit(
    call_received,
    { provider: call.provider, provider_call_id: call.providerCallId, from: call.from, to: call.to, number_id: number.id, agent: number.agent },
    who,
  );
  if (!received.outcome.ok) throw new Error(`call_received refused: ${received.outcome.error.code}: ${received.outcome.error.message}`);
  const { call_id: callId, state, existing } = received.outcome.result;
  if (state === 'ended') return { kind: 'ended', tenant: number.tenant, callId };
  if (!existing || state === 'ringing') {
    const answered = await store.submit(call_answered, { call_id: callId }, who);
    // Two copies of the first webhook at once (a provider retry racing the original): both saw `ringing`, one
    // answered first, and the other gets the same answer — it is the same call, not an error.
    const raced = !answered.outcome.ok && store.read(number.tenant).calls.get(callId)?.state === 'answered';
    if (!answered.outcome.ok && state === 'ringing' && !raced) throw new Error(`call_answered refused: ${answered.outcome.error.message}`);
    return { kind: 'accepted', tenant: number.tenant, callId, agent: number.agent, resumed: false };
  }
  const row = store.read(number.tenant).calls.get(callId);
  if (state === 'transferring' && row?.transfer_target) return { kind: 'transfer', tenant: number.tenant, callId, target: row.transfer_target };
  if (state === 'answered' && row?.media_epoch === 0) {
    // A retry of the first webhook: its media never connected, nothing to resume.
    return { kind: 'accepted', tenant: number.tenant, callId, agent: number.agent, resumed: false };
  }
  // A known, live call asks again: the provider is resuming it (its media dropped, or this node restarted).
  await store.submit(call_resume_requested, { call_id: callId, reason: `${call.provider} webhook again` }, who);
  return { kind: 'accepted', tenant: number.tenant, callId, agent: number.agent, resumed: true };
}
