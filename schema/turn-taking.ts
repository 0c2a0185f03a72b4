/**
 * Turn-taking decisions: each time the caller spoke over the agent, whether that interrupted it (a barge-in) or was
 * let pass as a backchannel ("uh-huh", "okay"), with how long the caller was voiced. Metadata only, never words.
 *
 *   the media pipeline's barge-in gate (media/turn-taking.ts) ─► bridge/turn-taking.ts ─► call_turn_decided
 *       { call_id, decision: interrupted | backchannel, voiced_ms, at_ms, dropped_ms, heard_ms, duck_db, by }
 *                                                                          │
 *                                                          one `turn_decisions` row per decision
 *
 * The row is the call's record of why its agent stopped mid-sentence or did not: it shows in the call's events
 * (`GET /v1/calls/:id/events`, the reducer carries `call_id`). `at_ms` is on the recording clock (ms since answer).
 * `duck_db` says how far the agent's audio had been ducked before the decision (the barge-in cue, media/ducker.ts;
 * 0 = not ducked) and `by` whether the caller's voice or a recognised stop word decided it (bridge/stop-words.ts);
 * both are null on rows of commands logged before they existed (a replay builds the same rows).
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { defineReducer } from './reducer.ts';

export const TURN_DECISIONS = ['interrupted', 'backchannel'] as const;

const id = z.string().min(1).max(200);
const ms = z.number().int().nonnegative().max(86_400_000);

export const turn_decisions = defineTable({
  name: 'turn_decisions',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    decision: z.enum(TURN_DECISIONS),
    /** Voiced caller audio over the agent when the decision was made. */
    voiced_ms: ms,
    /** When, on the recording clock (ms since answer). */
    at_ms: ms,
    /** Agent audio dropped by the interruption (0 for a backchannel). */
    dropped_ms: ms,
    /** How much of the interrupted say the caller had heard (null for a backchannel). */
    heard_ms: ms.nullable(),
    /** How far the agent was ducked before the decision (dB, 0 = not); null for older commands. */
    duck_db: z.number().int().min(0).max(60).nullable(),
    /** What decided: sustained voice, or a recognised stop word; null for older commands. */
    by: z.enum(['voice', 'stop_word']).nullable(),
    decided_at: z.number().int().nonnegative(),
  }),
});

export const call_turn_decided = defineReducer(
  'call_turn_decided',
  z.object({
    call_id: id,
    decision: z.enum(TURN_DECISIONS),
    voiced_ms: ms,
    at_ms: ms,
    dropped_ms: ms.default(0),
    heard_ms: ms.nullable().default(null),
    duck_db: z.number().int().min(0).max(60).optional(),
    by: z.enum(['voice', 'stop_word']).optional(),
  }),
  (ctx, a) => {
    const call = ctx.db.calls.get(a.call_id);
    if (!call) return ctx.fail('call_not_found', `no call ${a.call_id}`);
    const rowId = ctx.newId('turn');
    ctx.db.turn_decisions.insert({ id: rowId, tenant: ctx.tenant, call_id: a.call_id, decision: a.decision, voiced_ms: a.voiced_ms, at_ms: a.at_ms, dropped_ms: a.dropped_ms, heard_ms: a.heard_ms, duck_db: a.duck_db ?? null, by: a.by ?? null, decided_at: ctx.now });
    return { id: rowId, decision: a.decision };
  },
);

export const turnTakingReducers = [call_turn_decided];
