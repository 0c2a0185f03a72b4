/**
 * Agent facts: each action an agent takes (say, tool, transfer, hangup, note)
 * is a row keyed by a request id that is stable across retries; per-call agent
 * state is one row updated after each turn (what a resumed call continues from).
 */
import { z } from 'zod';
import type { Json } from '../store/index.ts';
import { loadCall } from './calls/lifecycle.ts';
import { requireConsent } from './consent.ts';
import { defineReducer } from './reducer.ts';

const requestId = z.string().min(1).max(200);
const jsonValue = z.unknown().nullable().default(null);

export const agent_action_requested = defineReducer(
  'agent_action_requested',
  z.object({
    call_id: z.string().min(1).max(200),
    kind: z.enum(['say', 'tool', 'transfer', 'hangup', 'note']),
    request_id: requestId,
    args: jsonValue,
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const existing = ctx.db.agent_actions.findOne({ call_id: call.id, request_id: a.request_id });
    if (existing) return { action_id: existing.id, status: existing.status, result: (existing.result ?? null) as Json, existing: true };
    const id = ctx.newId('act');
    ctx.db.agent_actions.insert({
      id,
      tenant: ctx.tenant,
      call_id: call.id,
      kind: a.kind,
      request_id: a.request_id,
      status: 'requested',
      args: a.args,
      result: null,
      created_at: ctx.now,
      completed_at: null,
    });
    return { action_id: id, status: 'requested', result: null, existing: false };
  },
);

export const agent_action_completed = defineReducer(
  'agent_action_completed',
  z.object({ action_id: z.string().min(1).max(200), ok: z.boolean(), result: jsonValue }),
  (ctx, a) => {
    const action = ctx.db.agent_actions.get(a.action_id);
    if (!action) return ctx.fail('action_not_found', `no agent action ${a.action_id}`);
    if (action.status !== 'requested') ctx.fail('action_completed', `agent action ${action.id} is already ${action.status}`);
    ctx.db.agent_actions.update(action.id, { status: a.ok ? 'succeeded' : 'failed', result: a.result, completed_at: ctx.now });
  },
);

export const agent_state_saved = defineReducer(
  'agent_state_saved',
  z.object({
    call_id: z.string().min(1).max(200),
    agent: z.string().min(1).max(100),
    version: z.string().min(1).max(100),
    turn: z.number().int().nonnegative(),
    state: z.record(z.string(), z.unknown()),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const existing = ctx.db.agent_state.get(call.id);
    if (existing && a.turn < existing.turn) ctx.fail('stale_turn', `agent state for ${call.id} is at turn ${existing.turn}, not going back to ${a.turn}`);
    const row = { agent: a.agent, version: a.version, turn: a.turn, state: a.state, updated_at: ctx.now };
    if (existing) ctx.db.agent_state.update(call.id, row);
    else ctx.db.agent_state.insert({ call_id: call.id, tenant: ctx.tenant, ...row });
  },
);

/**
 * A turn begins: its number is reserved before the agent acts, so a turn cut
 * short by a crash is never numbered again (its actions keep their own ids).
 */
export const agent_turn_started = defineReducer(
  'agent_turn_started',
  z.object({
    call_id: z.string().min(1).max(200),
    agent: z.string().min(1).max(100),
    version: z.string().min(1).max(100),
    turn: z.number().int().positive(),
    kind: z.string().min(1).max(32),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    requireConsent(ctx, call, 'agent');
    const existing = ctx.db.agent_state.get(call.id);
    if (existing && a.turn <= existing.turn) ctx.fail('stale_turn', `call ${call.id} is at turn ${existing.turn}; turn ${a.turn} was taken`);
    const row = { agent: a.agent, version: a.version, turn: a.turn, updated_at: ctx.now };
    if (existing) ctx.db.agent_state.update(call.id, row);
    else ctx.db.agent_state.insert({ call_id: call.id, tenant: ctx.tenant, state: {}, ...row });
    // The call is pinned to the version that runs its turns (a migration moves the pin).
    if (call.agent_version !== a.version) ctx.db.calls.update(call.id, { agent_version: a.version, updated_at: ctx.now });
    return { turn: a.turn, kind: a.kind };
  },
);

export const agentReducers = [agent_turn_started, agent_action_requested, agent_action_completed, agent_state_saved];
