/**
 * `WS /v1/subscribe`: the store's subscription engine over a WebSocket.
 *
 * The socket authenticates on upgrade (bearer header, session cookie, or
 * `?token=` for clients that cannot set headers); the tenant comes from that
 * session and is injected into every subscription — a client cannot name
 * another tenant. Tables are offered by permission: content tables
 * (transcripts, agent actions and state) need `content:read`, the access log
 * `access_log:read`; identities (users, tokens, lockouts) are never offered,
 * and a recording's blob uri is never sent.
 *
 *   client → {type:'subscribe', id, table, filter?} | {type:'unsubscribe', id} | {type:'ping'}
 *   server → {type:'snapshot', id, seq, rows} then {type:'delta', id, seq, op, old, new}
 *          | {type:'unsubscribed', id} | {type:'pong'} | {type:'error', id?, code, message}
 *
 * Revoking the session's token closes the socket (4401). A client that does
 * not read is dropped (1013) once 8 MiB are queued for it.
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
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { can, type Permission, type SwitchboardTables } from '../schema/index.ts';
import type { Row } from '../store/accessor.ts';
import type { Filter } from '../store/index.ts';
import { presentedToken, resolveToken, type Principal } from './auth/principal.ts';
import type { ApiContext } from './context.ts';
import { refuseUpgrade, type HttpServer } from './server.ts';
import { guardMessages } from './ws-guard.ts';

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
};

const FilterValue = z.union([z.string().max(500), z.number(), z.boolean(), z.null()]);
const ClientMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('subscribe'),
    id: z.string().min(1).max(100),
    table: z.string().min(1).max(64),
    filter: z.record(z.string().max(64), z.union([FilterValue, z.array(FilterValue).max(100)])).default({}),
  }),
  z.object({ type: z.literal('unsubscribe'), id: z.string().min(1).max(100) }),
  z.object({ type: z.literal('ping') }),
]);

/** A narrow, non-session read grant (see the header). */
export interface ScopedGrant {
  tenant: string;
  /** The only tables offered, each with the filter forced onto every subscription. */
  tables: Readonly<Record<string, Filter>>;
  expiresAt: number;
  /** Commits the access row before a content table's snapshot is sent; a rejection refuses the subscription. */
  audit?: (table: string) => Promise<void>;
}
export type GrantResolver = (token: string) => ScopedGrant | null;

/** Who a socket reads as: an API principal or a scoped grant. */
interface Access {
  tenant: string;
  principal: Principal | null;
  grant: ScopedGrant | null;
}

const MAX_SUBSCRIPTIONS = 100;
const MAX_BUFFERED = 8 * 1024 * 1024;

function scrub(table: string, row: Row | null): Row | null {
  if (!row) return row;
  const { tenant: _t, ...rest } = row;
  if (table === 'recordings') delete rest.uri;
  return rest;
}

function cookieToken(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

export function mountSubscriptions(http: HttpServer, ctx: ApiContext): { close(): void; addGrantResolver(resolver: GrantResolver): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const resolvers: GrantResolver[] = [];
  http.onUpgrade('/v1/subscribe', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const token = presentedToken({ headers: req.headers, cookies: cookieToken(req.headers.cookie) }) ?? url.searchParams.get('token');
    const principal = token ? resolveToken(ctx, token) : null;
    if (!principal) {
      const grant = token ? resolvers.reduce<ScopedGrant | null>((g, r) => g ?? r(token), null) : null;
      if (!grant) return refuseUpgrade(socket, 401, 'sign in: a bearer token, session cookie or ?token= is required');
      return wss.handleUpgrade(req, socket, head, (ws) => serve(ws, { tenant: grant.tenant, principal: null, grant }));
    }
    if (!can(principal.role, 'subscribe')) return refuseUpgrade(socket, 403, `role ${principal.role} may not subscribe`);
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, { tenant: principal.tenant, principal, grant: null }));
  });

  /** The filter a subscription runs with, or why it is refused. */
  function scope(access: Access, table: string, filter: Filter): { ok: true; filter: Filter } | { ok: false; code: string; message: string } {
    // Own keys only: a table named `constructor` must not find Object.prototype's members.
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

  function serve(ws: WebSocket, access: Access): void {
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
    const cleanup = (): void => {
      if (closed) return;
      closed = true;
      for (const off of subs.values()) off();
      subs.clear();
      revocation();
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
    ws.on('close', cleanup);
    ws.on('error', cleanup);
    const failed = (err: unknown): void => ctx.logger.error({ err }, 'subscription message handler failed: socket closed (1011)');
    ws.on('message', guardMessages(ws, failed, (data, isBinary) => {
      let raw: unknown;
      try {
        raw = isBinary ? undefined : JSON.parse(data.toString());
      } catch {
        raw = undefined;
      }
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
      const start = (): void => {
        if (closed || subs.has(msg.id)) return;
        try {
          const { snapshot, unsubscribe } = ctx.store.subscribe(msg.table as keyof SwitchboardTables & string, scoped.filter, access.tenant, (d) => {
            send({ type: 'delta', id: msg.id, seq: d.seq, op: d.op, old: scrub(msg.table, d.old), new: scrub(msg.table, d.new) });
          });
          subs.set(msg.id, unsubscribe);
          send({ type: 'snapshot', id: msg.id, seq: snapshot.seq, rows: snapshot.rows.map((r) => scrub(msg.table, r)) });
        } catch (err) {
          send({ type: 'error', id: msg.id, code: 'invalid_filter', message: (err as Error).message });
        }
      };
      const audit = access.grant?.audit;
      if (!audit || SUBSCRIBABLE[msg.table] !== 'content:read') return start();
      audit(msg.table).then(start, (err: unknown) => send({ type: 'error', id: msg.id, code: 'forbidden', message: (err as Error).message }));
    }));
  }

  return {
    close: () => {
      for (const ws of wss.clients) ws.close(1001, 'gateway stopping');
      wss.close();
    },
    addGrantResolver: (resolver) => void resolvers.push(resolver),
  };
}
