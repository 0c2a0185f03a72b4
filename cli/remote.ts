/**
 * The CLI's side of a running gateway's HTTP API (CONTRACT "Compliance and
 * control API"): where to connect (`--url`/`SWITCHBOARD_URL`, bearer token
 * from `--token`/`SWITCHBOARD_TOKEN`), a small typed client over `fetch`, and
 * the shapes it returns (what each command prints is in cli/format.ts).
 *
 * Errors: a usage problem (no URL, no token, a malformed URL) is a
 * `UsageError` (exit 2); an API error body `{ error: { code, message } }`
 * becomes an `ApiError` whose message is `HTTP <status> <code>: <message>`;
 * a gateway that cannot be reached is an `UnreachableError` naming the URL
 * (both exit 1).
 *
 * Response bodies are trusted to have the API's shapes (same repository, same
 * version); they are not re-validated here.
 */
import type { CallDetail, CallSummary, TimelineEntry } from '../api/queries/calls.ts';
import { clientSettings } from './config/client.ts';

export type { CallDetail, CallSummary, TimelineEntry };

/** A command-line or environment problem; the CLI exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The API answered with an error status; the CLI exits 1. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(`HTTP ${status} ${code}: ${detail}`);
  }
}

/** No HTTP answer at all (refused, DNS, timeout); the CLI exits 1. */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

// ── where to connect ─────────────────────────────────────────────────────────

export interface RemoteFlags {
  url?: string;
  token?: string;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** The gateway base URL from `--url` or SWITCHBOARD_URL (no trailing slash), or undefined when neither is set. */
export function gatewayUrl(flags: RemoteFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = nonEmpty(flags.url) ?? clientSettings(env).url;
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url/SWITCHBOARD_URL: not a URL: ${JSON.stringify(raw)} (e.g. http://localhost:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url/SWITCHBOARD_URL: must be http:// or https:// (got ${url.protocol})`);
  return url.href.replace(/\/+$/, '');
}

/**
 * A client for `command`, which needs the API: exits 2 (UsageError) without
 * a URL, or without a token unless `anonymous` (login).
 */
export function connect(command: string, flags: RemoteFlags, opts: { anonymous?: boolean; env?: NodeJS.ProcessEnv } = {}): ApiClient {
  const env = opts.env ?? process.env;
  const url = gatewayUrl(flags, env);
  if (url === undefined) throw new UsageError(`${command} talks to a running gateway: pass --url URL or set SWITCHBOARD_URL (e.g. http://localhost:8080)`);
  const token = nonEmpty(flags.token) ?? clientSettings(env).token ?? null;
  if (token === null && !opts.anonymous) throw new UsageError(`${command}: no API token: set SWITCHBOARD_TOKEN or pass --token (get one with \`switchboard login --email EMAIL\`)`);
  return new ApiClient(url, opts.anonymous ? null : token);
}

// ── response shapes (api/routes/admin.ts, api/routes/auth.ts) ───────────────

export interface UserView {
  id: string;
  email: string;
  role: string;
  disabled: boolean;
  has_password: boolean;
  created_at: string;
}

export interface CreatedUser {
  id: string;
  email: string;
  role: string;
}

export interface NumberView {
  id: string;
  number: string;
  agent: string;
  provider: string | null;
  consent_policy_id: string | null;
  created_at: string;
}

export interface CreatedNumber {
  id: string;
  number: string;
  agent: string;
  consent_policy_id: string | null;
  /** E.g. the agent is not deployed in this tenant yet (calls get the default agent until it is). */
  warnings?: string[];
}

export interface DeployedVersion {
  name: string;
  version: string;
  status: string;
  rollout: number;
  migrate: boolean;
  sha256: string;
}

export interface AgentView {
  name: string;
  versions: Array<{ version: string; sha256: string; rollout: number; status: string; created_at: string; live_calls?: number; migrate?: boolean; error?: string | null }>;
  numbers: string[];
  live_calls: number;
  /** The open pause (older gateways: absent). */
  paused?: PauseView | null;
}

export interface PauseView {
  id: string;
  agent: string;
  reason: string;
  keep_live: boolean;
  paused_by: string;
  paused_at: string;
  resumed_by: string | null;
  resumed_at: string | null;
}

export interface AccessEntry {
  id: string;
  user_id: string;
  action: string;
  call_id: string;
  target_id: string;
  detail: string | null;
  reason: string | null;
  remote: string | null;
  at: string;
}

export interface LoginResult {
  token: string;
  token_id: string;
  expires_at: string;
  user: { id: string; email: string; role: string; tenant: string };
}

/** `GET /v1/calls` filters as the CLI passes them: raw text, checked by the server (its 400 names the parameter). */
export interface DialedCall {
  call_id: string;
  state: string;
  direction: 'outbound';
  from: string;
  to: string;
  provider: string | null;
  provider_call_id: string;
  /** SIP calls only. */
  sip_call_id?: string;
}

export interface CallsQuery {
  since?: string;
  until?: string;
  state?: string;
  agent?: string;
  q?: string;
  limit?: string;
}

type Query = Record<string, string | undefined>;

/** The server's largest page (api/queries/calls.ts MAX_LIMIT). */
const MAX_PAGE = 200;

// ── the client ───────────────────────────────────────────────────────────────

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
    private readonly timeoutMs = 30_000,
  ) {}

  /** One JSON request; a non-2xx answer throws ApiError, no answer throws UnreachableError. */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
    if (this.token !== null) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await res.text();
    let body: unknown = undefined;
    if (text.length > 0 && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (error && typeof error.code === 'string') throw new ApiError(res.status, error.code, typeof error.message === 'string' ? error.message : '');
      throw new ApiError(res.status, res.statusText.toLowerCase().replace(/\s+/g, '_') || 'error', text.slice(0, 200).trim() || '(empty body)');
    }
    if (body === undefined) throw new ApiError(res.status, 'not_json', `${method} ${path} answered ${res.headers.get('content-type') ?? 'no content type'}, not JSON: is ${this.baseUrl} a Switchboard gateway?`);
    return body as T;
  }

  private unreachable(err: unknown): UnreachableError {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      return new UnreachableError(`no answer from ${this.baseUrl} within ${Math.round(this.timeoutMs / 1000)}s`);
    }
    const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
    const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err);
    return new UnreachableError(`cannot reach the gateway at ${this.baseUrl} (${why}): is it running, and are --url/SWITCHBOARD_URL right?`);
  }

  /**
   * Calls, newest first. A numeric `limit` above one page follows
   * `next_cursor` until it has that many; `more` says whether calls beyond
   * what was returned match.
   */
  async calls(filter: CallsQuery): Promise<{ calls: CallSummary[]; more: boolean }> {
    const { limit, ...rest } = filter;
    const wanted = limit !== undefined && /^\s*\d+\s*$/.test(limit) ? Number(limit) : undefined;
    if (wanted === undefined || wanted <= MAX_PAGE) {
      const page = await this.request<{ calls: CallSummary[]; next_cursor: string | null }>('GET', '/v1/calls', { query: { ...rest, limit } });
      return { calls: page.calls, more: page.next_cursor !== null };
    }
    const calls: CallSummary[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.request<{ calls: CallSummary[]; next_cursor: string | null }>('GET', '/v1/calls', {
        query: { ...rest, limit: String(Math.min(MAX_PAGE, wanted - calls.length)), cursor },
      });
      calls.push(...page.calls);
      if (page.next_cursor === null) return { calls, more: false };
      if (calls.length >= wanted) return { calls, more: true };
      cursor = page.next_cursor;
    }
  }

  /** One call's detail. For roles that read content this is an audited retrieval (an access-log row); `purpose` is recorded with it. */
  call(id: string, purpose?: string): Promise<CallDetail> {
    return this.request<CallDetail>('GET', `/v1/calls/${encodeURIComponent(id)}`, { headers: purpose ? { 'x-switchboard-purpose': purpose } : {} });
  }

  /** Places an outbound call (POST /v1/calls): 202 once the call row exists, still ringing. */
  dial(body: { from: string; to: string; agent?: string; amd?: { enabled: boolean; default?: string; timeoutMs?: number } }): Promise<DialedCall> {
    return this.request<DialedCall>('POST', '/v1/calls', { body });
  }

  /** One call's summary from the list (no content, so no access-log row): for following a call's state. */
  async callSummary(id: string, since: number): Promise<CallSummary | undefined> {
    const page = await this.request<{ calls: CallSummary[] }>('GET', '/v1/calls', { query: { since: String(since), limit: String(MAX_PAGE) } });
    return page.calls.find((c) => c.id === id);
  }

  async users(): Promise<UserView[]> {
    return (await this.request<{ users: UserView[] }>('GET', '/v1/users')).users;
  }

  addUser(body: { email: string; role: string; password?: string }): Promise<CreatedUser> {
    return this.request<CreatedUser>('POST', '/v1/users', { body });
  }

  async numbers(): Promise<NumberView[]> {
    return (await this.request<{ numbers: NumberView[] }>('GET', '/v1/numbers')).numbers;
  }

  /** A paused agent's fallback for the number with id `numberId`, or the tenant's default (null). */
  setFallback(numberId: string | null, body: { kind: string; target?: string; message?: string }): Promise<{ number_id: string | null; kind: string; target: string | null; message: string | null }> {
    return this.request('PUT', numberId === null ? '/v1/fallback' : `/v1/numbers/${encodeURIComponent(numberId)}/fallback`, { body });
  }

  addNumber(body: { number: string; agent: string; consent_policy?: string; provider?: string }): Promise<CreatedNumber> {
    return this.request<CreatedNumber>('POST', '/v1/numbers', { body });
  }

  async agents(): Promise<AgentView[]> {
    return (await this.request<{ agents: AgentView[] }>('GET', '/v1/agents')).agents;
  }

  /** Uploads a bundled agent; resolves once its init ran and it is live (422 deploy_failed otherwise). */
  deploy(name: string, code: string, opts: { rollout?: string; migrate?: boolean }): Promise<DeployedVersion> {
    return this.request<DeployedVersion>('POST', `/v1/agents/${encodeURIComponent(name)}/deploy`, {
      body: { code, ...(opts.rollout !== undefined ? { rollout: Number(opts.rollout) } : {}), ...(opts.migrate ? { migrate: true } : {}) },
    });
  }

  rollback(name: string): Promise<{ name: string; from: string; to: string }> {
    return this.request('POST', `/v1/agents/${encodeURIComponent(name)}/rollback`, { body: {} });
  }

  pause(name: string, body: { reason?: string; keep_live?: boolean }): Promise<PauseView> {
    return this.request<PauseView>('POST', `/v1/agents/${encodeURIComponent(name)}/pause`, { body });
  }

  resume(name: string): Promise<PauseView> {
    return this.request<PauseView>('POST', `/v1/agents/${encodeURIComponent(name)}/resume`, { body: {} });
  }

  /** POST /v1/calls/:id/erase: the call's content destroyed (its keys named). */
  erase(callId: string, body: { reason: string; reference?: string }): Promise<{ call_id: string; erased_at: number; erased_by: string; keys: string[] }> {
    return this.request('POST', `/v1/calls/${encodeURIComponent(callId)}/erase`, { body });
  }

  /** POST /v1/erasures: every ended call of a subject's number erased. */
  eraseSubject(body: { subject: string; reason: string; reference?: string }): Promise<{ subject: string; erased: string[]; refused: Array<{ call_id: string; code: string; message: string }> }> {
    return this.request('POST', '/v1/erasures', { body });
  }

  async accessLog(query: { call_id?: string; since?: string; limit?: string }): Promise<AccessEntry[]> {
    return (await this.request<{ entries: AccessEntry[] }>('GET', '/v1/access-log', { query })).entries;
  }

  login(body: { email: string; password: string; tenant?: string }): Promise<LoginResult> {
    return this.request<LoginResult>('POST', '/v1/auth/login', { body });
  }
}
