/**
 * Campaigns' tables (reducers in schema/campaigns.ts and schema/dnc.ts):
 *
 *   campaigns          one row per campaign: what to call from, how fast, when, how often; its state
 *                      (running ⇄ paused, ─► cancelled | completed) and progress counters
 *   campaign_numbers   one row per number of a campaign: pending ─► live ─► done | failed, back to pending for a
 *                      retry (busy, no answer) at `next_at`; dnc (on the tenant's list when its turn came);
 *                      cancelled (the campaign was cancelled before its turn)
 *   campaign_attempts  one row per dial DECISION, written before the dial: decided ─► dialing (its call id) ─►
 *                      finished (the call's end reason) | abandoned (the node died before the call row existed:
 *                      no INVITE or API request was ever sent, so the number may be dialled again)
 *   campaign_pacing    per tenant and provider: the time of the last decision (calls-per-second pacing)
 *   dnc_numbers        the tenant's do-not-call list
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();

export const CAMPAIGN_STATES = ['running', 'paused', 'cancelled', 'completed'] as const;
export const CAMPAIGN_NUMBER_STATES = ['pending', 'live', 'done', 'failed', 'dnc', 'cancelled'] as const;
export const CAMPAIGN_ATTEMPT_STATES = ['decided', 'dialing', 'finished', 'abandoned'] as const;
/** `HH:MM`, 00:00 to 24:00. */
export const ClockTime = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'a time of day HH:MM (00:00 to 24:00)');
/** An IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`); checked against Intl by the API. */
export const TimeZoneName = z.string().min(1).max(64).regex(/^[A-Za-z0-9_+\-/]+$/, 'an IANA time zone name, e.g. America/New_York');

export const campaigns = defineTable({
  name: 'campaigns',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'state']],
  row: z.object({
    id,
    tenant: id,
    name: z.string().max(200),
    /** The agent of every call; null: the from-number's agent. */
    agent: z.string().max(100).nullable(),
    from_number: z.string().max(512),
    /** The from-number's provider: the pacing key. */
    provider: z.string().max(32),
    state: z.enum(CAMPAIGN_STATES),
    window_start: ClockTime,
    window_end: ClockTime,
    /** The callee's zone when its number has none. */
    timezone: TimeZoneName,
    max_concurrent: z.number().int().positive(),
    calls_per_second: z.number().positive(),
    max_attempts: z.number().int().positive(),
    retry_backoff_ms: z.number().int().nonnegative(),
    /** The node that runs it (the one that created it). */
    owner_node: z.string().max(200),
    created_by: z.string().max(200),
    created_at: ts,
    updated_at: ts,
    numbers_total: z.number().int().nonnegative(),
    /** Numbers in a final state (done, failed, dnc, cancelled). */
    numbers_finished: z.number().int().nonnegative(),
    numbers_answered: z.number().int().nonnegative(),
    numbers_dnc: z.number().int().nonnegative(),
    attempts: z.number().int().nonnegative(),
    /** Attempts decided and not finished (the campaign's live calls, counted against max_concurrent). */
    live: z.number().int().nonnegative(),
  }),
});

export const campaign_numbers = defineTable({
  name: 'campaign_numbers',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['campaign_id', 'state'], ['campaign_id', 'position']],
  unique: [['campaign_id', 'number']],
  row: z.object({
    id,
    tenant: id,
    campaign_id: id,
    position: z.number().int().nonnegative(),
    number: z.string().max(512),
    name: z.string().max(200).nullable(),
    timezone: TimeZoneName.nullable(),
    state: z.enum(CAMPAIGN_NUMBER_STATES),
    attempts: z.number().int().nonnegative(),
    /** Not before this time (a retry's backoff); 0 = at once. */
    next_at: ts,
    last_outcome: z.string().max(200).nullable(),
    last_call_id: id.nullable(),
  }),
});

export const campaign_attempts = defineTable({
  name: 'campaign_attempts',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['campaign_id', 'state'], ['call_id']],
  unique: [['number_id', 'attempt']],
  row: z.object({
    id,
    tenant: id,
    campaign_id: id,
    number_id: id,
    number: z.string().max(512),
    /** 1 for the first dial of the number, 2 for its first retry … */
    attempt: z.number().int().positive(),
    state: z.enum(CAMPAIGN_ATTEMPT_STATES),
    /** The decision's command time: the pacing and the concurrency are checked against it. */
    decided_at: ts,
    /** The callee's local time when it was decided (the window check's evidence), `YYYY-MM-DD HH:MM zone`. */
    local_time: z.string().max(100),
    node: z.string().max(200),
    call_id: id.nullable(),
    outcome: z.string().max(200).nullable(),
    finished_at: ts.nullable(),
  }),
});

export const campaign_pacing = defineTable({
  name: 'campaign_pacing',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'provider']],
  row: z.object({ id, tenant: id, provider: z.string().max(32), last_decided_at: ts }),
});

export const dnc_numbers = defineTable({
  name: 'dnc_numbers',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'number']],
  row: z.object({
    id,
    tenant: id,
    /** The number as matched: E.164, or a SIP URI's user part (schema/dnc.ts dncKey). */
    number: z.string().max(512),
    reason: z.string().max(1000).nullable(),
    added_by: z.string().max(200),
    added_at: ts,
  }),
});
