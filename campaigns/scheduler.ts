/**
 * The campaign runner: places a campaign's calls through the outbound dialer port (ingress/port.ts
 * `OutboundDialer`, whatever provider offers it), on the node that owns the campaign (`owner_node`: the node that
 * created it; in cluster mode the other nodes leave it alone, and it waits for its node if that node is down).
 *
 * Every tick (100 ms), for each campaign this node owns:
 *
 *   1. attempts `dialing` whose call row has ended ─► campaign_attempt_finished (the store reads the end reason
 *      from the call row and decides done / failed / retry after the backoff)
 *   2. while the campaign runs, fewer than max_concurrent attempts are live, and the provider's bucket has a token:
 *      the next due number (in list order; `next_at` passed; its callee's local time inside the window)
 *      ─► campaign_attempt_decided (committed: the store re-checks pacing, concurrency and the do-not-call list)
 *      ─► dialer.dial(…) ─► campaign_attempt_dialed (its call id) — or, refused, campaign_attempt_finished
 *         with `dial:<code>`
 *
 * Restart (`kill -9` included): an attempt found `decided` at start was cut between its decision and its call id
 * (so is one, while running, whose call id could not be written: it is reconciled at the next tick the same way).
 * The dialer writes the call row before it sends anything, so `campaign_attempt_reconciled` links the row if there
 * is one (that call then ends as any call left ringing by a dead process does, and is NOT dialled again), and
 * otherwise marks the attempt abandoned — nobody was called — and the number is due again. A number is never
 * dialled twice for one decision.
 */
import type { Logger } from 'pino';
import { DialError, type OutboundDialer } from '../ingress/port.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import { minIntervalMs } from '../schema/campaigns.ts';
import { campaign_attempt_decided, campaign_attempt_dialed, campaign_attempt_finished, campaign_attempt_reconciled } from '../schema/reducers.ts';
import type { RowOf, Store } from '../store/index.ts';
import { TokenBucket } from './pacing.ts';
import { callableNow } from './window.ts';

export interface CampaignRunnerDeps {
  store: Store<SwitchboardTables>;
  /** The dialer of the adapter that offers one; absent: dials are refused (`dial:dialer_unavailable`). */
  dialer: () => OutboundDialer | undefined;
  logger: Logger;
  /** Wall clock (ms); tests inject one. */
  now?: () => number;
  tickMs?: number;
  /** True while the node must place no new call (draining): decisions wait, calls in progress still finish. */
  hold?: () => boolean;
}

type Campaign = RowOf<SwitchboardTables['campaigns']>;

export class CampaignRunner {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly tickMs: number;
  private readonly buckets = new Map<string, TokenBucket>();
  /** Attempts whose dial this process has in flight (decided, call id not yet written). */
  private readonly inflight = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: CampaignRunnerDeps) {
    this.log = deps.logger.child({ component: 'campaigns' });
    this.now = deps.now ?? Date.now;
    this.tickMs = deps.tickMs ?? 100;
  }

  /** Reconciles the attempts a previous process left decided, then ticks until `stop`. */
  async start(): Promise<void> {
    await this.reconcile();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Runs a tick soon (a campaign was created or resumed). */
  poke(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), 0);
  }

  /** Resolves once every dial this process started has its call id or outcome written. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0 || this.running) await new Promise((r) => setTimeout(r, 20));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick(), this.tickMs);
  }

  private tick(): void {
    this.timer = null;
    this.running = this.round()
      .catch((err: unknown) => this.log.error({ err }, 'campaign tick failed'))
      .finally(() => {
        this.running = null;
        this.schedule();
      });
  }

  private owned(): Campaign[] {
    return this.deps.store.read(null).campaigns.find({ owner_node: this.deps.store.node });
  }

  private async reconcile(): Promise<void> {
    for (const c of this.owned()) {
      for (const at of this.deps.store.read(c.tenant).campaign_attempts.find({ campaign_id: c.id, state: 'decided' })) {
        const r = await this.deps.store.submit(campaign_attempt_reconciled, { attempt_id: at.id }, this.who(c));
        if (r.outcome.ok) this.log.info({ campaign: c.id, attempt: at.id, number: at.number, ...r.outcome.result }, 'campaign attempt reconciled after restart');
      }
    }
  }

  private who(c: Campaign): { tenant: string; caller: string } {
    return { tenant: c.tenant, caller: `campaign:${c.id}` };
  }

  private async round(): Promise<void> {
    for (const c of this.owned()) {
      if (this.stopped) return;
      if (c.state !== 'running' && c.live === 0) continue;
      if (c.live > 0) await this.finishEnded(c);
      if (c.state === 'running' && !this.deps.hold?.()) await this.decide(c.id, c.tenant);
    }
  }

  /**
   * Step 1: the attempts whose call has ended; and any attempt still `decided` that this process is not dialling
   * (its call id could not be written): reconciled as after a restart, so it is linked or abandoned, never stuck.
   */
  private async finishEnded(c: Campaign): Promise<void> {
    const read = this.deps.store.read(c.tenant);
    for (const at of read.campaign_attempts.find({ campaign_id: c.id, state: 'decided' })) {
      if (!this.inflight.has(at.id)) await this.deps.store.submit(campaign_attempt_reconciled, { attempt_id: at.id }, this.who(c));
    }
    for (const at of read.campaign_attempts.find({ campaign_id: c.id, state: 'dialing' })) {
      const call = at.call_id ? read.calls.get(at.call_id) : undefined;
      if (call && call.state !== 'ended') continue;
      const r = await this.deps.store.submit(campaign_attempt_finished, { attempt_id: at.id, outcome: call ? null : 'call_missing' }, this.who(c));
      if (!r.outcome.ok) this.log.warn({ campaign: c.id, attempt: at.id, error: r.outcome.error }, 'campaign attempt not finished');
    }
  }

  private bucket(c: Campaign): TokenBucket {
    const key = `${c.tenant}\u0000${c.provider}\u0000${c.calls_per_second}`;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = new TokenBucket(c.calls_per_second, 1, 0)));
    return b;
  }

  /** Step 2: decisions while the campaign has room, the provider a token, and a number is due. */
  private async decide(campaignId: string, tenant: string): Promise<void> {
    const read = this.deps.store.read(tenant);
    const skipped = new Set<string>();
    for (;;) {
      const c = read.campaigns.get(campaignId);
      if (!c || c.state !== 'running' || c.live >= c.max_concurrent || this.stopped) return;
      const now = this.now();
      const pacing = read.campaign_pacing.findOne({ tenant, provider: c.provider });
      if (pacing && now < pacing.last_decided_at + minIntervalMs(c.calls_per_second)) return;
      const next = this.dueNumber(c, now, skipped);
      if (!next) return;
      const bucket = this.bucket(c);
      if (!bucket.tryTake(now)) return;
      const r = await this.deps.store.submit(campaign_attempt_decided, { campaign_id: c.id, number_id: next.id, local_time: next.local }, this.who(c));
      if (!r.outcome.ok) {
        this.log.warn({ campaign: c.id, number: next.number, error: r.outcome.error }, 'campaign decision refused');
        return;
      }
      const decidedAt = read.campaign_pacing.findOne({ tenant, provider: c.provider })?.last_decided_at;
      if (r.outcome.result.dnc) {
        this.log.info({ campaign: c.id, number: next.number }, 'campaign number on the do-not-call list: not dialled');
        skipped.add(next.id);
        bucket.refund();
        continue;
      }
      if (decidedAt !== undefined) bucket.spentAt(decidedAt);
      this.dial(c, next.number, r.outcome.result.attempt_id!);
    }
  }

  /** The first pending number that is due and inside its callee's window, with the callee's local time. */
  private dueNumber(c: Campaign, now: number, skipped: ReadonlySet<string>): { id: string; number: string; local: string } | null {
    const pending = this.deps.store.read(c.tenant).campaign_numbers.find({ campaign_id: c.id, state: 'pending' }, { orderBy: 'position' });
    const byZone = new Map<string, ReturnType<typeof callableNow>>(); // numbers share a few zones: one clock each
    for (const n of pending) {
      if (n.next_at > now || skipped.has(n.id)) continue;
      const zone = n.timezone ?? c.timezone;
      let w = byZone.get(zone);
      if (!w) byZone.set(zone, (w = callableNow({ start: c.window_start, end: c.window_end }, zone, now)));
      if (w.open) return { id: n.id, number: n.number, local: w.local };
    }
    return null;
  }

  /** Dials in the background; the attempt gets its call id, or its refusal as the outcome. */
  private dial(c: Campaign, to: string, attemptId: string): void {
    this.inflight.add(attemptId);
    const who = this.who(c);
    void (async () => {
      try {
        const dialer = this.deps.dialer();
        if (!dialer) throw new DialError(503, 'dialer_unavailable', 'no outbound dialer is running on this node');
        const { callId } = await dialer.dial({ tenant: c.tenant, caller: who.caller, from: c.from_number, to, agent: c.agent });
        await this.deps.store.submit(campaign_attempt_dialed, { attempt_id: attemptId, call_id: callId }, who);
      } catch (err) {
        const outcome = err instanceof DialError ? `dial:${err.code}` : 'dial:error';
        if (!(err instanceof DialError)) this.log.error({ err, campaign: c.id, attempt: attemptId }, 'campaign dial failed');
        await this.deps.store.submit(campaign_attempt_finished, { attempt_id: attemptId, outcome }, who).catch((e: unknown) => this.log.error({ err: e }, 'campaign attempt outcome not written'));
      } finally {
        this.inflight.delete(attemptId);
      }
    })();
  }
}
