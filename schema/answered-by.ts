/**
 * Who (or what) answered an outbound call: a person, an answering machine, or nobody could tell.
 *
 *   provider AMD (Twilio `AnsweredBy`, Vonage `advanced_machine_detection`) ─┐
 *                                                                            ├─► call_answered_by {call_id, by, source, evidence}
 *   media-side detector (greeting length, beep by Goertzel)               ───┘        │
 *                                                                                     ▼
 *                                                          one `answered_by` row per call (keyed by call_id)
 *
 * One row per call: the first decision stands, except that an `unknown` may be replaced once by a definite
 * `human`/`machine` from the other source (provider AMD that gave up, then the media detector decided; or the
 * reverse). Any other second decision is a rejected outcome `already_decided`, logged like every outcome, so the
 * log shows both what was decided and what came too late. The same source repeating its own decision (a provider
 * retrying its webhook) returns the row unchanged. `evidence` is the decider's own account (the provider's raw
 * field, or the detector's greeting length / beep frequency / decision time), kept as JSON.
 *
 * The agent's `onAnswered(ctx, { by })` hook reads this row; the reducer name and its args are the contract
 * between the provider side (ingress/<provider>/) and the media side.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { defineReducer } from './reducer.ts';

export const ANSWERED_BY = ['human', 'machine', 'unknown'] as const;
export type AnsweredBy = (typeof ANSWERED_BY)[number];
export const ANSWER_SOURCES = ['provider', 'media'] as const;
export type AnswerSource = (typeof ANSWER_SOURCES)[number];

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const evidence = z.record(z.string(), z.unknown());

/** One row per call that had a decision (table list: schema/tables.ts). */
export const answered_by = defineTable({
  name: 'answered_by',
  primaryKey: 'call_id',
  tenantScoped: true,
  row: z.object({
    call_id: id,
    tenant: id,
    by: z.enum(ANSWERED_BY),
    source: z.enum(ANSWER_SOURCES),
    evidence,
    decided_at: ts,
    /** The decision this one replaced (an `unknown` from the other source), else null. */
    replaced: z.object({ by: z.enum(ANSWERED_BY), source: z.enum(ANSWER_SOURCES), decided_at: ts }).nullable(),
  }),
});

export const call_answered_by = defineReducer(
  'call_answered_by',
  z.object({
    call_id: id,
    by: z.enum(ANSWERED_BY),
    source: z.enum(ANSWER_SOURCES),
    evidence: evidence.default({}),
  }),
  (ctx, a) => {
    const call = ctx.db.calls.get(a.call_id);
    if (!call) return ctx.fail('call_not_found', `no call ${a.call_id}`);
    const prior = ctx.db.answered_by.get(a.call_id);
    if (!prior) {
      ctx.db.answered_by.insert({ call_id: a.call_id, tenant: ctx.tenant, by: a.by, source: a.source, evidence: a.evidence, decided_at: ctx.now, replaced: null });
      return { call_id: a.call_id, by: a.by, source: a.source, existing: false };
    }
    if (prior.source === a.source && prior.by === a.by) return { call_id: a.call_id, by: prior.by, source: prior.source, existing: true };
    if (prior.by === 'unknown' && a.by !== 'unknown' && prior.source !== a.source && prior.replaced === null) {
      ctx.db.answered_by.update(a.call_id, {
        by: a.by,
        source: a.source,
        evidence: a.evidence,
        decided_at: ctx.now,
        replaced: { by: prior.by, source: prior.source, decided_at: prior.decided_at },
      });
      return { call_id: a.call_id, by: a.by, source: a.source, existing: false };
    }
    return ctx.fail('already_decided', `call ${a.call_id} was already answered by ${prior.by} (${prior.source})`);
  },
);

export const answeredByReducers = [call_answered_by];
