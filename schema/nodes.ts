/**
 * Nodes and call ownership (issue 15, "call ownership and failover"): who carries a call's media, and until when
 * no other node may take it. Everything here is decided by reducers, by command time (`ctx.now`), never by a
 * clock read elsewhere; so every node applying the log reaches the same verdicts.
 *
 *   nodes row (one per node)          calls row
 *   ┌──────────────────────────┐      ┌────────────────────────────┐
 *   │ id  state  lease_until   │◄─────│ owner_node                 │  the call's lease = its owner's lease_until
 *   └──────────────────────────┘      └────────────────────────────┘
 *
 *  - `node_heartbeat` (one command per node every lease/3, never one per call) renews the node's lease, and so
 *    the lease of every call it owns, in one row. The same command carries the verdict on the others: every
 *    other node whose lease ended before this command's time is marked `lost`.
 *    From log level 2 (schema/log-level.ts) its `down_reason` names the node whose heartbeat said so.
 *  - A call is claimed by `call_media_connected` (schema/calls/reducers.ts): a node claims a call when it
 *    terminates its media, at the call's start or on a resume (the node that received the call is its first
 *    owner, `call_received`, until media connects somewhere). `claimRefusal` refuses the claim while another node
 *    owns the call, its lease runs (it is not lost or stopped) and it may still be sending the call's media: of
 *    two claims racing for one call, the log's order lets exactly one win, the other is refused `call_owned`.
 *  - A node learns that it lost a call by applying the claim of the new owner (bridge/ownership.ts).
 *  - `node_drain_started` marks a node `draining` (it takes no new calls) and `node_stopped` marks it `stopped`
 *    with its lease ended, so whatever calls it still owned may be taken over at once (a handover).
 *
 * States: alive ─► draining ─► stopped; alive|draining ─► lost (lease expired, by another node's heartbeat);
 * a later heartbeat of the same node (it was only paused) makes it alive again, owning what nobody took.
 *
 * Older logs hold none of these commands: no nodes rows, so `claimRefusal` never refuses, and they replay as before.
 */
import { z } from 'zod';
import type { CallRow } from './calls/lifecycle.ts';
import { logLevel } from './log-level.ts';
import { defineReducer, type Ctx } from './reducer.ts';

/** Longest lease a node may ask for (10 minutes). */
export const MAX_LEASE_MS = 600_000;

type NodeRow = NonNullable<ReturnType<Ctx['db']['nodes']['get']>>;

/** True when `node` holds a running lease at `now`: no other node may take its calls. */
export function leaseRuns(node: NodeRow | undefined, now: number): boolean {
  if (!node || node.state === 'lost' || node.state === 'stopped') return false;
  return node.lease_until === null || node.lease_until > now;
}

/**
 * True while the owner may still be sending the call's media: the call's latest caller leg (the owner's: every
 * granted claim makes one) is connected, or was closed by another node's resume request (`call_resume_requested`
 * marks it `superseded: …`) rather than by the owner itself (`call_media_lost`, `call_ended`). A call whose media
 * never connected (received on one node, its media arriving at another) or whose owner said its media is gone is
 * free to be claimed.
 */
function ownerHoldsMedia(ctx: Ctx, call: CallRow): boolean {
  let latest: ReturnType<Ctx['db']['legs']['find']>[number] | undefined;
  for (const leg of ctx.db.legs.find({ call_id: call.id, kind: 'caller' })) if (!latest || leg.connected_at >= latest.connected_at) latest = leg;
  if (!latest) return false;
  return latest.state === 'connected' || (latest.disconnect_reason ?? '').startsWith('superseded: ');
}

/**
 * Why this command's node may not take `call`, or null: another node owns it, that node's lease runs (it is
 * neither lost nor stopped), and it may still be sending the call's media.
 */
export function claimRefusal(ctx: Ctx, call: CallRow): { code: string; message: string } | null {
  const owner = call.owner_node;
  if (owner === null || owner === ctx.node) return null;
  const row = ctx.db.nodes.get(owner);
  if (!leaseRuns(row, ctx.now) || !ownerHoldsMedia(ctx, call)) return null;
  const until = row?.lease_until === null || row === undefined ? 'no expiry' : `lease until ${row.lease_until} ms since epoch`;
  return { code: 'call_owned', message: `call ${call.id} is owned by node ${owner} (${until}); node ${ctx.node} may take it once that lease has expired or the node is marked lost` };
}

export const node_heartbeat = defineReducer(
  'node_heartbeat',
  z.object({
    /** How long this heartbeat keeps the node's calls its own; null = no expiry (embedded: the only node). */
    lease_ms: z.number().int().positive().max(MAX_LEASE_MS).nullable(),
    /** The gateway's version; since the log-level gate with `+log.N`, the log level its build supports (schema/log-level.ts). */
    version: z.string().min(1).max(100),
    /** The first heartbeat of a process: `started_at` is this command's time, and a drain or stop is over. */
    boot: z.boolean().default(false),
    /** Embedded mode: this is the only node; every other one recorded is stopped (an earlier name of it). */
    sole: z.boolean().default(false),
  }),
  (ctx, a) => {
    const lease_until = a.lease_ms === null ? null : ctx.now + a.lease_ms;
    const prev = ctx.db.nodes.get(ctx.node);
    let rejoined = false;
    if (!prev) {
      ctx.db.nodes.insert({ id: ctx.node, state: 'alive', version: a.version, started_at: ctx.now, last_heartbeat_at: ctx.now, lease_ms: a.lease_ms, lease_until, drain_until: null, down_at: null, down_reason: null });
    } else {
      // A node marked lost (or stopped) that heartbeats again was only paused, or restarted: alive again.
      rejoined = prev.state === 'lost' || prev.state === 'stopped';
      const state = a.boot || rejoined ? 'alive' : prev.state;
      ctx.db.nodes.update(ctx.node, {
        state,
        version: a.version,
        last_heartbeat_at: ctx.now,
        lease_ms: a.lease_ms,
        lease_until,
        ...(a.boot ? { started_at: ctx.now } : {}),
        ...(state === 'draining' ? {} : { drain_until: null }),
      });
    }
    // The verdict on the others, by this command's time: a lease that ended means the node is lost.
    const lost: string[] = [];
    // Log level 2 (schema/log-level.ts): the reason names the node whose heartbeat gave the verdict.
    const by = logLevel(ctx) >= 2 ? ` (seen by ${ctx.node})` : '';
    for (const other of ctx.db.nodes.find({ state: ['alive', 'draining'] })) {
      if (other.id === ctx.node) continue;
      const expired = other.lease_until !== null && other.lease_until <= ctx.now;
      if (!expired && !a.sole) continue;
      const down_reason = a.sole ? `superseded by ${ctx.node} (embedded: one node)` : `lease expired at ${other.lease_until ?? ctx.now} ms since epoch${by}`.slice(0, 200);
      ctx.db.nodes.update(other.id, { state: a.sole ? 'stopped' : 'lost', down_at: ctx.now, down_reason });
      lost.push(other.id);
    }
    return { node: ctx.node, lease_until, rejoined, lost };
  },
);

export const node_drain_started = defineReducer(
  'node_drain_started',
  z.object({ timeout_ms: z.number().int().nonnegative().max(86_400_000) }),
  (ctx, a) => {
    const row = ctx.db.nodes.get(ctx.node);
    if (!row) return ctx.fail('node_not_found', `node ${ctx.node} has not sent a heartbeat`);
    if (row.state === 'draining') return { node: ctx.node, drain_until: row.drain_until, already: true };
    const drain_until = ctx.now + a.timeout_ms;
    ctx.db.nodes.update(ctx.node, { state: 'draining', drain_until });
    return { node: ctx.node, drain_until, already: false };
  },
);

export const node_stopped = defineReducer(
  'node_stopped',
  z.object({ reason: z.string().min(1).max(200) }),
  (ctx, a) => {
    const row = ctx.db.nodes.get(ctx.node);
    if (!row) return ctx.fail('node_not_found', `node ${ctx.node} has not sent a heartbeat`);
    // The lease ends now: calls this node still owns may be taken over at once (as on a death).
    ctx.db.nodes.update(ctx.node, { state: 'stopped', lease_until: ctx.now, down_at: ctx.now, down_reason: a.reason });
    return { node: ctx.node };
  },
);

export const nodeReducers = [node_heartbeat, node_drain_started, node_stopped];
