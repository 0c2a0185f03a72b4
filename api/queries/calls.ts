/**
 * The read side of the compliance API for calls: a filtered, cursor-paged
 * list; one call's whole record with a timeline built from the log; its
 * transcript. Pure reads through the store's tenant-bound query layer
 * (`store.query(tenant)`): the tenant is given once to the constructor and the
 * store adds it to every statement (joined tables, transcript search and log
 * events included), so a request only ever sees its own tenant's rows. The
 * store prepares each statement once per query shape.
 *
 * List filters (CallFilterSchema, from the HTTP query string; all AND-ed; a
 * blank value counts as not given):
 *   from / to   exact match on the call's from_uri / to_uri
 *   number      matches from_uri or to_uri
 *   agent       exact match on calls.agent
 *   state       one of CALL_STATES
 *   consent     outcome of the call's current consent (calls.consent_id, which
 *               a withdrawal moves to the new `withdrawn` row); `none` = none
 *   since/until received_at in [since, until): ISO-8601 with a timezone, a
 *               date (UTC midnight), or ms since the epoch
 *   q           transcript search (the transcript_fts index, via the store's
 *               ftsQuery): every word, as a prefix, in one segment of the call
 *   limit       1–200 (50); cursor = opaque next_cursor of the previous page
 * Order: newest first by (received_at desc, id desc).
 *
 * Query strings decode `+` as a space, so a leading space before a digit in
 * from/to/number (and before a timezone offset in since/until) is read as `+`.
 */
import { z } from 'zod';
import { CALL_EVENTS, TRANSCRIPT_FTS } from '../../schema/search.ts';
import { CALL_STATES, tables, type SwitchboardTables } from '../../schema/tables.ts';
import { ftsQuery, type Json, type LogEvent, type Store, type TenantQuery } from '../../store/index.ts';
import type { RowOf } from '../../store/table.ts';

export type CallRow = RowOf<typeof tables.calls>;
export type LegRow = RowOf<typeof tables.legs>;
export type ConsentRow = RowOf<typeof tables.consents>;
export type PolicyRow = RowOf<typeof tables.consent_policies>;
export type RecordingRow = RowOf<typeof tables.recordings>;
export type Segment = RowOf<typeof tables.transcript_segments>;
export type AgentActionRow = RowOf<typeof tables.agent_actions>;
export type AgentStateRow = RowOf<typeof tables.agent_state>;

export const CONSENT_FILTERS = ['granted', 'declined', 'no_response', 'withdrawn', 'pending', 'none'] as const;
export type ConsentFilter = (typeof CONSENT_FILTERS)[number];
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

// ── the filter schema ────────────────────────────────────────────────────────

class Invalid {
  constructor(readonly message: string) {}
}

/** One query-string parameter: text given at most once; blank = not given; `parse` checks and converts. */
function param<T>(name: string, parse: (raw: string) => T | Invalid) {
  return z
    .string({ error: `${name} must be given once, as text` })
    .max(2048, `${name} is too long`)
    .optional()
    .transform((raw, ctx): T | undefined => {
      if (raw === undefined || raw.trim() === '') return undefined;
      const out = parse(raw);
      if (!(out instanceof Invalid)) return out;
      ctx.issues.push({ code: 'custom', message: `${name} ${out.message}`, input: raw });
      return z.NEVER;
    });
}

const uri = (raw: string): string | Invalid => {
  const v = raw.replace(/^ (?=\d)/, '+').trim();
  return v.length > 512 ? new Invalid('must be at most 512 characters') : v;
};

const oneOf =
  <T extends string>(values: readonly T[]) =>
  (raw: string): T | Invalid =>
    values.find((v) => v === raw.trim()) ?? new Invalid(`must be one of ${values.join(', ')} (got ${JSON.stringify(raw)})`);

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/i;

function time(raw: string): number | Invalid {
  const s = raw.trim().replace(/^(\d{4}-\d{2}-\d{2}T[\d:.]+) (\d{2}:?\d{2})$/, '$1+$2');
  if (/^\d{1,15}$/.test(s)) return Number(s);
  const m = ISO.exec(s);
  const ms = m ? Date.parse(s) : NaN;
  if (!m || Number.isNaN(ms)) return new Invalid(`must be an ISO-8601 time with a timezone (2024-05-01T09:00:00Z), a date (2024-05-01) or ms since the epoch (got ${JSON.stringify(raw)})`);
  const day = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  if (day.getUTCDate() !== Number(m[3]) || day.getUTCMonth() !== Number(m[2]) - 1) return new Invalid(`is not a calendar date (got ${JSON.stringify(raw)})`);
  return ms;
}

/** A page boundary: the last row's (received_at, id). */
export type Cursor = { at: number; id: string };

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString('base64url');
}

function decodeCursor(raw: string): Cursor | Invalid {
  const bad = new Invalid('is not a cursor this API returned (pass next_cursor from the previous page unchanged)');
  if (!/^[A-Za-z0-9_-]{1,600}$/.test(raw)) return bad;
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 2) return bad;
    const [at, id] = v as [unknown, unknown];
    if (!Number.isSafeInteger(at) || (at as number) < 0 || typeof id !== 'string' || id.length === 0 || id.length > 200) return bad;
    return { at: at as number, id };
  } catch {
    return bad;
  }
}

export const CallFilterSchema = z
  .strictObject(
    {
      from: param('from', uri),
      to: param('to', uri),
      number: param('number', uri),
      agent: param('agent', (raw) => (raw.trim().length > 100 ? new Invalid('must be at most 100 characters') : raw.trim())),
      state: param('state', oneOf(CALL_STATES)),
      consent: param('consent', oneOf(CONSENT_FILTERS)),
      since: param('since', time),
      until: param('until', time),
      q: param('q', (raw) => (ftsQuery(raw) === null ? new Invalid('needs at least one letter or digit to search for') : raw.trim())),
      limit: param('limit', (raw) => (/^\d{1,3}$/.test(raw.trim()) && +raw >= 1 && +raw <= MAX_LIMIT ? Number(raw) : new Invalid(`must be a whole number from 1 to ${MAX_LIMIT} (got ${JSON.stringify(raw)})`))).transform((n) => n ?? DEFAULT_LIMIT),
      cursor: param('cursor', decodeCursor),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown parameter${iss.keys.length > 1 ? 's' : ''} ${iss.keys.join(', ')}; allowed: from, to, number, agent, state, consent, since, until, q, limit, cursor` : undefined) },
  )
  .superRefine((f, ctx) => {
    if (f.since !== undefined && f.until !== undefined && f.since > f.until) ctx.addIssue({ code: 'custom', path: ['since'], message: 'since must not be after until' });
  });

export type CallFilter = z.output<typeof CallFilterSchema>;

/** The 400 body text for a failed filter parse (each message names its parameter). */
export function filterErrorMessage(err: z.ZodError): string {
  return err.issues.map((i) => i.message).join('; ');
}

// ── result shapes ────────────────────────────────────────────────────────────

export type CallSummary = Pick<CallRow, 'id' | 'provider' | 'direction' | 'agent' | 'state' | 'owner_node' | 'received_at' | 'answered_at' | 'ended_at' | 'end_reason'> & {
  from: string;
  to: string;
  /** The outcome of the call's current consent, or `none`. */
  consent: ConsentFilter;
  /** The call has a recording row (any status). */
  recorded: boolean;
};

export interface TimelineEntry {
  seq: number;
  at: number;
  /** The reducer name (call_received, consent_decided, recording_finalized …). */
  kind: string;
  ok: boolean;
  /** The rejection code when `ok` is false. */
  error: string | null;
  /** Who submitted the command (`user:…`, `system:…`). */
  by: string;
  /** The command's args, without the call id, transcript text or blob uris (nor content when withheld). */
  detail: Record<string, Json>;
}

export type PolicySummary = Pick<PolicyRow, 'id' | 'name' | 'version' | 'mode' | 'disclosure_text'>;
export type RecordingView = Omit<RecordingRow, 'uri'>;
/** `text` is null when content is withheld. */
export type SegmentView = Omit<Segment, 'text'> & { text: string | null };

export interface CallDetail {
  /** False when transcript text, agent action args/results, agent state and consent evidence are withheld. */
  content: boolean;
  call: CallRow;
  /** The node that owns the call (its `owner_node`) and that node's state (schema/nodes.ts); null before any. */
  owner: { node: string; state: string | null } | null;
  legs: LegRow[];
  consents: ConsentRow[];
  /** The policy of the call's current consent (the exact version used). */
  policy: PolicySummary | null;
  recordings: RecordingView[];
  transcript: SegmentView[];
  agent_actions: AgentActionRow[];
  agent_state: (Omit<AgentStateRow, 'state'> & { state: AgentStateRow['state'] | null }) | null;
  /** The call's events in the log, oldest first (by time, then seq). */
  timeline: TimelineEntry[];
}

/** Thrown by list() for a transcript search (`q`) when the caller may not read content. */
export class ContentForbiddenError extends Error {
  readonly code = 'forbidden';
  override readonly name = 'ContentForbiddenError';
}

// ── the timeline ─────────────────────────────────────────────────────────────

const ALWAYS_HIDDEN = new Set(['call_id', 'text', 'uri']);
const CONTENT_KEYS = new Set(['args', 'result', 'state', 'evidence']);

function summarize(args: Json, content: boolean): Record<string, Json> {
  const out: Record<string, Json> = {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return out;
  for (const [k, v] of Object.entries(args)) if (!ALWAYS_HIDDEN.has(k) && (content || !CONTENT_KEYS.has(k))) out[k] = v;
  return out;
}

function toEntry(ev: LogEvent, content: boolean): TimelineEntry {
  const error = ev.outcome.ok ? null : ev.outcome.error.code;
  return { seq: ev.seq, at: ev.ts, kind: ev.reducer, ok: ev.outcome.ok, error, by: ev.caller, detail: summarize(ev.args, content) };
}

// ── the reader ───────────────────────────────────────────────────────────────

export class CallQueries {
  private readonly q: TenantQuery<SwitchboardTables>;

  constructor(
    store: Pick<Store<SwitchboardTables>, 'query'>,
    readonly tenant: string,
  ) {
    if (typeof tenant !== 'string' || tenant.length === 0) throw new TypeError('CallQueries needs a tenant');
    this.q = store.query(tenant);
  }

  /** One page of calls, newest first; `next_cursor` is null on the last page. */
  list(filter: CallFilter, opts: { content?: boolean } = {}): { calls: CallSummary[]; next_cursor: string | null } {
    if (filter.q !== undefined && opts.content === false) throw new ContentForbiddenError('q searches transcripts, which this caller may not read');
    if (filter.q !== undefined && ftsQuery(filter.q) === null) return { calls: [], next_cursor: null };
    const limit = Math.min(Math.max(1, Math.floor(filter.limit ?? DEFAULT_LIMIT)), MAX_LIMIT);
    const query = this.q
      .from('calls')
      .leftJoin('consent', 'consents', { id: 'consent_id' }, ['outcome'])
      .exists('recorded', 'recordings', { call_id: 'id' })
      .where({ from_uri: filter.from, to_uri: filter.to, agent: filter.agent, state: filter.state });
    if (filter.number !== undefined) query.whereAny(['from_uri', 'to_uri'], filter.number);
    query.range('received_at', { gte: filter.since, lt: filter.until });
    if (filter.consent === 'none') query.whereJoined('consent', null);
    else if (filter.consent !== undefined) query.whereJoined('consent', { outcome: filter.consent });
    if (filter.q !== undefined) query.match(TRANSCRIPT_FTS, filter.q, { via: 'call_id' });
    query.orderBy(['received_at', 'desc'], ['id', 'desc']);
    if (filter.cursor) query.after([filter.cursor.at, filter.cursor.id]);
    const rows = query.limit(limit + 1).all();
    const page = rows.slice(0, limit).map((row): CallSummary => {
      const { id, provider, direction, agent, state, owner_node, received_at, answered_at, ended_at, end_reason } = row;
      const consent = (row.consent?.outcome as ConsentFilter | undefined) ?? 'none';
      return { id, provider, direction, from: row.from_uri, to: row.to_uri, agent, state, owner_node, consent, recorded: row.recorded, received_at, answered_at, ended_at, end_reason };
    });
    const last = page[page.length - 1];
    return { calls: page, next_cursor: rows.length > limit && last ? encodeCursor({ at: last.received_at, id: last.id }) : null };
  }

  /** Everything about one call, or null when it is not this tenant's. */
  detail(callId: string, opts: { content?: boolean } = {}): CallDetail | null {
    const content = opts.content !== false;
    const call = this.call(callId);
    if (!call) return null;
    const consents = this.q.from('consents').where({ call_id: callId }).orderBy(['started_at', 'asc'], ['id', 'asc']).all();
    const current = consents.find((k) => k.id === call.consent_id) ?? consents[consents.length - 1];
    const policy = current ? this.q.from('consent_policies').where({ id: current.policy_id }).first() : undefined;
    const recordings = this.q.from('recordings').where({ call_id: callId }).orderBy(['started_at', 'asc'], ['id', 'asc']).all();
    const actions = this.q.from('agent_actions').where({ call_id: callId }).orderBy(['created_at', 'asc'], ['id', 'asc']).all();
    const state = this.q.from('agent_state').where({ call_id: callId }).orderBy(['call_id', 'asc']).first();
    const node = call.owner_node === null ? undefined : this.q.from('nodes').where({ id: call.owner_node }).first();
    return {
      content,
      call,
      owner: call.owner_node === null ? null : { node: call.owner_node, state: node?.state ?? null },
      legs: this.q.from('legs').where({ call_id: callId }).orderBy(['connected_at', 'asc'], ['id', 'asc']).all(),
      consents: consents.map((k) => (content ? k : { ...k, evidence: null })),
      policy: policy ? { id: policy.id, name: policy.name, version: policy.version, mode: policy.mode, disclosure_text: policy.disclosure_text } : null,
      recordings: recordings.map(({ uri: _uri, ...rest }) => rest),
      transcript: this.segments(callId).map((s) => (content ? s : { ...s, text: null })),
      agent_actions: actions.map((a) => (content ? a : { ...a, args: null, result: null })),
      agent_state: state ? { ...state, state: content ? state.state : null } : null,
      timeline: this.timeline(callId, content),
    };
  }

  /** The call's transcript segments by start time, or null when the call is not this tenant's. */
  transcript(callId: string): Segment[] | null {
    return this.call(callId) ? this.segments(callId) : null;
  }

  private call(callId: string): CallRow | undefined {
    return this.q.from('calls').where({ id: callId }).first();
  }

  private segments(callId: string): Segment[] {
    return this.q.from('transcript_segments').where({ call_id: callId }).orderBy(['start_ms', 'asc'], ['end_ms', 'asc'], ['id', 'asc']).all();
  }

  private timeline(callId: string, content: boolean): TimelineEntry[] {
    // Log order is commit order; command times (the submitting node's clock) sort the timeline.
    return this.q.events(CALL_EVENTS, callId).map((ev) => toEntry(ev, content)).sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}
