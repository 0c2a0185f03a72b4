/**
 * Prometheus metrics (prom-client), on a registry of this gateway's own so
 * two gateways in one process never share counters. Values owned by other
 * modules are read at scrape time through `collect` callbacks; counters that
 * live elsewhere as totals are advanced by their difference since the last
 * scrape.
 *
 * Sizing a node (SWITCHBOARD_MAX_CALLS) from a dashboard: every call's audio is
 * paced on one event loop, so the figures to watch are
 *   switchboard_event_loop_delay_seconds{stat="p50"|"p99"|"max"}  how late the loop ran timers
 *       since the previous scrape (perf_hooks monitorEventLoopDelay, 10 ms sampling, the sampling
 *       interval itself subtracted) — what callers hear first when the node is full;
 *   switchboard_media_tick_seconds  histogram of media clock ticks (each sends the due frames of
 *       every call on its phase) — a p99 nearing 5 ms (one phase of the 20 ms slot) means the
 *       node is near the calls it can pace.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import { TICK_BUCKETS_MS, type TickTimes } from '../media/tick-time.ts';

/** monitorEventLoopDelay's sampling interval; its histogram holds interval + delay, so this is subtracted. */
const LOOP_RESOLUTION_MS = 10;

export interface MetricSources {
  callsActive: () => number;
  mediaStreams: () => number;
  frames: () => { sent: number; late: number };
  clock: () => { slots: number; skippedSlots: number };
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
  readonly registry = new client.Registry();
  private readonly commands: client.Counter;
  private readonly commitSeconds: client.Histogram;
  private loopDelay: IntervalHistogram | null = null;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
    this.commands = new client.Counter({ name: 'switchboard_store_commands_total', help: 'Commands applied (committed or rejected) by the store.', registers: [this.registry] });
    this.commitSeconds = new client.Histogram({
      name: 'switchboard_store_commit_seconds',
      help: 'Time from a batch starting to apply to its COMMIT returning.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
  }

  /** Store hook: one committed batch. */
  observeCommit(info: { commands: number; ms: number }): void {
    this.commands.inc(info.commands);
    this.commitSeconds.observe(info.ms / 1000);
  }

  /** Wires the scrape-time values once the modules that own them exist. */
  attach(src: MetricSources): void {
    const r = [this.registry];
    const gauge = (name: string, help: string, read: () => number): void => {
      new client.Gauge({ name, help, registers: r, collect() { this.set(read()); } });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      let last = 0;
      new client.Counter({
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
    gauge('switchboard_calls_active', 'Calls with live media on this node.', src.callsActive);
    gauge('switchboard_media_streams', 'Outbound streams on the media clock.', src.mediaStreams);
    counter('switchboard_media_frames_sent_total', 'Outbound 20 ms frames sent.', () => src.frames().sent);
    counter('switchboard_media_frames_late_total', 'Outbound frames sent more than 40 ms after their slot.', () => src.frames().late);
    counter('switchboard_media_clock_slots_total', '20 ms slots run by the media clock.', () => src.clock().slots);
    counter('switchboard_media_clock_skipped_slots_total', 'Slots skipped after a stall longer than 200 ms (audio delayed).', () => src.clock().skippedSlots);
    gauge('switchboard_store_head_seq', 'Sequence number of the newest committed event.', src.storeHeadSeq);
    gauge('switchboard_store_subscribers', 'Live table subscriptions (API sockets and internal).', src.subscriptions);
    if (src.storeUnavailable) gauge('switchboard_store_unavailable', '1 while the store cannot commit (disk full, I/O error): new calls are refused.', src.storeUnavailable);
    if (src.logLinesDropped) counter('switchboard_log_lines_dropped_total', 'Log lines dropped because the log could not be written (full disk, stuck reader).', src.logLinesDropped);
    this.eventLoopDelay();
    if (src.tickTimes) this.registry.registerMetric(tickHistogram(src.tickTimes) as unknown as client.Metric);
  }

  /** Stops the event-loop monitor (the gateway's stop). */
  close(): void {
    this.loopDelay?.disable();
    this.loopDelay = null;
  }

  /** p50/p99/max of the event loop's delay since the previous scrape (the monitor is reset at each). */
  private eventLoopDelay(): void {
    const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    h.enable();
    this.loopDelay = h;
    new client.Gauge({
      name: 'switchboard_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape (monitorEventLoopDelay, 10 ms sampling subtracted): stat = p50, p99, max.',
      labelNames: ['stat'],
      registers: [this.registry],
      collect() {
        const s = (ns: number): number => (h.count > 0 ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) / 1000 : 0);
        this.set({ stat: 'p50' }, s(h.percentile(50)));
        this.set({ stat: 'p99' }, s(h.percentile(99)));
        this.set({ stat: 'max' }, s(h.max));
        h.reset();
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** `switchboard_media_tick_seconds` as a Prometheus histogram, read from the clock's own buckets at scrape time. */
function tickHistogram(read: () => TickTimes): { name: string; help: string; type: string; aggregator: string; get(): Promise<unknown> } {
  const name = 'switchboard_media_tick_seconds';
  const help = 'Time one media clock tick takes (sending the due frames of every call on its phase).';
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const t = read();
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      let cumulative = 0;
      TICK_BUCKETS_MS.forEach((le, i) => {
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
