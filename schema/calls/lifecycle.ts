/**
 * The call state machine. One guarded `transition()`; every transition is made
 * by a reducer, and an illegal one is a rejected outcome `illegal_transition`.
 *
 *              ┌──────────────── resuming ◄──────────────┐ (media lost; any live state)
 *              ▼       (back to the state it left)      │
 *   ringing ─► answered ─► consenting ─► active ◄─► held
 *      │          │                        │  ▲
 *      │          └──────────► active      ▼  │
 *      │                               transferring
 *      └──────────── every state but ended ──────────► ended
 *
 * `resuming` remembers the state it left in `resume_state` and returns only there.
 */
import type { CallState } from '../tables.ts';
import type { Ctx } from '../reducer.ts';

export const TRANSITIONS: Readonly<Record<CallState, ReadonlyArray<CallState>>> = {
  ringing: ['answered', 'ended'],
  answered: ['consenting', 'active', 'resuming', 'ended'],
  consenting: ['active', 'resuming', 'ended'],
  active: ['held', 'transferring', 'resuming', 'ended'],
  held: ['active', 'resuming', 'ended'],
  transferring: ['active', 'resuming', 'ended'],
  resuming: ['answered', 'consenting', 'active', 'held', 'transferring', 'ended'],
  ended: [],
};

export type CallRow = NonNullable<ReturnType<Ctx['db']['calls']['get']>>;

export function canTransition(from: CallState, to: CallState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Loads the call (of the command's tenant) or fails with `call_not_found`. */
export function loadCall(ctx: Ctx, callId: string): CallRow {
  const call = ctx.db.calls.get(callId);
  if (!call) ctx.fail('call_not_found', `no call ${callId}`);
  return call;
}

/**
 * Moves a call to `to`, applying `patch` in the same write. Guards the
 * transition table and the resume rule; stamps the per-state timestamps.
 */
export function transition(ctx: Ctx, call: CallRow, to: CallState, patch: Partial<CallRow> = {}): CallRow {
  const from = call.state;
  if (!canTransition(from, to)) {
    ctx.fail('illegal_transition', `call ${call.id}: ${from} → ${to} is not allowed`);
  }
  if (from === 'resuming' && to !== 'ended' && to !== call.resume_state) {
    ctx.fail('illegal_transition', `call ${call.id}: resuming returns to ${String(call.resume_state)}, not ${to}`);
  }
  const stamps: Partial<CallRow> = {};
  if (to === 'answered' && call.answered_at === null) stamps.answered_at = ctx.now;
  if (to === 'active' && call.active_at === null) stamps.active_at = ctx.now;
  if (to === 'ended') stamps.ended_at = ctx.now;
  const resume: Partial<CallRow> = to === 'resuming' ? { resume_state: from } : from === 'resuming' ? { resume_state: null } : {};
  return ctx.db.calls.update(call.id, { ...patch, ...stamps, ...resume, state: to, updated_at: ctx.now });
}

/** What distinguishes a new call; the rest of its row starts the same for every call. */
export interface NewCall {
  provider: CallRow['provider'];
  provider_call_id: string;
  number_id: string | null;
  from_uri: string;
  to_uri: string;
  direction: CallRow['direction'];
  agent: string | null;
}

/** Writes a new call row in `ringing` (inbound received or outbound dialled) and returns its id. */
export function insertCall(ctx: Ctx, c: NewCall): string {
  const id = ctx.newId('call');
  ctx.db.calls.insert({
    id,
    tenant: ctx.tenant,
    ...c,
    state: 'ringing',
    resume_state: null,
    owner_node: ctx.node,
    agent_version: null,
    consent_id: null,
    media_epoch: 0,
    received_at: ctx.now,
    answered_at: null,
    active_at: null,
    ended_at: null,
    end_reason: null,
    transfer_target: null,
    transport: null,
    media_encryption: null,
    updated_at: ctx.now,
  });
  return id;
}
