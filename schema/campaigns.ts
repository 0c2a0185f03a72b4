/**
 * Campaigns: batches of outbound calls, paced, windowed and restart-safe (tables in schema/campaign-tables.ts; the
 * runner that submits these is campaigns/scheduler.ts). Every dial decision is a row committed BEFORE the dial, and
 * the decision's own command checks what must never be broken, so the log proves it:
 *
 *   campaign_created             the campaign and its numbers (pending), by a user with calls:originate
 *   campaign_attempt_decided     "dial number N, attempt k, now": the campaign is running, the number is due, fewer
 *                                than max_concurrent attempts are live, the provider's last decision is at least
 *                                1000/calls_per_second ms older (ctx.now), and the number is not on the tenant's
 *                                do-not-call list (else the number becomes `dnc` and nothing is dialled)
 *   campaign_attempt_dialed      the dialer made the call row: the attempt's call id
 *   campaign_attempt_finished    the call ended (its row's end reason) or the dial was refused: the number is done,
 *                                failed, or pending again after a backoff (busy / no answer, attempts left)
 *   campaign_attempt_reconciled  at a restart, for an attempt decided but never linked to its call: the outbound call
 *                                row the dialer wrote after the decision (same from, same to) is linked; none means
 *                                the node died before the dialer wrote it — and the dialer writes it before it sends
 *                                anything — so nobody was called: the attempt is `abandoned` and the number is due again
 *   campaign_state_set           pause | resume | cancel (cancel: numbers not yet called are cancelled; live calls
 *                                go on to their end)
 *
 *   decided ──dialed──► dialing ──finished──► finished
 *      ├──finished (dial refused)─────────────────┘
 *      └──reconciled──► dialing | abandoned
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { ClockTime, TimeZoneName } from './campaign-tables.ts';
import { onDnc } from './dnc.ts';
import { defineReducer, type Ctx } from './reducer.ts';

const id = z.string().min(1).max(200);
/** The most numbers one campaign takes (one command carries them all). */
export const MAX_CAMPAIGN_NUMBERS = 5000;
/** A retry waits at most this long, however many attempts came before. */
export const MAX_RETRY_DELAY_MS = 24 * 3_600_000;

/** The shortest gap between two decisions at `cps` calls per second (ms, rounded up). */
export function minIntervalMs(cps: number): number {
  return Math.ceil(1000 / cps);
}

/** Whether an end reason is worth another try: busy or no answer, on any provider (`sip:busy`, `x:no-answer`). */
export function retryableOutcome(reason: string | null): boolean {
  return reason !== null && /(^|:)(busy|no-answer)$/.test(reason);
}

/** The wait before retry number `retry` (1 = the first retry): the backoff doubling each time, capped. */
export function retryDelayMs(backoffMs: number, retry: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, backoffMs * 2 ** Math.max(0, retry - 1));
}

const NumberEntry = z.strictObject({
  number: z.string().trim().min(2).max(512),
  name: z.string().max(200).nullable().default(null),
  timezone: TimeZoneName.nullable().default(null),
});

export const campaign_created = defineReducer(
  'campaign_created',
  z.strictObject({
    name: z.string().max(200).default(''),
    agent: z.string().min(1).max(100).nullable().default(null),
    from: z.string().min(1).max(512),
    numbers: z.array(NumberEntry).min(1).max(MAX_CAMPAIGN_NUMBERS),
    window_start: ClockTime,
    window_end: ClockTime,
    timezone: TimeZoneName,
    max_concurrent: z.number().int().positive().max(1000),
    calls_per_second: z.number().positive().max(1000),
    max_attempts: z.number().int().positive().max(20),
    retry_backoff_ms: z.number().int().nonnegative().max(MAX_RETRY_DELAY_MS),
    owner_node: z.string().min(1).max(200),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'calls:originate');
    const from = ctx.db.numbers.findOne({ number: a.from });
    if (!from) return ctx.fail('number_not_found', `${a.from} is not a number of tenant ${ctx.tenant}`);
    const campaignId = ctx.newId('cmp');
    const seen = new Set<string>();
    let position = 0;
    for (const n of a.numbers) {
      if (seen.has(n.number)) continue; // a number listed twice is called once
      seen.add(n.number);
      ctx.db.campaign_numbers.insert({
        id: ctx.newId('cmpn'), tenant: ctx.tenant, campaign_id: campaignId, position: position++, number: n.number, name: n.name,
        timezone: n.timezone, state: 'pending', attempts: 0, next_at: 0, last_outcome: null, last_call_id: null,
      });
    }
    ctx.db.campaigns.insert({
      id: campaignId, tenant: ctx.tenant, name: a.name, agent: a.agent, from_number: a.from, provider: from.provider ?? 'default',
      state: 'running', window_start: a.window_start, window_end: a.window_end, timezone: a.timezone, max_concurrent: a.max_concurrent,
      calls_per_second: a.calls_per_second, max_attempts: a.max_attempts, retry_backoff_ms: a.retry_backoff_ms, owner_node: a.owner_node,
      created_by: ctx.caller, created_at: ctx.now, updated_at: ctx.now, numbers_total: position, numbers_finished: 0,
      numbers_answered: 0, numbers_dnc: 0, attempts: 0, live: 0,
    });
    return { campaign_id: campaignId, numbers: position };
  },
);

function loadCampaign(ctx: Ctx, campaignId: string) {
  return ctx.db.campaigns.get(campaignId) ?? ctx.fail('campaign_not_found', `no campaign ${campaignId}`);
}

/** A number reached a final state: the counters, and the campaign completes once nothing is pending or live. */
function numberFinished(ctx: Ctx, campaignId: string, patch: { answered?: boolean; dnc?: boolean; liveEnded?: boolean }): void {
  const c = loadCampaign(ctx, campaignId);
  const next = {
    numbers_finished: c.numbers_finished + 1,
    numbers_answered: c.numbers_answered + (patch.answered ? 1 : 0),
    numbers_dnc: c.numbers_dnc + (patch.dnc ? 1 : 0),
    live: c.live - (patch.liveEnded ? 1 : 0),
    updated_at: ctx.now,
  };
  const done = next.numbers_finished >= c.numbers_total && (c.state === 'running' || c.state === 'paused');
  ctx.db.campaigns.update(c.id, { ...next, ...(done ? { state: 'completed' as const } : {}) });
}

export const campaign_attempt_decided = defineReducer(
  'campaign_attempt_decided',
  z.strictObject({ campaign_id: id, number_id: id, local_time: z.string().max(100) }),
  (ctx, a) => {
    const c = loadCampaign(ctx, a.campaign_id);
    if (c.state !== 'running') return ctx.fail('campaign_not_running', `campaign ${c.id} is ${c.state}`);
    const n = ctx.db.campaign_numbers.get(a.number_id);
    if (!n || n.campaign_id !== c.id) return ctx.fail('campaign_number_not_found', `no number ${a.number_id} in campaign ${c.id}`);
    if (n.state !== 'pending') return ctx.fail('number_not_pending', `number ${n.number} is ${n.state}`);
    if (n.next_at > ctx.now) return ctx.fail('number_not_due', `number ${n.number} is due at ${n.next_at}`);
    if (onDnc(ctx, n.number)) {
      ctx.db.campaign_numbers.update(n.id, { state: 'dnc', last_outcome: 'dnc' });
      numberFinished(ctx, c.id, { dnc: true });
      return { dnc: true as const, attempt_id: null, attempt: 0 };
    }
    if (c.live >= c.max_concurrent) return ctx.fail('concurrency_full', `campaign ${c.id} has ${c.live} of ${c.max_concurrent} calls live`);
    const pacing = ctx.db.campaign_pacing.findOne({ tenant: ctx.tenant, provider: c.provider });
    const gap = minIntervalMs(c.calls_per_second);
    if (pacing && ctx.now < pacing.last_decided_at + gap) {
      return ctx.fail('paced', `${c.provider}: the last call was decided at ${pacing.last_decided_at}; next at ${pacing.last_decided_at + gap}`);
    }
    if (pacing) ctx.db.campaign_pacing.update(pacing.id, { last_decided_at: ctx.now });
    else ctx.db.campaign_pacing.insert({ id: ctx.newId('cpace'), tenant: ctx.tenant, provider: c.provider, last_decided_at: ctx.now });
    const attempt = n.attempts + 1;
    const attemptId = ctx.newId('cmpa');
    ctx.db.campaign_attempts.insert({
      id: attemptId, tenant: ctx.tenant, campaign_id: c.id, number_id: n.id, number: n.number, attempt, state: 'decided', decided_at: ctx.now,
      local_time: a.local_time, node: c.owner_node, call_id: null, outcome: null, finished_at: null,
    });
    ctx.db.campaign_numbers.update(n.id, { state: 'live', attempts: attempt });
    ctx.db.campaigns.update(c.id, { attempts: c.attempts + 1, live: c.live + 1, updated_at: ctx.now });
    return { dnc: false as const, attempt_id: attemptId, attempt };
  },
);

function loadAttempt(ctx: Ctx, attemptId: string) {
  return ctx.db.campaign_attempts.get(attemptId) ?? ctx.fail('campaign_attempt_not_found', `no campaign attempt ${attemptId}`);
}

export const campaign_attempt_dialed = defineReducer('campaign_attempt_dialed', z.strictObject({ attempt_id: id, call_id: id }), (ctx, a) => {
  const at = loadAttempt(ctx, a.attempt_id);
  if (at.state !== 'decided') return ctx.fail('attempt_not_decided', `attempt ${at.id} is ${at.state}`);
  ctx.db.campaign_attempts.update(at.id, { state: 'dialing', call_id: a.call_id });
  ctx.db.campaign_numbers.update(at.number_id, { last_call_id: a.call_id });
  return { attempt_id: at.id };
});

export const campaign_attempt_finished = defineReducer(
  'campaign_attempt_finished',
  z.strictObject({ attempt_id: id, outcome: z.string().min(1).max(200).nullable().default(null) }),
  (ctx, a) => {
    const at = loadAttempt(ctx, a.attempt_id);
    if (at.state === 'finished' || at.state === 'abandoned') return { attempt_id: at.id, outcome: at.outcome, retry: false, existing: true };
    const call = at.call_id ? ctx.db.calls.get(at.call_id) : undefined;
    if (call && call.state !== 'ended') return ctx.fail('call_live', `call ${call.id} is ${call.state}`);
    const answered = call?.answered_at != null;
    const outcome = answered ? 'answered' : (call?.end_reason ?? a.outcome ?? 'failed');
    ctx.db.campaign_attempts.update(at.id, { state: 'finished', outcome, finished_at: ctx.now });
    const c = loadCampaign(ctx, at.campaign_id);
    const n = ctx.db.campaign_numbers.get(at.number_id)!;
    const dialled = ctx.db.campaign_attempts.find({ number_id: n.id, state: 'finished' }).length;
    if (!answered && retryableOutcome(outcome) && dialled < c.max_attempts && c.state !== 'cancelled') {
      ctx.db.campaign_numbers.update(n.id, { state: 'pending', last_outcome: outcome, next_at: ctx.now + retryDelayMs(c.retry_backoff_ms, dialled) });
      ctx.db.campaigns.update(c.id, { live: c.live - 1, updated_at: ctx.now });
      return { attempt_id: at.id, outcome, retry: true, existing: false };
    }
    ctx.db.campaign_numbers.update(n.id, { state: answered ? 'done' : 'failed', last_outcome: outcome });
    numberFinished(ctx, c.id, { answered, liveEnded: true });
    return { attempt_id: at.id, outcome, retry: false, existing: false };
  },
);

export const campaign_attempt_reconciled = defineReducer('campaign_attempt_reconciled', z.strictObject({ attempt_id: id }), (ctx, a) => {
  const at = loadAttempt(ctx, a.attempt_id);
  if (at.state !== 'decided') return { attempt_id: at.id, state: at.state, call_id: at.call_id };
  const c = loadCampaign(ctx, at.campaign_id);
  const call = ctx.db.calls
    .find({ from_uri: c.from_number, to_uri: at.number, direction: 'outbound' })
    .filter((r) => r.received_at >= at.decided_at && !ctx.db.campaign_attempts.findOne({ call_id: r.id }))
    .sort((x, y) => x.received_at - y.received_at || (x.id < y.id ? -1 : 1))[0];
  if (call) {
    ctx.db.campaign_attempts.update(at.id, { state: 'dialing', call_id: call.id });
    ctx.db.campaign_numbers.update(at.number_id, { last_call_id: call.id });
    return { attempt_id: at.id, state: 'dialing', call_id: call.id };
  }
  ctx.db.campaign_attempts.update(at.id, { state: 'abandoned', outcome: 'abandoned', finished_at: ctx.now });
  ctx.db.campaign_numbers.update(at.number_id, { state: c.state === 'cancelled' ? 'cancelled' : 'pending' });
  if (c.state === 'cancelled') numberFinished(ctx, c.id, { liveEnded: true });
  else ctx.db.campaigns.update(c.id, { live: c.live - 1, updated_at: ctx.now });
  return { attempt_id: at.id, state: 'abandoned', call_id: null };
});

export const campaign_state_set = defineReducer(
  'campaign_state_set',
  z.strictObject({ campaign_id: id, action: z.enum(['pause', 'resume', 'cancel']) }),
  (ctx, a) => {
    requireCaller(ctx, 'calls:originate');
    const c = loadCampaign(ctx, a.campaign_id);
    if (c.state === 'cancelled' || c.state === 'completed') return ctx.fail('campaign_finished', `campaign ${c.id} is ${c.state}`);
    if (a.action === 'pause') ctx.db.campaigns.update(c.id, { state: 'paused', updated_at: ctx.now });
    else if (a.action === 'resume') ctx.db.campaigns.update(c.id, { state: 'running', updated_at: ctx.now });
    else {
      const pending = ctx.db.campaign_numbers.find({ campaign_id: c.id, state: 'pending' });
      for (const n of pending) ctx.db.campaign_numbers.update(n.id, { state: 'cancelled' });
      ctx.db.campaigns.update(c.id, { state: 'cancelled', numbers_finished: c.numbers_finished + pending.length, updated_at: ctx.now });
    }
    return { campaign_id: c.id, state: ctx.db.campaigns.get(c.id)!.state };
  },
);

export const campaignReducers = [campaign_created, campaign_attempt_decided, campaign_attempt_dialed, campaign_attempt_finished, campaign_attempt_reconciled, campaign_state_set];
