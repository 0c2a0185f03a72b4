/**
 * This node's side of call ownership (the rules are reducers: schema/nodes.ts). It owns:
 *
 *  - the heartbeat: one `node_heartbeat` per node every lease/3 (cluster mode), never one per call; it renews the
 *    lease of every call the node owns (a call's lease is its owner's), and carries the verdict `lost` on nodes
 *    whose lease ran out. Embedded mode has one node: it registers once at start (`sole`, no expiry) and sends
 *    no heartbeats at all, since no other node could take its calls.
 *  - the media hold: `mayTransmit()` is false once the node has gone 2/3 of its lease without a renewal it has
 *    applied (it was paused: SIGSTOP, a long GC, a partition from NATS). The media clock then sends nothing
 *    (media/pacer.ts `gate`) until a new heartbeat is applied here — and that heartbeat comes after, in the log,
 *    any claim another node made meanwhile. The hold never decides who owns a call; it only stops this node from
 *    talking before it has read the log.
 *  - fencing: a subscription to the calls this node owns. When the log moves one to another node (its claim,
 *    `call_media_connected`), the call's session here is detached at once (its leg closes: the provider's media
 *    socket is closed, no further frame), with a reason naming the new owner.
 *
 *  - the log level (schema/log-level.ts): every heartbeat says which level this build supports (in its version);
 *    after one, once every alive or draining node supports more than the cluster's level, this node submits
 *    `log_level_raised` (any node may: a second one is a no-op). When the cluster's level is above this build's
 *    (this node was paused while the others raised it), `onLevelAbove` is told, once, with the line to stop with.
 *
 *   timer ─► node_heartbeat ─► (log) ─► applied here ─► renewedAt ─► mayTransmit() ─► MediaClock gate
 *   (log) another node's call_media_connected ─► calls delta: owner_node no longer me ─► session.detach(reason)
 */
import type { Logger } from 'pino';
import type { SwitchboardTables } from '../schema/index.ts';
import { CLUSTER_LEVEL_ID, LOG_LEVEL, levelAbove, levelRefusal, supportedLevel, versionWithLevel } from '../schema/log-level.ts';
import { log_level_raised, node_drain_started, node_heartbeat, node_stopped } from '../schema/reducers.ts';
import { OPERATOR_TENANT } from '../schema/index.ts';
import type { Store } from '../store/index.ts';

/** What fencing needs of the sessions on this node (CallManager). */
export interface OwnedSessions {
  get(callId: string): { detach(reason: string): void } | undefined;
}

export interface OwnershipOptions {
  store: Store<SwitchboardTables>;
  sessions: OwnedSessions;
  /** Cluster mode: leases, heartbeats and the hold; embedded: one registration. */
  cluster: boolean;
  leaseMs: number;
  /** The gateway's version, recorded on the node row. */
  version: string;
  logger: Logger;
  /** The cluster's log level rose above this build's: `line` says so (the gateway stops). Called once. */
  onLevelAbove?: (line: string) => void;
  /** The log level this build supports (tests: an older build). */
  logLevel?: number;
  /** Monotonic ms (tests). */
  now?: () => number;
}

const WHO = { tenant: OPERATOR_TENANT, caller: 'system:node' };

export class NodeOwnership {
  private readonly log: Logger;
  private readonly now: () => number;
  /** Monotonic time the last heartbeat applied here was submitted (its lease counts from its command time). */
  private renewedAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  private holding = false;
  private levelAboveSaid = false;

  constructor(private readonly opts: OwnershipOptions) {
    this.log = opts.logger.child({ component: 'ownership' });
    this.now = opts.now ?? (() => performance.now());
  }

  get node(): string {
    return this.opts.store.node;
  }

  /** Heartbeats every lease/3 (cluster mode). */
  get heartbeatMs(): number {
    return Math.max(300, Math.floor(this.opts.leaseMs / 3));
  }

  /** Registers the node (a boot heartbeat), then (cluster) renews every lease/3 and fences lost calls. */
  async start(): Promise<void> {
    const { store, cluster } = this.opts;
    const sub = store.subscribe('calls', { owner_node: store.node }, null, (delta) => {
      if (delta.op !== 'delete' || !delta.old) return;
      this.fence(String(delta.old.id), String(delta.old.tenant), delta.seq);
    });
    this.unsubscribe = sub.unsubscribe;
    await this.beat(true);
    if (cluster) this.schedule();
  }

  /**
   * False while this node may have lost its calls without knowing yet: 2/3 of the lease since the last renewal it
   * applied (cluster mode only). Outgoing media waits meanwhile.
   */
  mayTransmit(): boolean {
    if (!this.opts.cluster) return true;
    const ok = this.now() - this.renewedAt < (this.opts.leaseMs * 2) / 3;
    if (ok === this.holding) {
      this.holding = !ok;
      if (this.holding) this.log.warn({ sinceRenewalMs: Math.round(this.now() - this.renewedAt), leaseMs: this.opts.leaseMs }, 'lease not renewed: outgoing media held until a heartbeat is applied');
      else this.log.info('lease renewed: outgoing media flows again');
    }
    return ok;
  }

  /** Marks this node `draining` (a row): it takes no new calls; after `timeoutMs` its live calls are left for others. */
  async drain(timeoutMs: number): Promise<{ drainUntil: number | null }> {
    const r = await this.opts.store.submit(node_drain_started, { timeout_ms: timeoutMs }, WHO);
    if (!r.outcome.ok) throw new Error(`node_drain_started refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
    return { drainUntil: r.outcome.result.drain_until };
  }

  /** True once this node's row says `draining` (this node applied its own drain). */
  get draining(): boolean {
    return this.opts.store.read(null).nodes.get(this.node)?.state === 'draining';
  }

  /**
   * Stops heartbeating; with `reason`, records the node stopped (its lease ends now: calls left may be taken) —
   * in cluster mode, or in embedded mode too with `always` (the end of a drain, bridge/drain.ts).
   */
  async stop(reason?: string, always = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.inFlight;
    if (reason === undefined || (!this.opts.cluster && !always)) return;
    const r = await this.opts.store.submit(node_stopped, { reason }, WHO).catch((err: unknown) => {
      this.log.warn({ err }, 'node_stopped not recorded');
      return null;
    });
    if (r && !r.outcome.ok) this.log.warn({ outcome: r.outcome }, 'node_stopped refused');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.beat(false).finally(() => this.schedule());
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /** One heartbeat (never two in flight); its lease counts once this node has applied it. */
  private beat(boot: boolean): Promise<void> {
    if (this.inFlight) return this.inFlight;
    const { store, cluster, leaseMs, version } = this.opts;
    const sentAt = this.now();
    const tagged = versionWithLevel(version, this.ownLevel);
    const args = cluster ? { lease_ms: leaseMs, version: tagged, boot } : { lease_ms: null, version: tagged, boot, sole: true };
    this.inFlight = store
      .submit(node_heartbeat, args, WHO)
      .then((r) => {
        if (!r.outcome.ok) {
          this.log.error({ outcome: r.outcome }, 'node_heartbeat refused');
          return;
        }
        this.renewedAt = Math.max(this.renewedAt, sentAt);
        const { lost, rejoined } = r.outcome.result;
        if (lost.length > 0) this.log.warn({ lost }, `node(s) marked lost: their lease expired (${lost.join(', ')})`);
        if (rejoined && !boot) this.log.warn('this node had been marked lost (paused past its lease): alive again; calls taken meanwhile are fenced');
        return this.checkLevel();
      })
      .catch((err: unknown) => {
        this.log.warn({ err }, 'node_heartbeat not committed: the lease is not renewed');
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private get ownLevel(): number {
    return this.opts.logLevel ?? LOG_LEVEL;
  }

  /**
   * After a heartbeat: the cluster's level above this build's → `onLevelAbove`; else, when every alive or draining
   * node supports more than the level (this one included), raise it to what they all support.
   */
  private async checkLevel(): Promise<void> {
    if (this.stopped) return;
    const view = this.opts.store.read(null);
    const row = view.log_levels.get(CLUSTER_LEVEL_ID);
    if (row && levelAbove(row, this.ownLevel)) {
      if (this.levelAboveSaid) return;
      this.levelAboveSaid = true;
      const line = levelRefusal(this.node, row, this.ownLevel);
      this.log.error({ level: row.level, own: this.ownLevel }, line);
      this.opts.onLevelAbove?.(line);
      return;
    }
    const level = row?.level ?? 1;
    if (level >= this.ownLevel) return;
    const to = Math.min(this.ownLevel, ...view.nodes.find({ state: ['alive', 'draining'] }).map((n) => supportedLevel(n.version)));
    if (to <= level) return;
    const r = await this.opts.store.submit(log_level_raised, { to }, WHO).catch((err: unknown) => {
      this.log.warn({ err }, 'log_level_raised not committed: tried again after the next heartbeat');
      return null;
    });
    if (!r) return;
    if (!r.outcome.ok) this.log.info({ outcome: r.outcome }, 'log level not raised yet');
    else if (r.outcome.result.raised) this.log.info({ from: r.outcome.result.from, to }, `cluster log level raised from ${r.outcome.result.from} to ${to}: every node runs a build that supports it`);
  }

  /** The log gave `callId` to another node: this node's session for it stops at once. */
  private fence(callId: string, tenant: string, seq: number): void {
    const now = this.opts.store.read(tenant).calls.get(callId);
    const owner = now?.owner_node ?? 'another node';
    const session = this.opts.sessions.get(callId);
    if (!session) {
      // A webhook answered here, its media connected on another node (the balancer's choice): nothing to stop.
      this.log.debug({ call: callId, owner, seq }, `call now owned by ${owner}; no media of it here`);
      return;
    }
    this.log.warn({ call: callId, owner, seq }, `call taken over by ${owner}: its media here stops`);
    session.detach(`ownership lost: call taken over by ${owner} (seq ${seq})`);
  }
}
