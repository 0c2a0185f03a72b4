/**
 * Prometheus metrics (prom-client), on a registry of this gateway's own so
 * two gateways in one process never share counters. Values owned by other
 * modules are read at scrape time through `collect` callbacks; counters that
 * live elsewhere as totals are advanced by their difference since the last
 * scrape.
 */
import client from 'prom-client';

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
}

export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly commands: client.Counter;
  private readonly commitSeconds: client.Histogram;

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
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
