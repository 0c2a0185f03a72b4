/**
 * Agent deployments: the life of a version and which version a call runs.
 *
 *   deploy ─► deploying ─► (init ok)     live: takes `rollout` % of new calls;
 *                      │                  the previous live version keeps the rest
 *                      │                  (retired at 100 %), older ones retire
 *                      └► (init failed)  failed: nothing else changes (automatic rollback)
 *   rollback ─► the newest live version becomes rolled_back; the version before
 *               it becomes live at 100 %
 *
 * Routing of a new call is a pure function of the versions and the call id
 * (`pickVersion` in agents/routing.ts), so every node agrees.
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer, type Ctx } from './reducer.ts';
import type { RowOf } from '../store/index.ts';
import type { agent_versions } from './tables.ts';

export type VersionRow = RowOf<typeof agent_versions>;
const agentName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase name: letters, digits, - and _');

function versionsOf(ctx: Ctx, name: string): VersionRow[] {
  return ctx.db.agent_versions.find({ name }, { orderBy: 'created_at' }).sort((a, b) => versionNumber(a) - versionNumber(b));
}

export const versionNumber = (v: Pick<VersionRow, 'version'>): number => Number(v.version.slice(1)) || 0;

export const agent_version_deployed = defineReducer(
  'agent_version_deployed',
  z.object({
    name: agentName,
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    rollout: z.number().min(0).max(100).default(100),
    migrate: z.boolean().default(false),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'agents:deploy');
    const all = versionsOf(ctx, a.name);
    if (all.some((v) => v.status === 'deploying')) return ctx.fail('deploy_in_progress', `a version of ${a.name} is being deployed`);
    const version = `v${(all.length ? versionNumber(all[all.length - 1]!) : 0) + 1}`;
    const id = ctx.newId('agv');
    ctx.db.agent_versions.insert({
      id,
      tenant: ctx.tenant,
      name: a.name,
      version,
      sha256: a.sha256,
      rollout: a.rollout,
      migrate: a.migrate,
      status: 'deploying',
      error: null,
      created_at: ctx.now,
      updated_at: ctx.now,
    });
    return { version_id: id, name: a.name, version };
  },
);

/** Init succeeded: the version serves. */
export const agent_version_live = defineReducer('agent_version_live', z.object({ version_id: z.string().min(1).max(200) }), (ctx, a) => {
  requireCaller(ctx, 'agents:deploy');
  const row = ctx.db.agent_versions.get(a.version_id);
  if (!row) return ctx.fail('agent_version_not_found', `no agent version ${a.version_id}`);
  if (row.status !== 'deploying') return ctx.fail('invalid_state', `version ${row.name} ${row.version} is ${row.status}`);
  const live = versionsOf(ctx, row.name).filter((v) => v.status === 'live');
  const previous = live[live.length - 1];
  for (const v of live) {
    const keep = v === previous && row.rollout < 100;
    if (!keep) ctx.db.agent_versions.update(v.id, { status: 'retired', updated_at: ctx.now });
  }
  ctx.db.agent_versions.update(row.id, { status: 'live', updated_at: ctx.now });
  return { name: row.name, version: row.version, rollout: row.rollout, previous: previous && row.rollout < 100 ? previous.version : null };
});

export const agent_deploy_failed = defineReducer(
  'agent_deploy_failed',
  z.object({ version_id: z.string().min(1).max(200), error: z.string().min(1).max(2000) }),
  (ctx, a) => {
    requireCaller(ctx, 'agents:deploy');
    const row = ctx.db.agent_versions.get(a.version_id);
    if (!row) return ctx.fail('agent_version_not_found', `no agent version ${a.version_id}`);
    if (row.status !== 'deploying') return ctx.fail('invalid_state', `version ${row.name} ${row.version} is ${row.status}`);
    ctx.db.agent_versions.update(row.id, { status: 'failed', error: a.error, updated_at: ctx.now });
    return { name: row.name, version: row.version };
  },
);

export const agent_rolled_back = defineReducer('agent_rolled_back', z.object({ name: agentName }), (ctx, a) => {
  requireCaller(ctx, 'agents:deploy');
  const all = versionsOf(ctx, a.name);
  const live = all.filter((v) => v.status === 'live');
  const current = live[live.length - 1];
  if (!current) return ctx.fail('agent_version_not_found', `${a.name} has no live version`);
  const before = all.filter((v) => versionNumber(v) < versionNumber(current) && (v.status === 'live' || v.status === 'retired'));
  const target = before[before.length - 1];
  if (!target) return ctx.fail('no_previous_version', `${a.name} ${current.version} has no earlier version to roll back to`);
  ctx.db.agent_versions.update(current.id, { status: 'rolled_back', updated_at: ctx.now });
  for (const v of live) if (v.id !== target.id && v.id !== current.id) ctx.db.agent_versions.update(v.id, { status: 'retired', updated_at: ctx.now });
  // Rolling back is a migration by nature: calls on the bad version move back at their next turn.
  ctx.db.agent_versions.update(target.id, { status: 'live', rollout: 100, migrate: true, updated_at: ctx.now });
  return { name: a.name, from: current.version, to: target.version };
});

export const agentVersionReducers = [agent_version_deployed, agent_version_live, agent_deploy_failed, agent_rolled_back];
