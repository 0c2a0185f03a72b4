/**
 * The gateway under test, as a child process of bench/twilio.bench.ts.
 *
 * Does what `switchboard start` (cli/main.ts) does — loadConfig(env) →
 * createLogger → startGateway — and adds a read-only probe the gateway does not
 * expose (its /metrics has only switchboard_calls_active and
 * switchboard_media_streams): per-frame outbound send lateness, the pacer's own
 * late-frame counts, MediaClock skipped slots, inbound media counts and the
 * event-loop delay. The probe wraps instance methods at run time
 * (clock.add, each stream's runSlot, calls.attach) and adds one 'frame'
 * listener per stream; no gateway file is changed. Its cost is one closure
 * call per stream per 20 ms slot and one performance.now() per frame sent.
 * BENCH_TWILIO_PROBE=0 turns it off (then only CPU/RSS are meaningful).
 *
 * IPC: sends {type:'listening'}; answers 'reset' / 'snapshot' with
 * ServerStats; 'stop' stops the gateway and exits.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../../cli/config/index.ts';
import { startGateway } from '../../cli/gateway.ts';
import { createLogger } from '../../cli/logger.ts';
import { TwilioLeg } from '../../ingress/twilio/leg.ts';
import type { CallLeg } from '../../media/call-leg.ts';
import { LATE_FRAME_MS, type PacedStream } from '../../media/pacer.ts';
import { Hist, observeGc, send, type ProbeCommand, type ServerStats } from './shared.ts';

const config = loadConfig(process.env);
const logger = createLogger(config.logLevel);
const gateway = await startGateway(config, logger);
const probeOn = process.env.BENCH_TWILIO_PROBE !== '0';

const sendLateness = new Hist();
let framesSent = 0;
let lateFrames = 0;
let maxLateness = 0;
const streams = new Set<PacedStream>();
const legs = new Set<TwilioLeg>();
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

/** Time the main thread spends in one kind of synchronous work: count, total, max, distribution. */
class Blocking {
  readonly hist = new Hist();
  total = 0;
  wrap<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const t0 = performance.now();
      try {
        return fn(...args);
      } finally {
        const d = performance.now() - t0;
        this.hist.add(d);
        this.total += d;
      }
    };
  }
  reset(): void {
    this.hist.reset();
    this.total = 0;
  }
  summary(): Record<string, number> {
    return { n: this.hist.count, totalMs: this.total, p50: this.hist.percentile(50), p99: this.hist.percentile(99), max: this.hist.max };
  }
}
/** Store apply loop: one drain = the queued commands' batch transaction(s), COMMIT (fsync) included, then promise settling. */
const drains = new Blocking();
/** The store's WAL checkpoint timer (runs wal_checkpoint(PASSIVE) on the main thread past 2 MiB). */
/** One MediaClock tick: every due slot × every registered stream (frames, marks, ws.send). */
const ticks = new Blocking();
/** Garbage collection pauses (PerformanceObserver 'gc'). */
const gcs = new Hist();
let gcTotal = 0;
observeGc((ms) => {
  gcs.add(ms);
  gcTotal += ms;
});

if (probeOn) {
  const clock = gateway.clock;
  const add = clock.add.bind(clock);
  clock.add = (stream: PacedStream): void => {
    if (!streams.has(stream)) {
      streams.add(stream);
      let slot = 0;
      const runSlot = stream.runSlot.bind(stream);
      stream.runSlot = (slotTime: number, now: number): void => {
        slot = slotTime;
        runSlot(slotTime, now);
      };
      // Registered after the pipeline's own listener (MediaPipeline subscribes before clock.add),
      // so this runs once leg.sendFrame → ws.send has returned.
      stream.on('frame', () => {
        const late = performance.now() - slot;
        sendLateness.add(late);
        framesSent++;
        if (late > LATE_FRAME_MS) lateFrames++;
        if (late > maxLateness) maxLateness = late;
      });
    }
    add(stream);
  };
  clock.tick = ticks.wrap(clock.tick.bind(clock));
  // Private internals, read-only timing: the engine's drain (scheduled as `setImmediate(() => this.drain())`)
  // looks the method up per call. (WAL checkpoints run on the store's checkpoint thread, off this loop.)
  const store = gateway.store as unknown as { engine: { drain(): void } };
  store.engine.drain = drains.wrap(store.engine.drain.bind(store.engine));
  const calls = gateway.calls;
  const attach = calls.attach.bind(calls);
  calls.attach = (ref: { tenant: string; callId: string }, leg: CallLeg) => {
    if (leg instanceof TwilioLeg) legs.add(leg);
    return attach(ref, leg);
  };
}

interface Base {
  pacerLate: number;
  pacerSent: number;
  skipped: number;
  mediaIn: number;
  droppedIn: number;
}
const totals = (): Base => {
  let pacerLate = 0;
  let pacerSent = 0;
  for (const s of streams) {
    pacerLate += s.stats.lateFrames;
    pacerSent += s.stats.framesSent;
  }
  let mediaIn = 0;
  let droppedIn = 0;
  for (const l of legs) {
    mediaIn += l.stats.mediaMessages;
    droppedIn += l.stats.dropped.malformed + l.stats.dropped.outOfOrder + l.stats.dropped.unknown;
  }
  return { pacerLate, pacerSent, skipped: gateway.clock.stats.skippedSlots, mediaIn, droppedIn };
};
let base = totals();

function snapshot(): ServerStats {
  const t = totals();
  // The histogram records whole timer intervals (resolution + delay): subtract the 10 ms resolution.
  const ms = (ns: number): number => Math.max(0, ns / 1e6 - 10);
  return {
    sendLateness: sendLateness.toJSON(),
    loopDelay: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean) },
    framesSent,
    lateFrames,
    maxLatenessMs: maxLateness,
    skippedSlots: t.skipped - base.skipped,
    mediaIn: t.mediaIn - base.mediaIn,
    droppedIn: t.droppedIn - base.droppedIn,
    streams: gateway.clock.size,
    heapUsedMb: process.memoryUsage().heapUsed / 1048576,
    blocking: {
      storeDrain: drains.summary(),
      clockTick: ticks.summary(),
      gc: { n: gcs.count, totalMs: gcTotal, p50: gcs.percentile(50), p99: gcs.percentile(99), max: gcs.max },
    },
    extra: {
      // The pacer's own accounting (PacedStream.stats): lateness = tick start − slot time.
      pacerLateFrames: t.pacerLate - base.pacerLate,
      pacerFramesSent: t.pacerSent - base.pacerSent,
      callsActive: gateway.calls.size,
      clockTicks: gateway.clock.stats.ticks,
    },
  };
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await gateway.stop();
  } finally {
    process.exit(code);
  }
}

process.on('message', (raw) => {
  const cmd = raw as ProbeCommand;
  if (cmd.type === 'reset') {
    sendLateness.reset();
    framesSent = 0;
    lateFrames = 0;
    maxLateness = 0;
    eld.reset();
    drains.reset();
    ticks.reset();
    gcs.reset();
    gcTotal = 0;
    base = totals();
    send({ type: 'stats', stats: snapshot() });
  } else if (cmd.type === 'snapshot') {
    send({ type: 'stats', stats: snapshot() });
  } else if (cmd.type === 'stop') {
    void stop(0);
  }
});
process.once('SIGTERM', () => void stop(0));
process.once('disconnect', () => void stop(0));

const port = Number(new URL(gateway.urls.http).port);
send({ type: 'listening', port });
