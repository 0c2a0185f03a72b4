/**
 * Which agent answers a call, and the life of deployed versions on this node.
 *
 * Deployed code is stored content-addressed (DATA_DIR/agents/<sha256>.mjs),
 * each version runs in its own worker (agents/host/), and the versions'
 * facts live in the store (`agent_versions`), so after a restart the live
 * versions and every call's pinned version come back.
 *
 * A new call runs `pickVersion` (stable hash of its id against the rollout);
 * a call stays on the version it runs — unless the newest live version was
 * deployed with `migrate` and the call's bucket falls in its rollout, in
 * which case the call moves at its next turn boundary, its state carried by
 * the store. A worker whose version no longer takes new calls stops when its
 * last call lets go of it. Names without deployed versions fall back to a
 * built-in agent, then to `default`.
 *
 * Cluster mode (`bundles` given): the bundle goes to the cluster's object store too (agents/bundle-store.ts), and
 * every node starts the worker of a version that goes live through the log — a deploy on one node is hot-reloaded
 * on all of them — and stops the workers of versions retired by another node's deploy or rollback once no call
 * holds them.
 *
 * A paused agent (schema/agent-pause.ts) takes no new calls: its workers stop once no call holds them (calls kept
 * with `keep_live` hold theirs), on every node, since each follows `agent_pauses` through its own log; a resume
 * starts the workers of its live versions again.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { VersionRow } from '../schema/agent-versions.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { BlobStore, Store } from '../store/index.ts';
import { BundleFiles } from './bundle-store.ts';
import { WorkerAgent } from './host/worker-agent.ts';
import { pickVersion } from './routing.ts';
import { openPause, type PauseRow } from '../schema/agent-pause.ts';
import type { Agent } from './types.ts';
import { agent_deploy_failed, agent_rolled_back, agent_version_deployed, agent_version_live } from '../schema/reducers.ts';

export interface RegistryOptions {
  store: Store<SwitchboardTables>;
  dataDir: string;
  logger: Logger;
  builtins: ReadonlyMap<string, Agent>;
  fallback: Agent;
  initTimeoutMs?: number;
  turnTimeoutMs?: number;
  memoryMb?: number;
  /** Cluster mode: the object store every node reads deployed bundles from. */
  bundles?: BlobStore;
}

export interface CallAgentRef {
  tenant: string;
  callId: string;
  /** The agent name the call was routed to (number → agent). */
  name: string | null;
  /** The version the call ran last (calls.agent_version), after a restart. */
  pinned: string | null;
}

export class DeployError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly version: string | null = null,
  ) {
    super(message);
  }
}

interface Running {
  agent: WorkerAgent;
  tenant: string;
  name: string;
  version: string;
  users: number;
}

const key = (tenant: string, name: string, version: string): string => `${tenant}/${name}/${version}`;

export class AgentRegistry {
  private readonly running = new Map<string, Running>();
  private readonly starting = new Map<string, Promise<WorkerAgent>>();
  private readonly files: BundleFiles;
  private closed = false;
  private unsubscribe: (() => void) | null = null;
  private unsubscribePauses: (() => void) | null = null;

  constructor(private readonly o: RegistryOptions) {
    this.files = new BundleFiles(path.join(o.dataDir, 'agents'), o.bundles);
  }

  /** The names of the built-in agents (reachable in every tenant without a deploy). */
  get builtinNames(): readonly string[] {
    return [...this.o.builtins.keys()];
  }

  /** Starts the workers of every live version and of versions still pinned by unended calls. */
  async start(): Promise<void> {
    const all = this.o.store.read(null);
    const wanted = new Map<string, VersionRow>();
    for (const v of all.agent_versions.find({ status: 'live' })) if (!this.paused(v.tenant, v.name)) wanted.set(key(v.tenant, v.name, v.version), v);
    for (const c of all.calls.find({ state: ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming'] })) {
      if (!c.agent || !c.agent_version) continue;
      const v = all.agent_versions.findOne({ tenant: c.tenant, name: c.agent, version: c.agent_version });
      if (v && v.status !== 'failed' && v.status !== 'deploying') wanted.set(key(v.tenant, v.name, v.version), v);
    }
    // A deploy cut off by a crash never finished its init: it is failed, and the previous version serves.
    for (const v of all.agent_versions.find({ status: 'deploying' })) {
      await this.o.store.submit(agent_deploy_failed, { version_id: v.id, error: 'the gateway stopped during the deploy' }, { tenant: v.tenant, caller: 'system:agents' });
    }
    if (this.o.bundles) this.followDeploys();
    this.followPauses();
    // All at once: each worker starts on its own thread, so N versions cost about one start, not N in a row.
    await Promise.all(
      [...wanted.values()].map((v) =>
        this.worker(v).catch((err: unknown) => this.o.logger.error({ err, agent: v.name, version: v.version }, 'agent version failed to start after restart')),
      ),
    );
  }

  /** The agent for a call's next turn: its current one, a migration target, or a new pick. */
  async select(ref: CallAgentRef, current: Agent | null): Promise<Agent> {
    const builtin = (): Agent => (ref.name ? this.o.builtins.get(ref.name) : undefined) ?? this.o.fallback;
    if (!ref.name) return current ?? this.o.fallback;
    const versions = this.o.store.read(ref.tenant).agent_versions.find({ name: ref.name });
    if (versions.every((v) => v.status === 'failed' || v.status === 'deploying')) return current ?? builtin();
    const pick = pickVersion(versions, ref.callId);
    const newest = versions.filter((v) => v.status === 'live').sort((a, b) => num(b) - num(a))[0];
    // A call moves only to a newest version deployed with `migrate` whose rollout covers it.
    const migrateTo = newest && newest.migrate && pick === newest ? newest : null;
    const pinnedVersion = current ? current.version : ref.pinned;
    let target: VersionRow | null;
    if (pinnedVersion === null) {
      target = pick; // a new call
    } else if (migrateTo && migrateTo.version !== pinnedVersion) {
      target = migrateTo;
    } else if (current) {
      return current;
    } else {
      // A call resumed after a restart: back on the version it ran (a built-in if it was one).
      target = versions.find((v) => v.version === pinnedVersion && v.status !== 'failed' && v.status !== 'deploying') ?? null;
      if (!target) return builtin();
    }
    if (!target) return current ?? builtin();
    if (current && current.version === target.version && current.name === target.name) return current;
    try {
      return await this.worker(target);
    } catch (err) {
      this.o.logger.error({ err, agent: target.name, version: target.version }, 'agent version unavailable; the call keeps its agent');
      return current ?? builtin();
    }
  }

  /** A session holds `agent` (workers of retired versions stop when no session holds them). */
  retain(agent: Agent): void {
    const r = this.find(agent);
    if (r) r.users++;
  }

  release(agent: Agent): void {
    const r = this.find(agent);
    if (!r) return;
    r.users = Math.max(0, r.users - 1);
    this.reap();
  }

  /** Bundled code → a new version: stored, initialised in its worker, then live — or failed, the previous serving on. */
  async deploy(tenant: string, caller: string, name: string, code: string, opts: { rollout: number; migrate: boolean }): Promise<VersionRow> {
    const digest = await this.files.store(code);
    const as = { tenant, caller };
    const d = await this.o.store.submit(agent_version_deployed, { name, sha256: digest, rollout: opts.rollout, migrate: opts.migrate }, as);
    if (!d.outcome.ok) throw new DeployError(d.outcome.error.code, d.outcome.error.message);
    const { version_id: versionId, version } = d.outcome.result;
    const row = this.o.store.read(tenant).agent_versions.get(versionId)!;
    try {
      await this.worker(row, true);
    } catch (err) {
      const message = (err as Error).message.slice(0, 2000);
      await this.o.store.submit(agent_deploy_failed, { version_id: versionId, error: message }, as);
      this.o.logger.warn({ agent: name, version, err: message }, 'deploy failed: the previous version keeps serving');
      throw new DeployError('deploy_failed', `${name} ${version} was rejected: ${message}`, version);
    }
    const live = await this.o.store.submit(agent_version_live, { version_id: versionId }, as);
    if (!live.outcome.ok) throw new DeployError(live.outcome.error.code, live.outcome.error.message, version);
    this.o.logger.info({ agent: name, version, rollout: opts.rollout, migrate: opts.migrate, sha256: digest }, 'agent version live');
    this.reap();
    return this.o.store.read(tenant).agent_versions.get(versionId)!;
  }

  async rollback(tenant: string, caller: string, name: string): Promise<{ from: string; to: string }> {
    const r = await this.o.store.submit(agent_rolled_back, { name }, { tenant, caller });
    if (!r.outcome.ok) throw new DeployError(r.outcome.error.code, r.outcome.error.message);
    const res = r.outcome.result;
    const target = this.o.store.read(tenant).agent_versions.findOne({ name, version: res.to });
    if (target) await this.worker(target);
    this.reap();
    return res;
  }

  /** Live calls per version on this node (for `switchboard agents`). */
  usage(tenant: string, name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.running.values()) if (r.tenant === tenant && r.name === name) out[r.version] = r.users;
    return out;
  }

  get workers(): number {
    return this.running.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribePauses?.();
    for (const r of this.running.values()) r.agent.close();
    this.running.clear();
  }

  /**
   * Cluster mode: a version another node deployed goes live here too (its worker started, its bundle fetched), and
   * versions retired elsewhere stop here once no call holds them.
   */
  private followDeploys(): void {
    this.unsubscribe = this.o.store.subscribe('agent_versions', {}, null, (d) => {
      const row = d.new as VersionRow | null;
      if (this.closed || !row) return;
      if (row.status === 'live' && d.old?.status !== 'live' && !this.paused(row.tenant, row.name) && !this.running.has(key(row.tenant, row.name, row.version))) {
        this.worker(row).then(
          () => this.o.logger.info({ agent: row.name, version: row.version }, 'agent version live (deployed on another node)'),
          (err: unknown) => this.o.logger.error({ err, agent: row.name, version: row.version }, 'agent version deployed on another node failed to start here'),
        );
      } else if (row.status !== 'live' && d.old?.status === 'live') this.reap();
    }).unsubscribe;
  }

  /** Pause: the agent's idle workers stop (busy ones when their last call lets go). Resume: its live versions start. */
  private followPauses(): void {
    this.unsubscribePauses = this.o.store.subscribe('agent_pauses', {}, null, (d) => {
      const row = d.new as PauseRow | null;
      if (this.closed || !row) return;
      if (row.resumed_at === null) return this.reap();
      const live = this.o.store.read(row.tenant).agent_versions.find({ name: row.agent, status: 'live' });
      for (const v of live) {
        this.worker(v).then(
          () => this.o.logger.info({ agent: v.name, version: v.version }, 'agent resumed: worker started'),
          (err: unknown) => this.o.logger.error({ err, agent: v.name, version: v.version }, 'agent resumed, but its worker failed to start'),
        );
      }
    }).unsubscribe;
  }

  private paused(tenant: string, name: string): boolean {
    return openPause(this.o.store.read(tenant), name) !== undefined;
  }

  private find(agent: Agent): Running | undefined {
    for (const r of this.running.values()) if (r.agent === agent) return r;
    return undefined;
  }

  private async worker(v: VersionRow, fresh = false): Promise<WorkerAgent> {
    const k = key(v.tenant, v.name, v.version);
    const existing = this.running.get(k);
    if (existing && !fresh) return existing.agent;
    const pending = this.starting.get(k);
    if (pending) return pending;
    const start = this.files.ensure(v.sha256).then((bundlePath) =>
      WorkerAgent.start({
        name: v.name,
        version: v.version,
        bundlePath,
        initTimeoutMs: this.o.initTimeoutMs,
        turnTimeoutMs: this.o.turnTimeoutMs,
        memoryMb: this.o.memoryMb,
        logger: this.o.logger.child({ agent: v.name, version: v.version }),
      }),
    );
    this.starting.set(k, start);
    try {
      const agent = await start;
      if (this.closed) {
        agent.close();
        throw new Error('registry closed');
      }
      this.running.set(k, { agent, tenant: v.tenant, name: v.name, version: v.version, users: 0 });
      return agent;
    } finally {
      this.starting.delete(k);
    }
  }

  /** Stops workers whose version takes no new calls (retired, or its agent paused) and that no call holds. */
  private reap(): void {
    for (const [k, r] of this.running) {
      if (r.users > 0) continue;
      const row = this.o.store.read(r.tenant).agent_versions.findOne({ name: r.name, version: r.version });
      const paused = this.paused(r.tenant, r.name);
      if (row?.status === 'live' && !paused) continue;
      r.agent.close();
      this.running.delete(k);
      this.o.logger.info({ agent: r.name, version: r.version, paused }, paused ? 'agent worker stopped: the agent is paused' : 'agent worker stopped: no calls left on a retired version');
    }
  }
}

const num = (v: Pick<VersionRow, 'version'>): number => Number(v.version.slice(1)) || 0;
