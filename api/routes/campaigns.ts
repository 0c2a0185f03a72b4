/**
 * Campaigns and the do-not-call list (schema/campaigns.ts, schema/dnc.ts; the runner is campaigns/scheduler.ts).
 *
 *   POST /v1/campaigns               calls:originate. JSON `{ from, numbers: ["+1555…" | "sip:…" | {number, name?,
 *                                    timezone?}], agent?, name?, window?: "09:00-20:00" | {start, end},
 *                                    timezone?, max_concurrent?, calls_per_second?, max_attempts?,
 *                                    retry_backoff_ms? }` — or `text/csv` (a `number` column, optional `timezone`
 *                                    and `name`) with the other fields in the query string. 201 with the campaign.
 *                                    Numbers are normalised to E.164 (campaigns/numbers.ts); any that cannot be:
 *                                    400 `invalid_numbers` with `rows: [{row, number, error}]`, nothing written.
 *   GET  /v1/campaigns               calls:read: the tenant's campaigns, newest first
 *   GET  /v1/campaigns/:id           calls:read: the campaign, its progress by state and its numbers
 *   POST /v1/campaigns/:id/pause     calls:originate (also /resume, /cancel)
 *   GET  /v1/dnc                     calls:read: the do-not-call list
 *   POST /v1/dnc                     dnc:write: `{ number, reason? }` adds (201); a telephone number is listed in
 *                                    E.164 (`+1 (555) 010-0004`, `001555…`, `tel:` → `+1555…`)
 *   DELETE /v1/dnc/:number           dnc:write: removes (404 dnc_not_found when not listed)
 *
 * Defaults: window 00:00–24:00 (always), zone UTC, 10 concurrent, 3 attempts, a 5-minute backoff doubling per
 * retry, and the from-number's provider's documented calls per second (ingress/<provider>/cps.ts, else 1).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CsvError, parseCampaignCsvLines } from '../../campaigns/csv.ts';
import { normaliseCallee, normaliseCampaignNumbers, type RowError } from '../../campaigns/numbers.ts';
import { validTimeZone } from '../../campaigns/window.ts';
import { ClockTime, TimeZoneName } from '../../schema/campaign-tables.ts';
import { MAX_CAMPAIGN_NUMBERS } from '../../schema/campaigns.ts';
import type { SwitchboardTables } from '../../schema/index.ts';
import { campaign_created, campaign_state_set, dnc_added, dnc_removed } from '../../schema/reducers.ts';
import type { RowOf } from '../../store/index.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { iso } from './time.ts';

const DEFAULTS = { timezone: 'UTC', max_concurrent: 10, max_attempts: 3, retry_backoff_ms: 300_000 };
const Window = z.union([
  z.string().regex(/^\d\d:\d\d-\d\d:\d\d$/, 'HH:MM-HH:MM').transform((s) => ({ start: s.slice(0, 5), end: s.slice(6) })),
  z.strictObject({ start: z.string(), end: z.string() }),
]);
const Settings = {
  name: z.string().max(200).default(''),
  from: z.string().min(1, 'the number to call from').max(512),
  agent: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase agent name: letters, digits, - and _').optional(),
  window: Window.default({ start: '00:00', end: '24:00' }),
  timezone: TimeZoneName.default(DEFAULTS.timezone),
  max_concurrent: z.coerce.number().int().min(1).max(1000).default(DEFAULTS.max_concurrent),
  calls_per_second: z.coerce.number().positive().max(1000).optional(),
  max_attempts: z.coerce.number().int().min(1).max(20).default(DEFAULTS.max_attempts),
  retry_backoff_ms: z.coerce.number().int().min(0).max(86_400_000).default(DEFAULTS.retry_backoff_ms),
};
const NumberEntry = z.union([
  z.string().trim().min(2).max(512).transform((number) => ({ number, name: null, timezone: null })),
  z.strictObject({ number: z.string().trim().min(2).max(512), name: z.string().max(200).nullable().default(null), timezone: TimeZoneName.nullable().default(null) }),
]);
const JsonBody = z.strictObject({ ...Settings, numbers: z.array(NumberEntry).min(1).max(MAX_CAMPAIGN_NUMBERS) });
const CsvQuery = z.strictObject(Settings);
const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const ActionParam = z.strictObject({ id: z.string().min(1).max(200), action: z.enum(['pause', 'resume', 'cancel']) });
const DncBody = z.strictObject({ number: z.string().trim().min(2).max(512), reason: z.string().max(1000).optional() });

type CampaignRow = RowOf<SwitchboardTables['campaigns']>;

export function campaignView(c: CampaignRow) {
  return {
    id: c.id, name: c.name, state: c.state, from: c.from_number, agent: c.agent, provider: c.provider,
    window: { start: c.window_start, end: c.window_end }, timezone: c.timezone, max_concurrent: c.max_concurrent,
    calls_per_second: c.calls_per_second, max_attempts: c.max_attempts, retry_backoff_ms: c.retry_backoff_ms,
    owner_node: c.owner_node, created_by: c.created_by, created_at: iso(c.created_at), updated_at: iso(c.updated_at),
    progress: { total: c.numbers_total, finished: c.numbers_finished, answered: c.numbers_answered, dnc: c.numbers_dnc, attempts: c.attempts, live: c.live },
  };
}

/** Checks what the schema cannot: the zones exist, the window's times, the dialer can call every number. */
function checkCampaign(ctx: ApiContext, body: z.output<typeof JsonBody>): { start: string; end: string } {
  const start = ClockTime.safeParse(body.window.start);
  const end = ClockTime.safeParse(body.window.end);
  if (!start.success || !end.success) throw new HttpError(400, 'invalid_request', 'window: HH:MM-HH:MM, times 00:00 to 24:00');
  for (const tz of new Set([body.timezone, ...body.numbers.map((n) => n.timezone).filter((t): t is string => t !== null)])) {
    if (!validTimeZone(tz)) throw new HttpError(400, 'invalid_request', `timezone: ${JSON.stringify(tz)} is not a time zone this gateway knows (an IANA name, e.g. America/New_York)`);
  }
  const bad = ctx.dialer ? body.numbers.map((n) => [n.number, ctx.dialer!.targetProblem(n.number)] as const).filter(([, p]) => p !== null) : [];
  if (bad.length > 0) throw new HttpError(400, 'invalid_request', `numbers: ${bad.slice(0, 5).map(([n, p]) => `${n}: ${p}`).join('; ')}${bad.length > 5 ? ` (and ${bad.length - 5} more)` : ''}`);
  return { start: start.data, end: end.data };
}

/** The 400 for numbers that cannot be normalised: the contract's error, with every refused row (`rows`). */
function numbersRefused(errors: RowError[]) {
  const first = errors.slice(0, 3).map((e) => `${e.row} ${JSON.stringify(e.number)}: ${e.error}`).join('; ');
  return { error: { code: 'invalid_numbers', message: `${errors.length} number(s) cannot be dialled: ${first}${errors.length > 3 ? '; …' : ''} (E.164: +<country code><number>, or a sip: URI)`, rows: errors } };
}

export function mountCampaignRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: 2 * 1024 * 1024 }, (_req, body, done) => done(null, body));

  app.post('/v1/campaigns', { config: { bodyTypes: ['text/csv'] } }, async (req, reply) => {
    const p = authorize(ctx, req, 'calls:originate');
    let body: z.output<typeof JsonBody>;
    let where = (i: number): string => `numbers[${i}]`;
    if (typeof req.body === 'string') {
      let rows;
      try {
        rows = parseCampaignCsvLines(req.body);
      } catch (err) {
        if (err instanceof CsvError) throw new HttpError(400, 'invalid_request', `csv: ${err.message}`);
        throw err;
      }
      body = parse(JsonBody, { ...(parse(CsvQuery, req.query) as object), numbers: rows.map((r) => r.entry) });
      where = (i) => `line ${rows[i]?.line ?? '?'}`;
    } else body = parse(JsonBody, req.body);
    // Every number in one form (E.164, or a SIP URI as written): the DNC check and "called once" compare them.
    const normal = normaliseCampaignNumbers(body.numbers, where);
    if (normal.errors.length > 0) return reply.code(400).send(numbersRefused(normal.errors));
    body = { ...body, numbers: normal.numbers };
    const window = checkCampaign(ctx, body);
    const from = ctx.store.read(p.tenant).numbers.findOne({ number: body.from });
    if (!from) throw new HttpError(404, 'number_not_found', `from: ${body.from} is not one of your numbers (GET /v1/numbers)`);
    const cps = body.calls_per_second ?? ctx.campaigns?.callsPerSecond[from.provider ?? ''] ?? 1;
    const r = await submitAs(ctx, p, campaign_created, {
      name: body.name, agent: body.agent ?? null, from: body.from, numbers: body.numbers, window_start: window.start, window_end: window.end,
      timezone: body.timezone, max_concurrent: body.max_concurrent, calls_per_second: cps, max_attempts: body.max_attempts,
      retry_backoff_ms: body.retry_backoff_ms, owner_node: ctx.store.node,
    });
    ctx.campaigns?.runner.poke();
    reply.code(201).header('location', `/v1/campaigns/${r.campaign_id}`);
    return campaignView(ctx.store.read(p.tenant).campaigns.get(r.campaign_id)!);
  });

  app.get('/v1/campaigns', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    return { campaigns: ctx.store.read(p.tenant).campaigns.find({}, { orderBy: 'created_at', desc: true, limit: 1000 }).map(campaignView) };
  });

  app.get('/v1/campaigns/:id', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const { id } = parse(IdParam, req.params);
    const read = ctx.store.read(p.tenant);
    const c = read.campaigns.get(id);
    if (!c) throw new HttpError(404, 'campaign_not_found', `no campaign ${id}`);
    const numbers = read.campaign_numbers.find({ campaign_id: id }, { orderBy: 'position' });
    const byState: Record<string, number> = { pending: 0, live: 0, done: 0, failed: 0, dnc: 0, cancelled: 0 };
    for (const n of numbers) byState[n.state] = (byState[n.state] ?? 0) + 1;
    return {
      ...campaignView(c),
      numbers_by_state: byState,
      numbers: numbers.map((n) => ({ number: n.number, name: n.name, timezone: n.timezone, state: n.state, attempts: n.attempts, last_outcome: n.last_outcome, last_call_id: n.last_call_id })),
    };
  });

  app.post('/v1/campaigns/:id/:action', async (req) => {
    const p = authorize(ctx, req, 'calls:originate');
    const { id, action } = parse(ActionParam, req.params);
    if (!ctx.store.read(p.tenant).campaigns.get(id)) throw new HttpError(404, 'campaign_not_found', `no campaign ${id}`);
    await submitAs(ctx, p, campaign_state_set, { campaign_id: id, action });
    if (action === 'resume') ctx.campaigns?.runner.poke();
    return campaignView(ctx.store.read(p.tenant).campaigns.get(id)!);
  });

  app.get('/v1/dnc', async (req) => {
    const p = authorize(ctx, req, 'calls:read');
    const rows = ctx.store.read(p.tenant).dnc_numbers.find({}, { orderBy: 'added_at', desc: true, limit: 100_000 });
    return { dnc: rows.map((r) => ({ number: r.number, reason: r.reason, added_by: r.added_by, added_at: iso(r.added_at) })) };
  });

  app.post('/v1/dnc', async (req, reply) => {
    const p = authorize(ctx, req, 'dnc:write');
    const body = parse(DncBody, req.body);
    // E.164 when it is a telephone number in any common form; anything else (a SIP user part, a national number that
    // a SIP campaign may dial as sip:NUMBER@pbx) is listed as written, as before.
    const n = normaliseCallee(body.number);
    const r = await submitAs(ctx, p, dnc_added, { number: 'number' in n ? n.number : body.number, reason: body.reason ?? null });
    reply.code(r.existing ? 200 : 201);
    return { number: r.number, reason: body.reason ?? null };
  });

  app.delete('/v1/dnc/:number', async (req) => {
    const p = authorize(ctx, req, 'dnc:write');
    const { number } = parse(z.strictObject({ number: z.string().trim().min(2).max(512) }), req.params);
    const n = normaliseCallee(number);
    // A number listed before numbers were normalised is still removed as written.
    const listed = 'number' in n && ctx.store.read(p.tenant).dnc_numbers.findOne({ number: n.number }) ? n.number : number;
    return submitAs(ctx, p, dnc_removed, { number: listed });
  });
}
