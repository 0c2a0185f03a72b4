/**
 * The log level (issue 15, "rolling upgrade"): the version gate for reducer changes, so that nodes running two code
 * versions during a roll apply every command alike (the hash chain covers each command's outcome, and each node's
 * tables must stay the same; a reducer that changed its rows or result without a gate would fork the nodes).
 *
 *   build  LOG_LEVEL (this code's reducers know levels 1..LOG_LEVEL)
 *     │  every heartbeat says it: node_heartbeat.version = "<package version>+log.<LOG_LEVEL>"
 *     ▼
 *   nodes row version ──► supportedLevel(row)      (no "+log.N": a build from before the gate = 1)
 *     │  once every alive|draining node supports more than the cluster's level (bridge/ownership.ts)
 *     ▼
 *   log_level_raised({ to }) ──► log_levels row 'cluster' ──► logLevel(ctx)   (no row: 1)
 *     │
 *     ▼
 *   a changed reducer: `if (logLevel(ctx) >= 2) new behaviour else old`
 *
 * - While any node runs older code, the level stays where that code is, and every node (new ones too) applies
 *   commands the old way; the log itself says when the new way starts (the seq of `log_level_raised`), so a
 *   replay of the log anywhere later applies each command exactly as it was applied live.
 * - The supported level rides in the heartbeat's `version` (semver build metadata) rather than in a new argument
 *   and column: a build from before the gate stores `version` verbatim, so on every node, old or new, the nodes row
 *   says the same thing about what each node supports. A new column would be null on the rows an older build
 *   wrote while newer nodes already filled it: `log_level_raised` would then be refused on one node and granted on
 *   another (a fork), and the tables would differ.
 * - `log_level_raised` is refused (naming them) while some alive or draining node does not support the level; a
 *   no-op when the level is already there. Lost and stopped nodes do not hold the roll back: such a node, restarted
 *   with a build below the level, refuses to start (cli/gateway.ts), and a running one that sees the level rise above
 *   its own (it was paused while the others raised it) stops (bridge/ownership.ts) — both with `levelRefusal`.
 * - A build from before the gate cannot know any of this: do not bring such a node back once the level is raised.
 *
 * Levels (each a reducer change and where it reads the level):
 *   1  everything before the gate
 *   2  a node marked lost by another's heartbeat names that node in its `down_reason` (schema/nodes.ts); a
 *      recording gap after a failover keeps the lost node's name (`recording_segment_started`, schema/recording.ts)
 */
import { z } from 'zod';
import { defineReducer, type Ctx } from './reducer.ts';

/** The highest log level this build's reducers apply. */
export const LOG_LEVEL = 2;

/** The singleton row's id. */
export const CLUSTER_LEVEL_ID = 'cluster';

/** The log level commands are applied at now: 1 until a `log_level_raised` (an older log has none). */
export function logLevel(ctx: Ctx): number {
  return ctx.db.log_levels.get(CLUSTER_LEVEL_ID)?.level ?? 1;
}

const LEVEL_TAG = /[+.]log\.(\d{1,6})$/;

/** The version a build of `level` sends in its heartbeat: semver build metadata `+log.N` (appended to any). */
export function versionWithLevel(version: string, level: number = LOG_LEVEL): string {
  return `${version}${version.includes('+') ? '.' : '+'}log.${level}`;
}

/** The highest log level the node that sent `version` supports (1: a build from before the gate). */
export function supportedLevel(version: string): number {
  const m = LEVEL_TAG.exec(version);
  return m ? Number(m[1]) : 1;
}

/** `version` without its log-level tag (what the package said). */
export function packageVersion(version: string): string {
  return version.replace(LEVEL_TAG, '');
}

/** The one line a build below the cluster's level stops with (at start, or when it sees the level rise). */
export function levelRefusal(node: string, cluster: { level: number; raised_seq: number; raised_by: string }, own = LOG_LEVEL): string {
  return (
    `node ${node} runs a build of log level ${own}, but the cluster's log is at level ${cluster.level} (raised at seq ${cluster.raised_seq} by node ${cluster.raised_by}): ` +
    `this build would apply newer commands the old way and fork from the other nodes, so it stops; start it with a build of log level ${cluster.level} or more ` +
    `(on an empty data dir if this node applied commands past seq ${cluster.raised_seq}: it rebuilds from the log)`
  );
}

/** True when the cluster's level (its `log_levels` row) is above what this build applies. */
export function levelAbove(row: { level: number } | undefined, own = LOG_LEVEL): boolean {
  return (row?.level ?? 1) > own;
}

export const log_level_raised = defineReducer(
  'log_level_raised',
  z.object({ to: z.number().int().min(2).max(1_000_000) }),
  (ctx, a) => {
    const from = logLevel(ctx);
    if (from >= a.to) return { level: from, raised: false, from };
    const behind: string[] = [];
    for (const n of ctx.db.nodes.find({ state: ['alive', 'draining'] }, { orderBy: 'id' })) {
      const supports = supportedLevel(n.version);
      if (supports < a.to) behind.push(`${n.id} (${n.state}, supports ${supports})`);
    }
    if (behind.length > 0) return ctx.fail('log_level_unsupported', `log level ${a.to} is not supported by ${behind.join(', ')}: the level stays ${from} until they run a newer build`);
    const row = { level: a.to, raised_at: ctx.now, raised_by: ctx.node, raised_seq: ctx.seq };
    if (ctx.db.log_levels.get(CLUSTER_LEVEL_ID)) ctx.db.log_levels.update(CLUSTER_LEVEL_ID, row);
    else ctx.db.log_levels.insert({ id: CLUSTER_LEVEL_ID, ...row });
    return { level: a.to, raised: true, from };
  },
);

export const logLevelReducers = [log_level_raised];
