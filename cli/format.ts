/**
 * What the CLI's API commands print: human tables by default (aligned columns, ISO-8601 UTC times, `-` for
 * nothing), one JSON object per line for lists with `--json`. The shapes are the API's (cli/remote.ts's client
 * returns them); nothing here talks to the network.
 */
import type { AccessEntry, AgentView, CallDetail, CallSummary, NumberView, TimelineEntry, UserView } from './remote.ts';

type Cell = string | number | boolean | null | undefined;

const cell = (v: Cell): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/** ISO-8601 UTC for ms since the epoch (or an ISO string, unchanged); `-` for none. */
export function isoTime(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return '-';
  return typeof v === 'number' ? new Date(v).toISOString() : v;
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(headers: readonly string[], rows: readonly Cell[][]): string {
  const text = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => [...(r[i] ?? '')].length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))).join('  ').trimEnd()).join('\n');
}

/** One JSON object per line. */
export const jsonLines = (rows: readonly unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n');

const seconds = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);
const offset = (ms: number): string => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${((ms % 60_000) / 1000).toFixed(1).padStart(4, '0')}`;
const plural = (n: number, word: string, words = `${word}s`): string => `${n} ${n === 1 ? word : words}`;

function short(v: unknown, max = 60): string {
  const s = typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function formatCalls(calls: readonly CallSummary[], more: boolean): string {
  const rows = calls.map((c) => [c.id, isoTime(c.received_at), c.state, c.provider, c.from, c.to, c.agent, c.consent, c.recorded ? 'yes' : 'no', c.end_reason]);
  const head = rows.length > 0 ? `${table(['id', 'received', 'state', 'provider', 'from', 'to', 'agent', 'consent', 'rec', 'end'], rows)}\n` : '';
  return `${head}${rows.length} call(s)${more ? ' (more match: raise --limit or narrow with --since/--state/--agent)' : ''}`;
}

export function formatTimeline(timeline: readonly TimelineEntry[]): string {
  const rows = timeline.map((e) => [isoTime(e.at), e.seq, e.kind, e.by, e.ok ? 'ok' : `rejected: ${e.error ?? '?'}`, Object.entries(e.detail).map(([k, v]) => `${k}=${short(v)}`).join(' ')]);
  return `${rows.length > 0 ? `${table(['at', 'seq', 'event', 'by', 'result', 'detail'], rows)}\n` : ''}${plural(rows.length, 'event')}`;
}

export function formatCallDetail(d: CallDetail): string {
  const c = d.call;
  const out: string[] = [
    `call ${c.id}  ${c.state}${c.end_reason ? ` (${c.end_reason})` : ''}`,
    table(
      ['field', 'value'],
      [
        ['provider', `${c.provider} ${c.direction} ${c.provider_call_id}`],
        ['from', c.from_uri],
        ['to', c.to_uri],
        ['agent', c.agent ? `${c.agent}${c.agent_version ? ` ${c.agent_version}` : ''}` : null],
        ['received', isoTime(c.received_at)],
        ['answered', isoTime(c.answered_at)],
        ['ended', isoTime(c.ended_at)],
      ],
    )
      .split('\n')
      .slice(1)
      .map((l) => `  ${l}`)
      .join('\n'),
  ];
  const consent = d.consents.find((k) => k.id === c.consent_id) ?? d.consents[d.consents.length - 1];
  const policy = d.policy ? `policy ${d.policy.name} v${d.policy.version}, ${d.policy.mode}` : 'no policy';
  out.push('', consent ? `consent: ${consent.outcome}${consent.method ? ` via ${consent.method}` : ''} (${policy}) decided ${isoTime(consent.decided_at)}` : 'consent: none');
  const indent = (s: string): string => s.split('\n').map((l) => `  ${l}`).join('\n');
  if (d.recordings.length > 0) {
    const rows = d.recordings.map((r) => [r.id, r.status, r.format, seconds(r.duration_ms), r.bytes, r.legal_hold ? 'yes' : 'no', r.sha256]);
    out.push('', 'recordings:', indent(table(['id', 'status', 'format', 'duration', 'bytes', 'hold', 'sha256'], rows)));
  } else out.push('', 'recordings: none');
  out.push('', `transcript: ${plural(d.transcript.length, 'segment')}${d.content ? '' : ' (text withheld: this role may not read content)'}`);
  for (const s of d.transcript) out.push(`  [${offset(s.start_ms)}] ${s.channel.padEnd(6)}  ${s.text ?? '(withheld)'}`);
  if (d.agent_actions.length > 0) {
    const rows = d.agent_actions.map((a) => [a.id, a.kind, a.status, isoTime(a.created_at), a.args === null ? null : short(a.args), a.result === null ? null : short(a.result)]);
    out.push('', 'agent actions:', indent(table(['id', 'kind', 'status', 'created', 'args', 'result'], rows)));
  } else out.push('', 'agent actions: none');
  out.push('', 'timeline:', indent(formatTimeline(d.timeline)));
  return out.join('\n');
}

export function formatUsers(users: readonly UserView[]): string {
  const rows = users.map((u) => [u.id, u.email, u.role, u.has_password ? 'yes' : 'no', u.disabled ? 'yes' : 'no', u.created_at]);
  return `${rows.length > 0 ? `${table(['id', 'email', 'role', 'password', 'disabled', 'created'], rows)}\n` : ''}${plural(rows.length, 'user')}`;
}

export function formatNumbers(numbers: readonly NumberView[]): string {
  const rows = numbers.map((n) => [n.id, n.number, n.agent, n.provider ?? 'any', n.consent_policy_id ?? '(tenant default)', n.created_at]);
  return `${rows.length > 0 ? `${table(['id', 'number', 'agent', 'provider', 'consent policy', 'created'], rows)}\n` : ''}${plural(rows.length, 'number')}`;
}

export function formatAgents(agents: readonly AgentView[]): string {
  const rows = agents.map((a) => [a.paused ? `${a.name} (paused)` : a.name, a.live_calls, a.versions.map((v) => `${v.version} ${v.status}${v.status === 'live' ? ` ${v.rollout}%` : ''}${v.live_calls ? ` (${v.live_calls} live)` : ''}`).join(', '), a.numbers.join(', ')]);
  return `${rows.length > 0 ? `${table(['name', 'live calls', 'versions', 'numbers'], rows)}\n` : ''}${plural(rows.length, 'agent')}`;
}

export function formatAccessLog(entries: readonly AccessEntry[]): string {
  const rows = entries.map((e) => [e.at, e.action, e.user_id, e.call_id, e.target_id, e.detail, e.reason, e.remote]);
  return `${rows.length > 0 ? `${table(['at', 'action', 'user', 'call', 'target', 'detail', 'purpose', 'remote'], rows)}\n` : ''}${plural(rows.length, 'access', 'accesses')}`;
}
