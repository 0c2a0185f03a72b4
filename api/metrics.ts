/**
 * Prometheus metrics (prom-client), on a registry of this gateway's own so
 * two gateways in one process never share counters. Values owned by other
 * modules are read at scrape time through `collect` callbacks; counters that
 * live elsewhere as totals are advanced by their difference since the last
 * scrape.
 *
 * prom-client is not loaded at start (a restart answers /healthz without it):
 * the registry is made by `warm()` (the gateway calls it once it listens) or by
 * the first scrape, whichever comes first. Until then nothing is lost: commits
 * are counted into fixed buckets here (`CommitTimes`), the media clock keeps its
 * own totals, and the loop-delay monitor runs from `attach()`. (prom-client's
 * process metrics — GC, its own loop-lag figures — start with the registry.)
 *
 *   start ─► observeCommit() ─► CommitTimes          listening ─► warm() ─► import prom-client,
 *            attach() ─► loop-delay monitor on                              registry + collect callbacks
 *   GET /metrics ─► text() ─► (registry made if not yet) ─► registry.metrics()
 *
 * Sizing a node (SWITCHBOARD_MAX_CALLS) from a dashboard: every call's audio is
 * paced on one event loop, so the figures to watch are
 *   switchboard_event_loop_delay_seconds{stat="p50"|"p99"|"max"}  how late the loop ran timers
 *       since the previous scrape (perf_hooks monitorEventLoopDelay, 10 ms sampling, the sampling
 *       interval itself subtracted) — what callers hear first when the node is full;
 *   switchboard_media_tick_seconds  histogram of media clock ticks (each sends the due frames of
 *       every call on its phase) — a p99 nearing 5 ms (one phase of the 20 ms slot) means the
 *       node is near the calls it can pace;
 *   switchboard_media_clock_late_ticks_total  ticks that began more than one phase (5 ms) after
 *       the slot they ran was due: the loop held the media clock up.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type client from 'prom-client';
import { TICK_BUCKETS_MS, type TickTimes } from '../media/tick-time.ts';

type PromClient = typeof client;

/** monitorEventLoopDelay's sampling interval; its histogram holds interval + delay, so this is subtracted. */
const LOOP_RESOLUTION_MS = 10;
/** prom-client's text exposition format (`Registry.contentType`), known before the package is loaded. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** Upper bounds of `switchboard_store_commit_seconds`, ms. */
const COMMIT_BUCKETS_MS: readonly number[] = [0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000];

/** Bucket counts (not cumulative; the last entry: above every bound), their count and sum, ms. */
interface Buckets {
  readonly counts: Float64Array;
  count: number;
  sumMs: number;
}

/** Commit durations and commands applied, kept without prom-client (and without allocating) until a scrape reads them. */
class CommitTimes implements Buckets {
  readonly counts = new Float64Array(COMMIT_BUCKETS_MS.length + 1);
  count = 0;
  sumMs = 0;
  commands = 0;

  observe(commands: number, ms: number): void {
    const v = ms > 0 ? ms : 0;
    let i = 0;
    while (i < COMMIT_BUCKETS_MS.length && v > (COMMIT_BUCKETS_MS[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumMs += v;
    this.commands += commands;
  }
}

export interface MetricSources {
  callsActive: () => number;
  mediaStreams: () => number;
  frames: () => { sent: number; late: number };
  clock: () => { slots: number; skippedSlots: number; lateTicks: number };
  storeHeadSeq: () => number;
  subscriptions: () => number;
  /** 1 while the store cannot commit (disk full, I/O error), else 0. */
  storeUnavailable?: () => number;
  /** Log lines dropped because the log could not be written. */
  logLinesDropped?: () => number;
  /** The media clock's tick durations (MediaClock.tickTimes). */
  tickTimes?: () => TickTimes;
}

export class GatewayMetrics {
  private readonly commits = new CommitTimes();
  private sources: MetricSources | null = null;
  private registry: Promise<client.Registry> | null = null;
  private loopDelay: IntervalHistogram | null = null;

  /** Store hook: one committed batch. */
  observeCommit(info: { commands: number; ms: number }): void {
    this.commits.observe(info.commands, info.ms);
  }

  /** Wires the scrape-time values once the modules that own them exist; starts the loop-delay monitor. */
  attach(src: MetricSources): void {
    this.sources = src;
    const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    h.enable();
    this.loopDelay = h;
  }

  /** Loads prom-client and makes the registry now (the gateway calls it once it listens); idempotent. */
  warm(): Promise<void> {
    return this.made().then(() => undefined);
  }

  /** Stops the event-loop monitor (the gateway's stop). */
  close(): void {
    this.loopDelay?.disable();
    this.loopDelay = null;
  }

  async text(): Promise<string> {
    return (await this.made()).metrics();
  }

  get contentType(): string {
    return CONTENT_TYPE;
  }

  /** The registry, made once (a failed import is retried by the next call). */
  private made(): Promise<client.Registry> {
    this.registry ??= import('prom-client').then(
      (m) => this.build((m as unknown as { default: PromClient }).default),
      (err: unknown) => {
        this.registry = null;
        throw err;
      },
    );
    return this.registry;
  }

  private build(prom: PromClient): client.Registry {
    const registry = new prom.Registry();
    const r = [registry];
    prom.collectDefaultMetrics({ register: registry });
    const gauge = (name: string, help: string, read: () => number): void => {
      new prom.Gauge({ name, help, registers: r, collect() { this.set(read()); } });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      let last = 0;
      new prom.Counter({
        name,
        help,
        registers: r,
        collect() {
          const now = read();
          if (now > last) this.inc(now - last);
          last = now;
        },
      });
    };
    const commits = this.commits;
    counter('switchboard_store_commands_total', 'Commands applied (committed or rejected) by the store.', () => commits.commands);
    registry.registerMetric(bucketHistogram('switchboard_store_commit_seconds', 'Time from a batch starting to apply to its COMMIT returning.', COMMIT_BUCKETS_MS, () => commits) as unknown as client.Metric);
    const src = this.sources;
    if (!src) return registry;
    gauge('switchboard_calls_active', 'Calls with live media on this node.', src.callsActive);
    gauge('switchboard_media_streams', 'Outbound streams on the media clock.', src.mediaStreams);
    counter('switchboard_media_frames_sent_total', 'Outbound 20 ms frames sent.', () => src.frames().sent);
    counter('switchboard_media_frames_late_total', 'Outbound frames sent more than 40 ms after their slot.', () => src.frames().late);
    counter('switchboard_media_clock_slots_total', '20 ms slots run by the media clock.', () => src.clock().slots);
    counter('switchboard_media_clock_skipped_slots_total', 'Slots skipped after a stall longer than 200 ms (audio delayed).', () => src.clock().skippedSlots);
    counter('switchboard_media_clock_late_ticks_total', 'Media clock ticks that began more than one phase (5 ms) after the slot they ran was due (the event loop held the clock up).', () => src.clock().lateTicks);
    gauge('switchboard_store_head_seq', 'Sequence number of the newest committed event.', src.storeHeadSeq);
    gauge('switchboard_store_subscribers', 'Live table subscriptions (API sockets and internal).', src.subscriptions);
    if (src.storeUnavailable) gauge('switchboard_store_unavailable', '1 while the store cannot commit (disk full, I/O error): new calls are refused.', src.storeUnavailable);
    if (src.logLinesDropped) counter('switchboard_log_lines_dropped_total', 'Log lines dropped because the log could not be written (full disk, stuck reader).', src.logLinesDropped);
    this.eventLoopDelay(prom, registry);
    const ticks = src.tickTimes;
    if (ticks) registry.registerMetric(bucketHistogram('switchboard_media_tick_seconds', 'Time one media clock tick takes (sending the due frames of every call on its phase).', TICK_BUCKETS_MS, ticks) as unknown as client.Metric);
    return registry;
  }

  /** p50/p99/max of the event loop's delay since the previous scrape (the monitor is reset at each). */
  private eventLoopDelay(prom: PromClient, registry: client.Registry): void {
    const monitor = (): IntervalHistogram | null => this.loopDelay;
    new prom.Gauge({
      name: 'switchboard_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape (monitorEventLoopDelay, 10 ms sampling subtracted): stat = p50, p99, max.',
      labelNames: ['stat'],
      registers: [registry],
      collect() {
        const h = monitor();
        const s = (ns: number): number => (h && h.count > 0 ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) / 1000 : 0);
        this.set({ stat: 'p50' }, s(h?.percentile(50) ?? 0));
        this.set({ stat: 'p99' }, s(h?.percentile(99) ?? 0));
        this.set({ stat: 'max' }, s(h?.max ?? 0));
        h?.reset();
      },
    });
  }
}

/** A Prometheus histogram read at scrape time from fixed buckets kept elsewhere (bounds in ms, exposed in seconds). */
function bucketHistogram(name: string, help: string, boundsMs: readonly number[], read: () => Buckets): { name: string; help: string; type: string; aggregator: string; get(): Promise<unknown> } {
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const t = read();
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      let cumulative = 0;
      boundsMs.forEach((le, i) => {
        cumulative += t.counts[i] as number;
        values.push({ metricName: `${name}_bucket`, labels: { le: le / 1000 }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: t.count });
      values.push({ metricName: `${name}_sum`, labels: {}, value: t.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: {}, value: t.count });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
}
