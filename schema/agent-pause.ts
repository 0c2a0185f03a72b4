/**
 * Pausing an agent, and where its calls go meanwhile.
 *
 *   agent_paused {agent, reason, keep_live} ─► an `agent_pauses` row (who, when, why), open until
 *   agent_resumed {agent}                   ─► the row is closed (who, when): one row per pause, kept for audit
 *   number_fallback_set {number_id|null, kind, target, message} ─► `number_fallbacks`: per number, or the
 *                                              tenant's default (number_id null)
 *
 * While an agent is paused, a call routed to it gets the fallback (`fallbackFor`): the number's, else the
 * tenant's default, else a polite message and a hang-up. A call that was live when the pause began keeps its
 * agent if the pause was `keep_live`. The decision is a pure function of the tables and the call row, so every
 * node (and a replay) decides alike; bridge/fallback.ts carries it out on the call.
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer, type Ctx } from './reducer.ts';
import type { RowOf } from '../store/index.ts';
import type { agent_pauses, number_fallbacks } from './tables.ts';

export type PauseRow = RowOf<typeof agent_pauses>;
export type FallbackRow = RowOf<typeof number_fallbacks>;

const agentName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase name: letters, digits, - and _');

/** What a caller hears when neither the number nor the tenant names a fallback. */
export const DEFAULT_FALLBACK_MESSAGE = 'Sorry, this line is not taking calls right now. Please call again later. Goodbye.';

/** The open pause of `agent` in the tenant the reader sees, if any. */
export function openPause(db: { agent_pauses: { find(f: { agent: string }): PauseRow[] } }, agent: string): PauseRow | undefined {
  return db.agent_pauses.find({ agent }).find((p) => p.resumed_at === null);
}

/** An agent this tenant knows: one with a deployed version, or one a number routes to. */
function known(ctx: Ctx, agent: string): boolean {
  return ctx.db.agent_versions.findOne({ name: agent }) !== undefined || ctx.db.numbers.findOne({ agent }) !== undefined;
}

export const agent_paused = defineReducer(
  'agent_paused',
  z.object({ agent: agentName, reason: z.string().max(500).default(''), keep_live: z.boolean().default(false) }),
  (ctx, a) => {
    requireCaller(ctx, 'agents:deploy');
    if (!known(ctx, a.agent)) return ctx.fail('agent_not_found', `no agent ${a.agent} in tenant ${ctx.tenant}`);
    if (openPause(ctx.db, a.agent)) return ctx.fail('already_paused', `${a.agent} is already paused`);
    const id = ctx.newId('pse');
    ctx.db.agent_pauses.insert({
      id,
      tenant: ctx.tenant,
      agent: a.agent,
      reason: a.reason,
      keep_live: a.keep_live,
      paused_by: ctx.caller,
      paused_at: ctx.now,
      resumed_by: null,
      resumed_at: null,
    });
    return { pause_id: id, agent: a.agent, keep_live: a.keep_live };
  },
);

export const agent_resumed = defineReducer('agent_resumed', z.object({ agent: agentName }), (ctx, a) => {
  requireCaller(ctx, 'agents:deploy');
  if (!known(ctx, a.agent)) return ctx.fail('agent_not_found', `no agent ${a.agent} in tenant ${ctx.tenant}`);
  const pause = openPause(ctx.db, a.agent);
  if (!pause) return ctx.fail('not_paused', `${a.agent} is not paused`);
  ctx.db.agent_pauses.update(pause.id, { resumed_by: ctx.caller, resumed_at: ctx.now });
  return { pause_id: pause.id, agent: a.agent, paused_for_ms: ctx.now - pause.paused_at };
});

export const FALLBACK_KINDS = ['agent', 'transfer', 'message'] as const;

export const number_fallback_set = defineReducer(
  'number_fallback_set',
  z.object({
    /** null: the tenant's default. */
    number_id: z.string().min(1).max(200).nullable(),
    kind: z.enum(FALLBACK_KINDS),
    /** The other agent (kind agent) or where to transfer (kind transfer: SIP URI or E.164). */
    target: z.string().min(1).max(512).nullable().default(null),
    /** What the caller hears before the hang-up (kind message; kind transfer on a leg that cannot redirect); null: the default message. */
    message: z.string().min(1).max(1000).nullable().default(null),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'numbers:write');
    if (a.number_id !== null && !ctx.db.numbers.get(a.number_id)) return ctx.fail('number_not_found', `no number ${a.number_id}`);
    if (a.kind !== 'message' && a.target === null) return ctx.fail('invalid_fallback', `a ${a.kind} fallback needs a target`);
    if (a.kind === 'agent' && !agentName.safeParse(a.target).success) return ctx.fail('invalid_fallback', `${a.target} is not an agent name`);
    const id = a.number_id ?? `default:${ctx.tenant}`;
    const row = { kind: a.kind, target: a.kind === 'message' ? null : a.target, message: a.message, set_by: ctx.caller, set_at: ctx.now };
    if (ctx.db.number_fallbacks.get(id)) ctx.db.number_fallbacks.update(id, row);
    else ctx.db.number_fallbacks.insert({ id, tenant: ctx.tenant, number_id: a.number_id, ...row });
    return { fallback_id: id };
  },
);

/** `transfer` carries the message a leg that cannot redirect speaks instead. */
export type Fallback = { kind: 'agent'; agent: string } | { kind: 'transfer'; target: string; message: string } | { kind: 'message'; message: string };

interface FallbackView {
  agent_pauses: { find(f: { agent: string }): PauseRow[] };
  number_fallbacks: { get(id: string): FallbackRow | undefined };
}

/**
 * Where a call on `call.agent` goes while that agent is paused; null when it keeps its agent (not paused, or live
 * before a `keep_live` pause began). A fallback agent that is itself paused gives way to the message.
 */
export function fallbackFor(
  db: FallbackView,
  call: { tenant: string; agent: string | null; number_id: string | null; received_at: number },
): Fallback | null {
  if (!call.agent) return null;
  const pause = openPause(db, call.agent);
  if (!pause) return null;
  if (pause.keep_live && call.received_at < pause.paused_at) return null;
  const row = (call.number_id ? db.number_fallbacks.get(call.number_id) : undefined) ?? db.number_fallbacks.get(`default:${call.tenant}`);
  const message = { kind: 'message', message: row?.message ?? DEFAULT_FALLBACK_MESSAGE } as const;
  if (!row || row.kind === 'message') return message;
  if (row.kind === 'transfer' && row.target) return { kind: 'transfer', target: row.target, message: message.message };
  if (row.kind === 'agent' && row.target && row.target !== call.agent && !openPause(db, row.target)) return { kind: 'agent', agent: row.target };
  return message;
}

export const agentPauseReducers = [agent_paused, agent_resumed, number_fallback_set];
