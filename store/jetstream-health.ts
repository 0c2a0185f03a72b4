/**
 * Whether the cluster log can take commands now: the stream needs a leader, and a leader needs a quorum of its
 * replicas (2 of 3). Without one a publish is never acknowledged, so instead of letting every submit wait out its
 * publish deadline the log is declared unavailable — a `StoreFault` of kind `log_unavailable` in `Store.health`,
 * which the gateway's admission turns into the providers' busy answer — and new submits are refused at once with a
 * retryable `log_unavailable` StoreError until the stream has a leader again.
 *
 *   publish acked / stream info names a leader ─────────────────────────────► available (fault cleared)
 *   publish refused or unanswered, or info without a leader ─► leaderless since t
 *       leaderless ≥ QUICK_MS and fewer than a majority of the configured servers accept a connection ─► unavailable
 *       leaderless ≥ SLOW_MS (a partition: servers reachable, still no leader) ───────────────────────────► unavailable
 *
 * A stream leader's death is not an outage: the other two elect a new leader within seconds (nats-server's raft
 * election timeout), while a majority of the servers stays reachable, so nothing is refused meanwhile (publishes
 * are retried up to their deadline). The reachability count only means something when SWITCHBOARD_CLUSTER_NATS
 * lists every server of the cluster (behind one load-balanced URL only the SLOW_MS rule applies).
 */
import net from 'node:net';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { StoreFault } from './engine.ts';

const PROBE_MS = 1000;
/** Leaderless this long with most servers unreachable: no quorum. */
const QUICK_MS = 2000;
/** Leaderless this long whatever is reachable (as long as a publish may be retried). */
export const SLOW_MS = 15_000;

export interface HealthOptions {
  /** A manager with a short request timeout (a probe must not wait long for a leader that is not there). */
  jsm: Promise<JetStreamManager>;
  stream: string;
  /** The configured server URLs (nats://host:port, tls://host:port, host:port). */
  servers: string[];
  onChange: (fault: StoreFault | null) => void;
  /** Commands waiting (reported in the fault). */
  waiting: () => number;
  clock?: () => number;
}

function hostPort(url: string): { host: string; port: number } | null {
  try {
    const u = new URL(url.includes('://') ? url : `nats://${url}`);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 4222) };
  } catch {
    return null;
  }
}

function reachable(target: { host: string; port: number }, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(target.port, target.host);
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export class LogHealth {
  private leaderlessSince: number | null = null;
  private current: StoreFault | null = null;
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private readonly clock: () => number;
  private readonly targets: Array<{ host: string; port: number }>;

  constructor(private readonly opts: HealthOptions) {
    this.clock = opts.clock ?? Date.now;
    this.targets = opts.servers.map(hostPort).filter((t): t is { host: string; port: number } => t !== null);
    this.timer = setInterval(() => void this.probe(), PROBE_MS);
    this.timer.unref();
  }

  /** Null while the log takes commands; the fault while it cannot. */
  get fault(): StoreFault | null {
    return this.current ? { ...this.current, waiting: this.opts.waiting() } : null;
  }

  /** A publish was acknowledged: the stream has a leader with a quorum. */
  acknowledged(): void {
    this.leaderlessSince = null;
    this.set(null);
  }

  /** A publish was refused or timed out. */
  failed(): void {
    this.leaderlessSince ??= this.clock();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async probe(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      let leader = false;
      const started = this.clock();
      try {
        const jsm = await this.opts.jsm;
        const info = await jsm.streams.info(this.opts.stream);
        leader = !info.cluster || info.cluster.leader !== undefined;
      } catch {
        leader = false;
      }
      if (leader) return this.acknowledged();
      const since = (this.leaderlessSince ??= started);
      const waited = this.clock() - since;
      if (this.current || waited < QUICK_MS) return;
      if (waited >= SLOW_MS) return this.set(`the stream ${this.opts.stream} has had no leader for ${Math.round(waited / 1000)} s`, since);
      if (this.targets.length >= 3) {
        const up = (await Promise.all(this.targets.map((t) => reachable(t, 500)))).filter(Boolean).length;
        if (up <= this.targets.length / 2) this.set(`no quorum: ${up} of ${this.targets.length} NATS servers reachable and the stream ${this.opts.stream} has no leader`, since);
      }
    } finally {
      this.busy = false;
    }
  }

  private set(reason: string | null, since = this.clock()): void {
    if (reason === null) {
      if (!this.current) return;
      this.current = null;
      this.opts.onChange(null);
      return;
    }
    this.current = { kind: 'log_unavailable', reason, since, waiting: 0 };
    this.opts.onChange(this.fault);
  }
}
