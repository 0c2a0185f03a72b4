/**
 * The writes of call facts: every command that changes a call row goes
 * through a function here (or through inbound.ts / refusals.ts, which route
 * and refuse new calls). Ingress adapters never submit call facts; they call
 * `CallControl` (call-control.ts), which calls these. The call session
 * (call-session.ts) and start-up recovery (fault-recovery.ts) call them too.
 *
 * `call_ended` is written by `endCall` only: the caller passes the command id
 * it has always used (a provider's retry, a replay after kill -9, two routes
 * to the same end — BYE and a Timer H' — are then one command, answered from
 * the log), and a call already ended is not an error.
 */
import type { Logger } from 'pino';
import type { AmdRequest } from '../schema/amd-requests.ts';
import { call_amd_requested, call_matrix_set, call_supervisor_joined, call_supervisor_left, call_supervisor_mode_set } from '../schema/reducers.ts';
import type { SupervisorMode } from '../schema/supervision.ts';
import type { MixMatrix } from '../media/mix-matrix.ts';
import type { LegDescription } from '../media/call-leg.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Receipt, Store } from '../store/index.ts';
import { cancelPendingApprovals } from './tool-gate.ts';
import { call_answered, call_answered_by, call_dialed, call_ended, call_held, call_media_connected, call_media_lost, call_media_updated, call_received, call_resume_requested, call_security_recorded, call_transfer_started, call_turn_decided, call_unheld } from '../schema/reducers.ts';

export interface CallRef {
  tenant: string;
  callId: string;
}

/** Who writes a fact: the command's caller, and its idempotency id when the writer has a stable one. */
export interface FactSource {
  caller: string;
  id?: string;
}

type Outcome = Receipt['outcome'];

/** A call fact's outcome: `ok`, or the store's refusal (code + message). */
export type FactResult<R = undefined> = { ok: true; result: R } | { ok: false; code: string; message: string };

function who(ref: { tenant: string }, src: FactSource): { tenant: string; caller: string; id?: string } {
  return src.id === undefined ? { tenant: ref.tenant, caller: src.caller } : { tenant: ref.tenant, caller: src.caller, id: src.id };
}

function result<R>(outcome: Outcome): FactResult<R> {
  return outcome.ok ? { ok: true, result: outcome.result as R } : { ok: false, code: outcome.error.code, message: outcome.error.message };
}

/**
 * The one writer of `call_ended`. Idempotent by `src.id`; `call_already_ended` is success (the call is over
 * either way); any other refusal is logged. Resolves true when the call is ended now. Tool approvals still pending
 * for the call are cancelled (bridge/tool-gate.ts).
 */
export async function endCall(store: Store<SwitchboardTables>, log: Logger, ref: CallRef, reason: string, src: FactSource): Promise<boolean> {
  const r = await store.submit(call_ended, { call_id: ref.callId, reason }, who(ref, src));
  if (r.outcome.ok) await cancelPendingApprovals(store, log, ref.tenant, ref.callId).catch((err: unknown) => log.warn({ err }, 'pending tool approvals not cancelled'));
  if (r.outcome.ok || r.outcome.error.code === 'call_already_ended') return true;
  log.warn({ call: ref.callId, outcome: r.outcome }, 'call_ended refused');
  return false;
}

/** A media connection for the call is up on this node (`call_media_connected`): its leg row. */
export async function mediaConnected(store: Store<SwitchboardTables>, ref: CallRef, d: LegDescription, kind: 'caller' | 'human' = 'caller'): Promise<FactResult<{ leg_id: string; resumed: boolean; state: string }>> {
  const r = await store.submit(
    call_media_connected,
    { call_id: ref.callId, kind, provider: d.provider, media_session: d.session, codec: d.codec, sample_rate: d.inputRate, resume: d.resume },
    { tenant: ref.tenant, caller: `media:${d.provider}` },
  );
  return result(r.outcome);
}

/** The call's media dropped without the call ending (`call_media_lost`): the call goes `resuming`. */
export async function mediaLost(store: Store<SwitchboardTables>, ref: CallRef, legId: string, reason: string): Promise<FactResult> {
  const r = await store.submit(call_media_lost, { call_id: ref.callId, leg_id: legId, reason: reason.slice(0, 200) }, { tenant: ref.tenant, caller: 'media' });
  return result(r.outcome);
}

/** A blind transfer begins (`call_transfer_started`): the provider will be told to dial `target`. */
export async function transferStarted(store: Store<SwitchboardTables>, ref: CallRef, target: string, src: FactSource): Promise<FactResult> {
  const r = await store.submit(call_transfer_started, { call_id: ref.callId, target }, who(ref, src));
  return result(r.outcome);
}

/** How the call travels: its signalling transport and media encryption (`call_security_recorded`). */
export async function security(store: Store<SwitchboardTables>, ref: CallRef, s: { transport: 'udp' | 'tcp' | 'tls'; mediaEncryption: 'none' | 'srtp' }, src: FactSource): Promise<FactResult> {
  const r = await store.submit(call_security_recorded, { call_id: ref.callId, transport: s.transport, media_encryption: s.mediaEncryption }, who(ref, src));
  return result(r.outcome);
}

/** The far end answered an outbound call (`call_answered`). */
export async function answered(store: Store<SwitchboardTables>, ref: CallRef, src: FactSource): Promise<FactResult> {
  const r = await store.submit(call_answered, { call_id: ref.callId }, who(ref, src));
  return result(r.outcome);
}

/** The call's media was renegotiated (`call_media_updated`): `resume` is what a restart carries on with. */
export async function mediaUpdated(store: Store<SwitchboardTables>, ref: CallRef, media: { provider: string; codec: string | null; resume: Record<string, unknown> }, src: FactSource): Promise<FactResult> {
  const r = await store.submit(call_media_updated, { call_id: ref.callId, provider: media.provider, codec: media.codec, resume: media.resume }, who(ref, src));
  return result(r.outcome);
}

/** The far end put the call on hold, or took it off (`call_held` / `call_unheld`). */
export async function held(store: Store<SwitchboardTables>, ref: CallRef, isHeld: boolean, src: FactSource): Promise<FactResult> {
  const r = await store.submit(isHeld ? call_held : call_unheld, { call_id: ref.callId }, who(ref, src));
  return result(r.outcome);
}

/** A live call is being carried on on a new media connection (`call_resume_requested`). */
export async function resumeRequested(store: Store<SwitchboardTables>, ref: CallRef, reason: string, src: FactSource): Promise<FactResult> {
  const r = await store.submit(call_resume_requested, { call_id: ref.callId, reason }, who(ref, src));
  return result(r.outcome);
}

/** An outbound call is placed (`call_dialed`): its row, `ringing`. */
export async function dialed(
  store: Store<SwitchboardTables>,
  d: { tenant: string; caller: string; provider: string; providerCallId: string; from: string; to: string; agent: string | null; amd?: AmdRequest },
): Promise<FactResult<{ call_id: string }>> {
  const r = await store.submit(call_dialed, { provider: d.provider, provider_call_id: d.providerCallId, from: d.from, to: d.to, agent: d.agent }, { tenant: d.tenant, caller: d.caller });
  if (!r.outcome.ok || !d.amd) return result(r.outcome);
  // Before the dialer sends anything: the answered call's media finds the request (bridge/amd-stage.ts).
  const callId = (r.outcome.result as { call_id: string }).call_id;
  const amd = await store.submit(call_amd_requested, { call_id: callId, on_unknown: d.amd.onUnknown, timeout_ms: d.amd.timeoutMs }, { tenant: d.tenant, caller: d.caller });
  return amd.outcome.ok ? result(r.outcome) : result(amd.outcome);
}

/** A call known only from its routing (`call_received`, no answer): e.g. one cancelled before the answer. */
export async function received(
  store: Store<SwitchboardTables>,
  c: { tenant: string; caller: string; provider: string; providerCallId: string; from: string; to: string; numberId: string; agent: string },
): Promise<FactResult<{ call_id: string }>> {
  const r = await store.submit(
    call_received,
    { provider: c.provider, provider_call_id: c.providerCallId, from: c.from, to: c.to, number_id: c.numberId, agent: c.agent },
    { tenant: c.tenant, caller: c.caller },
  );
  return result(r.outcome);
}

/** Who answered an outbound call (schema/answered-by.ts): the provider's AMD or the media-side detector. */
export async function answeredBy(
  store: Store<SwitchboardTables>,
  ref: CallRef,
  d: { by: 'human' | 'machine' | 'unknown'; source: 'provider' | 'media'; evidence: Record<string, unknown> },
  src: FactSource,
): Promise<FactResult<{ by: string; existing: boolean }>> {
  const r = await store.submit(call_answered_by, { call_id: ref.callId, by: d.by, source: d.source, evidence: d.evidence }, who(ref, src));
  return result(r.outcome);
}

/** The caller spoke over the agent: interrupted it, or let it go on as a backchannel (schema/turn-taking.ts). */
export async function turnDecided(
  store: Store<SwitchboardTables>,
  ref: CallRef,
  d: { decision: 'interrupted' | 'backchannel'; voicedMs: number; atMs: number; droppedMs: number; heardMs: number | null; duckDb: number; by: 'voice' | 'stop_word' },
  src: FactSource,
): Promise<FactResult<{ id: string }>> {
  const r = await store.submit(
    call_turn_decided,
    { call_id: ref.callId, decision: d.decision, voiced_ms: Math.round(d.voicedMs), at_ms: Math.max(0, Math.round(d.atMs)), dropped_ms: Math.round(d.droppedMs), heard_ms: d.heardMs === null ? null : Math.round(d.heardMs), duck_db: Math.round(d.duckDb), by: d.by },
    who(ref, src),
  );
  return result(r.outcome);
}

/**
 * Who hears whom changed (`call_matrix_set`, schema/call-matrix.ts): one row per change, so the log says who could
 * hear whom and when, and a restart rebuilds the mixer from the call's last row. The same matrix and reason as the
 * last row is no new row.
 */
export async function matrixSet(store: Store<SwitchboardTables>, ref: CallRef, m: MixMatrix, d: { reason: string; peerCallId?: string | null }, src: FactSource): Promise<FactResult<{ matrix_id: string; n: number; existing: boolean }>> {
  const r = await store.submit(
    call_matrix_set,
    { call_id: ref.callId, legs: m.legs.map((l) => ({ id: l.id, role: l.role })), hears: Object.fromEntries(Object.entries(m.hears).map(([k, v]) => [k, [...v]])), reason: d.reason, peer_call_id: d.peerCallId ?? null },
    who(ref, src),
  );
  return result(r.outcome);
}

/** A supervisor joined the call (`call_supervisor_joined`, schema/supervision.ts): its leg row and the supervision, mode listen. */
export async function supervisorJoined(store: Store<SwitchboardTables>, ref: CallRef, d: Pick<LegDescription, 'provider' | 'session' | 'codec' | 'inputRate'>, src: FactSource): Promise<FactResult<{ supervision_id: string; leg_id: string; mode: string }>> {
  const r = await store.submit(call_supervisor_joined, { call_id: ref.callId, provider: d.provider, media_session: d.session, codec: d.codec, sample_rate: d.inputRate }, who(ref, src));
  return result(r.outcome);
}

/** The supervisor's mode changed (`call_supervisor_mode_set`): listen, whisper or take over. */
export async function supervisorModeSet(store: Store<SwitchboardTables>, ref: CallRef, supervisionId: string, mode: SupervisorMode, src: FactSource): Promise<FactResult<{ mode: string; changed: boolean }>> {
  const r = await store.submit(call_supervisor_mode_set, { call_id: ref.callId, supervision_id: supervisionId, mode }, who(ref, src));
  return result(r.outcome);
}

/** The supervisor left (`call_supervisor_left`): by the API, or because their media closed or the call ended. */
export async function supervisorLeft(store: Store<SwitchboardTables>, ref: CallRef, supervisionId: string, reason: string, src: FactSource): Promise<FactResult<{ mode: string }>> {
  const r = await store.submit(call_supervisor_left, { call_id: ref.callId, supervision_id: supervisionId, reason: reason.slice(0, 200) }, who(ref, src));
  return result(r.outcome);
}
