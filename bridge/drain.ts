/**
 * Draining this node (issue 15): SIGTERM (cli/main.ts) or `POST /v1/cluster/drain` (`switchboard drain`) makes the
 * node take no new call, keep its live calls until they end, then stop and exit 0.
 *
 *   start() ─► active (at once: admission refuses new calls busy, /readyz 503 `draining`, SIP OPTIONS 503)
 *           ─► node_drain_started (the node's row: `draining`, with its drain deadline)
 *           ─► wait: no live call left (its row ended, or 10 s after its media closed) ► stop('drained') ─► done
 *                    or the time limit (SWITCHBOARD_DRAIN_TIMEOUT_MS):
 *                      cluster:  stop('drain timeout …') — node_stopped ends the lease first, so another node may
 *                                take the calls left at once (as on a death); their media here is closed, the
 *                                calls are not ended (each provider's reconnect lands on a live node)
 *                      embedded: nobody could take them: each call left is ended with reason `drain timeout`,
 *                                then stop
 *
 * Either way the node's row ends `stopped` (`node_stopped`, also in embedded mode). `done` resolves once the
 * gateway has stopped; the caller (cli/main.ts) exits 0 then. A second start() is answered with the drain already
 * running. Stopping at once during a drain (a second SIGTERM, SIGINT) is the gateway's own stop().
 */
import type { Logger } from 'pino';

export interface DrainDeps {
  /** Records the node `draining` (bridge/ownership.ts `drain()`). */
  markDraining(timeoutMs: number): Promise<{ drainUntil: number | null }>;
  /** The live calls on this node (CallManager). */
  live: { readonly size: number; ids(): Iterable<string>; hangupAll(reason: string): Promise<void> };
  /** True once the call's row is ended (the provider's final status often follows its media's close). */
  ended(callId: string): boolean;
  /** Cluster mode: calls left at the limit are handed over; embedded: they are ended. */
  cluster: boolean;
  /** SWITCHBOARD_DRAIN_TIMEOUT_MS. */
  timeoutMs: number;
  /** Stops the gateway, recording `node_stopped` with `reason`. */
  stop(reason: string): Promise<void>;
  logger: Logger;
  /** How often the live calls are counted (ms; default 250). */
  pollMs?: number;
  /** After the last media session closed, how long to wait for those calls' rows to end (ms; default 10 s). */
  settleMs?: number;
}

export interface DrainStart {
  /** False when a drain was already running. */
  started: boolean;
  /** Epoch ms of the time limit (the node's row), or null when it was not recorded. */
  drainUntil: number | null;
  liveCalls: number;
  timeoutMs: number;
}

export interface DrainEnd {
  /** `drained`: the last call ended; `timeout`: calls were left at the limit (handed over, or ended in embedded mode). */
  how: 'drained' | 'timeout';
  callsLeft: number;
}

export class NodeDrain {
  private running: Promise<DrainStart> | null = null;
  private finish!: (end: DrainEnd) => void;
  private fail!: (err: unknown) => void;
  /** Resolves once the gateway stopped at the end of a drain. */
  readonly done: Promise<DrainEnd>;
  private readonly log: Logger;

  constructor(private readonly deps: DrainDeps) {
    this.log = deps.logger.child({ component: 'drain' });
    this.done = new Promise<DrainEnd>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    this.done.catch(() => undefined);
  }

  /** True from the moment a drain starts: new calls are refused. */
  get active(): boolean {
    return this.running !== null;
  }

  /** Begins draining (once); resolves when the node's row says `draining`. */
  start(): Promise<DrainStart> {
    if (this.running) return this.running.then((s) => ({ ...s, started: false, liveCalls: this.deps.live.size }));
    const { timeoutMs } = this.deps;
    const deadline = performance.now() + timeoutMs;
    this.running = (async () => {
      const liveCalls = this.deps.live.size;
      this.log.info({ liveCalls, timeoutMs }, `draining: new calls are refused busy; ${liveCalls} live call(s) continue until they end (at most ${timeoutMs} ms)`);
      let drainUntil: number | null = null;
      try {
        drainUntil = (await this.deps.markDraining(timeoutMs)).drainUntil;
      } catch (err) {
        this.log.warn({ err }, 'node_drain_started not recorded: the node drains anyway');
      }
      void this.wait(deadline).then(this.finish, this.fail);
      return { started: true, drainUntil, liveCalls, timeoutMs };
    })();
    return this.running;
  }

  /**
   * Waits until no media session is left and every call that had one during the drain has ended (a provider
   * closes the media, then sends its final status: Twilio's `stop`, then `completed`) — that last part at most
   * `settleMs` after the last session closed (a call left `resuming` may come back to any node) — or the deadline.
   */
  private async wait(deadline: number): Promise<DrainEnd> {
    const pollMs = this.deps.pollMs ?? 250;
    const settleMs = this.deps.settleMs ?? 10_000;
    const seen = new Set<string>();
    let idleSince: number | null = null;
    for (;;) {
      for (const id of this.deps.live.ids()) seen.add(id);
      const now = performance.now();
      if (now >= deadline) break;
      if (this.deps.live.size > 0) idleSince = null;
      else {
        idleSince ??= now;
        for (const id of [...seen]) if (this.deps.ended(id)) seen.delete(id);
        if (seen.size === 0 || now - idleSince >= settleMs) break;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(pollMs, deadline - now))));
    }
    const left = this.deps.live.size;
    if (left === 0) {
      this.log.info('drained: no live call left; stopping');
      await this.deps.stop('drained');
      return { how: 'drained', callsLeft: 0 };
    }
    const limit = `drain timeout (${this.deps.timeoutMs} ms)`;
    if (this.deps.cluster) {
      this.log.warn({ callsLeft: left }, `${limit}: ${left} call(s) left for another node to take over; stopping`);
      await this.deps.stop(`${limit}: ${left} call(s) handed over`);
    } else {
      this.log.warn({ callsLeft: left }, `${limit}: ${left} call(s) ended (embedded: no other node to take them); stopping`);
      await this.deps.live.hangupAll(limit);
      await this.deps.stop(`${limit}: ${left} call(s) ended`);
    }
    return { how: 'timeout', callsLeft: left };
  }
}
