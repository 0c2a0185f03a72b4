/**
 * `WS /v1/subscribe`: the store's subscription engine over a WebSocket.
 *
 * Authentication, in this order of preference:
 * - a bearer header on the upgrade (`Authorization: Bearer …`);
 * - the token in the socket's **first message**, `{type:'auth', token}`, for
 *   clients that cannot set headers (browsers): the upgrade is accepted
 *   without credentials, the server answers `{type:'authenticated'}`, and
 *   anything else first — or nothing within 10 s — closes the socket (4401);
 *   at most 256 such sockets wait at once per node: the next upgrade without
 *   credentials is refused with 503 (a flood of idle sockets cannot hold the
 *   node's descriptors), until one authenticates or closes;
 *   sent first on a socket the upgrade authenticated, it switches it to that token;
 * - the console's session cookie, only when the upgrade's `Origin` (or
 *   `Sec-Fetch-Site: same-origin`) is the gateway's own: another site's page
 *   opening a socket with the visitor's cookie (cross-site WebSocket
 *   hijacking) is refused with 403;
 * - `?token=` in the URL: deprecated (URLs end up in logs and histories),
 *   kept for existing clients; use the first message instead.
 * The tenant comes from that session and is injected into every subscription — a client cannot name
 * another tenant. Tables are offered by permission: content tables
 * (transcripts, agent actions and state) need `content:read`, the access log
 * `access_log:read`; identities (users, tokens, lockouts) are never offered,
 * and a recording's blob uri is never sent.
 *
 *   client → {type:'auth', token} (first, when the upgrade had no credentials)
 *          | {type:'subscribe', id, table, filter?, since?} | {type:'unsubscribe', id} | {type:'ping'}
 *   server → {type:'authenticated'} | {type:'snapshot', id, seq, rows} then {type:'delta', id, seq, op, old, new}
 *          | {type:'unsubscribed', id} | {type:'pong'} | {type:'error', id?, code, message}
 *
 * Resuming: `since` is a seq the client saw (a snapshot's, a delta's or a `resumed`'s — each says the seq it is
 * current to). The gateway sends the deltas committed after it that match the filter, in order, then
 * `{type:'resumed', id, seq, since, deltas}` (seq: the head they bring the client to), then live deltas; or, when its
 * change journal no longer covers `since` (store/changes.ts) or it holds more changes than a snapshot costs, a fresh
 * `{type:'snapshot', …, resumed: false, reason: 'too_old' | 'too_many_changes'}`. A `since` that is not a
 * non-negative integer, or beyond this node's head, is answered `{type:'error', id, code:'invalid_since'}` and the
 * socket goes on serving. The tenant filter applies to the replayed deltas exactly as to live ones.
 *
 * Revoking the session's token closes the socket (4401). A client that does
 * not read is dropped (1013) once 8 MiB are queued for it. A token that does
 * not resolve closes a first-message socket with 4401, one whose role may not
 * subscribe with 4403.
 *
 * Scoped grants: a token that is not an API session may still be accepted by a
 * resolver another module registers (`addGrantResolver`) — e.g. a WebRTC
 * softphone's session token, which reads its own call and nothing else. Such a
 * socket is offered only the grant's tables, each subscription's filter is
 * forced to the grant's (the client cannot widen it), reading content first
 * commits the grant's audit row, and the socket closes (4401) at expiry.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { LazyWebSocketServer } from '../http/ws-server.ts';
import { z } from 'zod';
import { can, type Permission, type SwitchboardTables } from '../schema/index.ts';
import type { Row } from '../store/accessor.ts';
import type { Delta, Filter, Snapshot } from '../store/index.ts';
import { presentedToken, resolveToken, SESSION_COOKIE, type Principal } from './auth/principal.ts';
import type { ApiContext } from './context.ts';
import { isSameOrigin } from './request-guard.ts';
import { refuseUpgrade, type HttpServer } from '../http/server.ts';
import { guardMessages } from '../http/ws-guard.ts';
import type { GrantResolver, ScopedGrant } from '../http/grants.ts';

/** Which permission each subscribable table needs. */
export const SUBSCRIBABLE: Readonly<Record<string, Permission>> = {
  calls: 'calls:read',
  legs: 'calls:read',
  consents: 'calls:read',
  recordings: 'calls:read',
  numbers: 'numbers:read',
  consent_policies: 'policies:read',
  agent_versions: 'agents:read',
  transcript_segments: 'content:read',
  agent_actions: 'content:read',
  agent_state: 'content:read',
  access_log: 'access_log:read',
  tool_approvals: 'tools:approve',
  tool_policies: 'tools:policy',
  campaigns: 'calls:read',
  campaign_numbers: 'calls:read',
  campaign_attempts: 'calls:read',
  dnc_numbers: 'calls:read',
};

const FilterValue = z.union([z.string().max(500), z.number(), z.boolean(), z.null()]);
const ClientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('subscribe'),
    id: z.string().min(1).max(100),
    table: z.string().min(1).max(64),
    filter: z.record(z.string().max(64), z.union([FilterValue, z.array(FilterValue).max(100)])).default({}),
    /** Checked after parsing (sinceError), so a bad one is answered with the subscription's id. */
    since: z.unknown().optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), id: z.string().min(1).max(100) }),
  z.object({ type: z.literal('ping') }),
]);

export type { GrantResolver, ScopedGrant } from '../http/grants.ts';

/** Who a socket reads as: an API principal or a scoped grant. */
interface Access {
  tenant: string;
  principal: Principal | null;
  grant: ScopedGrant | null;
}

const MAX_SUBSCRIPTIONS = 100;

/** Why a `since` cannot be resumed from, or null when it is a seq (whether this node has reached it is checked later). */
function sinceError(since: unknown): string | null {
  if (since === undefined) return null;
  if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
    return `since must be a seq this socket delivered (a non-negative integer), got ${JSON.stringify(since) ?? String(since)}`;
  }
  return null;
}
const MAX_BUFFERED = 8 * 1024 * 1024;

function scrub(table: string, row: Row | null): Row | null {
  if (!row) return row;
  const { tenant: _t, ...rest } = row;
  if (table === 'recordings') delete rest.uri;
  return rest;
}

/** The cookies of an upgrade request (a malformed percent-escape keeps the raw value). */
function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const raw = part.slice(i + 1).trim();
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(raw);
    } catch {
      out[part.slice(0, i).trim()] = raw;
    }
  }
  return out;
}

/** How long a socket opened without credentials may take to send `{type:'auth'}`. */
const AUTH_TIMEOUT_MS = 10_000;
/** How many sockets may wait for their first-message auth at once (per node); more are refused with 503. */
export const MAX_AWAITING_AUTH = 256;
const AuthMessage = z.strictObject({ type: z.literal('auth'), token: z.string().min(1).max(4096) });

type Resolved = { ok: true; access: Access } | { ok: false; status: 401 | 403; message: string };

export function mountSubscriptions(http: HttpServer, ctx: ApiContext): { close(): void; addGrantResolver(resolver: GrantResolver): void } {
  // ws is imported by the first subscription socket (or the adapters' warm-up), not at start (http/ws-server.ts).
  const wss = new LazyWebSocketServer({ maxPayload: 64 * 1024 });
  const wsUnavailable = (socket: Duplex) => (err: unknown): void => {
    ctx.logger.error({ err }, 'loading the ws package failed');
    refuseUpgrade(socket, 503, 'WebSocket support is not available');
  };
  const resolvers: GrantResolver[] = [];
  const publicOrigin = new URL(ctx.publicUrl).origin;
  /** Sockets accepted without credentials that have not yet sent `{type:'auth'}` (capped at MAX_AWAITING_AUTH). */
  let awaitingAuth = 0;

  /** Who `token` reads as: an API session that may subscribe, or a scoped grant. */
  function resolveAccess(token: string): Resolved {
    const principal = resolveToken(ctx, token);
    if (principal) {
      if (!can(principal.role, 'subscribe')) return { ok: false, status: 403, message: `role ${principal.role} may not subscribe` };
      return { ok: true, access: { tenant: principal.tenant, principal, grant: null } };
    }
    const grant = resolvers.reduce<ScopedGrant | null>((g, r) => g ?? r(token), null);
    if (!grant) return { ok: false, status: 401, message: 'the token is unknown, revoked or expired' };
    return { ok: true, access: { tenant: grant.tenant, principal: null, grant } };
  }

  http.onUpgrade('/v1/subscribe', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    const cookie = cookies(req.headers.cookie)[SESSION_COOKIE];
    // Explicit credentials first (header, then the deprecated query form), the ambient cookie last.
    const bearer = typeof req.headers.authorization === 'string' ? presentedToken({ headers: req.headers }) : null;
    if (typeof req.headers.authorization === 'string' && !bearer) return refuseUpgrade(socket, 401, 'Authorization must be: Bearer <token>');
    const token = bearer ?? query ?? cookie ?? null;
    if (token === null) {
      if (awaitingAuth >= MAX_AWAITING_AUTH) {
        return refuseUpgrade(socket, 503, `${MAX_AWAITING_AUTH} sockets are already waiting to authenticate; send the token in the Authorization header, or retry`);
      }
      return wss.handleUpgrade(req, socket, head, (ws) => serve(ws, null), wsUnavailable(socket));
    }
    const byCookie = bearer === null && query === null;
    if (byCookie && !isSameOrigin(req.headers, publicOrigin)) {
      return refuseUpgrade(socket, 403, 'a socket signed in with the console session cookie must be opened by the console itself (Origin); other clients send {"type":"auth","token":...} first');
    }
    const resolved = resolveAccess(token);
    if (!resolved.ok) return refuseUpgrade(socket, resolved.status, resolved.message);
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, resolved.access), wsUnavailable(socket));
  });

  /** The filter a subscription runs with, or why it is refused. */
  function scope(access: Access, table: string, filter: Filter): { ok: true; filter: Filter } | { ok: false; code: string; message: string } {
    const permission = Object.hasOwn(SUBSCRIBABLE, table) ? SUBSCRIBABLE[table] : undefined;
    if (!permission) return { ok: false, code: 'unknown_table', message: `no subscribable table ${table}` };
    if (access.grant) {
      const forced = Object.hasOwn(access.grant.tables, table) ? access.grant.tables[table] : undefined;
      if (!forced) return { ok: false, code: 'forbidden', message: `this session may not read ${table}` };
      return { ok: true, filter: { ...filter, ...forced } };
    }
    const role = access.principal?.role;
    if (!role || !can(role, permission)) return { ok: false, code: 'forbidden', message: `role ${String(role)} may not read ${table}` };
    return { ok: true, filter };
  }

  /**
   * Serves one socket: `initial` when the upgrade authenticated it, else null
   * until its first message `{type:'auth', token}` does (see the header).
   */
  function serve(ws: WebSocket, initial: Access | null): void {
    let session = initial ? open(ws, initial) : null;
    let first = true;
    const timer = initial ? null : setTimeout(() => ws.close(4401, 'send {"type":"auth","token":...} first'), AUTH_TIMEOUT_MS);
    timer?.unref();
    let waiting = !initial;
    if (waiting) awaitingAuth++;
    /** This socket no longer waits for its first-message auth (authenticated, refused or closed). */
    const settle = (): void => {
      if (!waiting) return;
      waiting = false;
      awaitingAuth--;
    };
    const end = (): void => {
      if (timer) clearTimeout(timer);
      settle();
      session?.close();
    };
    ws.on('close', end);
    ws.on('error', end);
    // Guarded: an exception in handling one message closes this socket (1011), never the process (http/ws-guard.ts).
    const failed = (err: unknown): void => ctx.logger.error({ err }, 'subscription message handler failed: socket closed (1011)');
    ws.on('message', guardMessages(ws, failed, (data, isBinary) => {
      let raw: unknown;
      try {
        raw = isBinary ? undefined : JSON.parse(data.toString());
      } catch {
        raw = undefined;
      }
      const wasFirst = first;
      first = false;
      const auth = AuthMessage.safeParse(raw);
      if (auth.success) {
        if (!wasFirst) return session?.send({ type: 'error', code: 'invalid_message', message: 'auth is only taken as the first message' });
        const resolved = resolveAccess(auth.data.token);
        if (!resolved.ok) return ws.close(resolved.status === 403 ? 4403 : 4401, resolved.message);
        if (timer) clearTimeout(timer);
        settle();
        session?.close();
        session = open(ws, resolved.access);
        return session.send({ type: 'authenticated' });
      }
      if (!session) return ws.close(4401, 'send {"type":"auth","token":...} first');
      session.handle(raw);
    }));
  }

  /** The subscriptions of an authenticated socket: `handle` takes each parsed client message, `close` ends them. */
  function open(ws: WebSocket, access: Access): { send(msg: unknown): void; handle(raw: unknown): void; close(): void } {
    const subs = new Map<string, () => void>();
    let closed = false;
    const send = (msg: unknown): void => {
      if (closed || ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED) {
        ws.close(1013, 'subscriber too slow');
        return;
      }
      ws.send(JSON.stringify(msg));
    };
    const principal = access.principal;
    let revocation: () => void;
    if (principal) {
      // The session's own token: revoked or expired → the socket closes.
      revocation = ctx.store.subscribe('api_tokens', { id: principal.tokenId }, principal.tenant, (d) => {
        if (d.new && (d.new as { revoked_at: number | null }).revoked_at !== null) ws.close(4401, 'token revoked');
      }).unsubscribe;
    } else {
      const timer = setTimeout(() => ws.close(4401, 'grant expired'), Math.max(0, Math.min(2 ** 31 - 1, (access.grant?.expiresAt ?? 0) - Date.now())));
      timer.unref();
      revocation = () => clearTimeout(timer);
    }
    const close = (): void => {
      if (closed) return;
      closed = true;
      for (const off of subs.values()) off();
      subs.clear();
      revocation();
    };
    const handle = (raw: unknown): void => {
      const parsed = ClientMessage.safeParse(raw);
      if (!parsed.success) {
        const message = raw === undefined ? 'messages are JSON text' : parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
        return send({ type: 'error', code: 'invalid_message', message });
      }
      const msg = parsed.data;
      if (msg.type === 'ping') return send({ type: 'pong' });
      if (msg.type === 'unsubscribe') {
        subs.get(msg.id)?.();
        subs.delete(msg.id);
        return send({ type: 'unsubscribed', id: msg.id });
      }
      const scoped = scope(access, msg.table, msg.filter as Filter);
      if (!scoped.ok) return send({ type: 'error', id: msg.id, code: scoped.code, message: scoped.message });
      if (subs.has(msg.id)) return send({ type: 'error', id: msg.id, code: 'duplicate_id', message: `subscription ${msg.id} exists` });
      if (subs.size >= MAX_SUBSCRIPTIONS) return send({ type: 'error', id: msg.id, code: 'too_many', message: `at most ${MAX_SUBSCRIPTIONS} subscriptions per socket` });
      if ('tenant' in msg.filter) return send({ type: 'error', id: msg.id, code: 'invalid_filter', message: 'the tenant comes from your session' });
      const badSince = sinceError(msg.since);
      if (badSince) return send({ type: 'error', id: msg.id, code: 'invalid_since', message: badSince });
      const since = msg.since as number | undefined;
      const start = (): void => {
        if (closed || subs.has(msg.id)) return;
        try {
          const table = msg.table as keyof SwitchboardTables & string;
          // sealed content (recording/content-seal.ts) is opened with the keys this node holds in memory
          const opened = (r: Row | null): Row | null => scrub(msg.table, ctx.content ? ctx.content.openRowCached(msg.table, r) : r);
          const delta = (d: Delta): void => send({ type: 'delta', id: msg.id, seq: d.seq, op: d.op, old: opened(d.old), new: opened(d.new) });
          const snapshot = (s: Snapshot, extra: object): void => send({ type: 'snapshot', id: msg.id, seq: s.seq, rows: s.rows.map((r) => opened(r)), ...extra });
          if (since === undefined) {
            const sub = ctx.store.subscribe(table, scoped.filter, access.tenant, delta);
            subs.set(msg.id, sub.unsubscribe);
            return snapshot(sub.snapshot, {});
          }
          const r = ctx.store.resume(table, scoped.filter, access.tenant, delta, since);
          if (r.kind === 'beyond_head') {
            return send({ type: 'error', id: msg.id, code: 'invalid_since', message: `since ${since} is beyond this node's head (${r.head}): subscribe without since for a snapshot` });
          }
          subs.set(msg.id, r.unsubscribe);
          if (r.kind === 'snapshot') return snapshot(r.snapshot, { resumed: false, reason: r.reason });
          for (const d of r.deltas) delta(d);
          send({ type: 'resumed', id: msg.id, seq: r.seq, since, deltas: r.deltas.length });
        } catch (err) {
          send({ type: 'error', id: msg.id, code: 'invalid_filter', message: (err as Error).message });
        }
      };
      const audit = access.grant?.audit;
      if (!audit || SUBSCRIBABLE[msg.table] !== 'content:read') return start();
      // a call's content: its key is fetched first, so the snapshot and the deltas open without waiting
      const callId = (msg.filter as Record<string, unknown>).call_id;
      const keyed = (): Promise<unknown> => (ctx.content && typeof callId === 'string' ? ctx.content.keyring.get({ tenant: access.tenant, callId }).catch(() => null) : Promise.resolve(null));
      audit(msg.table).then(keyed).then(start, (err: unknown) => send({ type: 'error', id: msg.id, code: 'forbidden', message: (err as Error).message }));
    };
    return { send, handle, close };
  }

  return {
    close: () => {
      for (const ws of wss.clients) ws.close(1001, 'gateway stopping');
      wss.close();
    },
    addGrantResolver: (resolver) => void resolvers.push(resolver),
  };
}
