/**
 * The gateway under test for bench/sip.bench.ts: startGateway with SIP on
 * SWITCHBOARD_SIP_PORT and RTP from SWITCHBOARD_RTP_PORTS, BENCH_SIP_NUMBER
 * routed to the default agent (no consent policy: the agent greets, so RTP
 * flows both ways), plus a read-only probe. Nothing in ingress/ changes: the
 * probe wraps RtpSession's private methods on the prototype at run time.
 *
 *   packetsIn / ignored        RtpSession.stats, summed over sessions
 *   jitter.{received,released,lost,late,duplicates}  the per-session JitterBuffer's
 *                              stats (lost = sequence gaps skipped; late/dup = dropped)
 *   delay p50/p99/max          in-gateway RTP delay: RtpSession.onRtp entered (the
 *                              socket's message event) → the same packet's decode
 *                              (released by the jitter buffer, G.711 decoded, handed
 *                              to the leg). Kernel queueing before the message
 *                              event is not in it (see the event-loop delay).
 *   activePeak                 SipApp.activeDialogs, sampled every 100 ms
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../../cli/config/index.ts';
import { startGateway } from '../../cli/gateway.ts';
import { createLogger } from '../../cli/logger.ts';
import { RtpSession } from '../../ingress/sip/rtp.ts';
import { schema } from '../../schema/index.ts';
import { Samples } from '../lib.ts';
import { ownCpuMs, send } from '../webrtc/children.ts';
import { number_added } from '../../schema/reducers.ts';

export interface SipGatewayStats {
  cpuMs: number;
  packetsIn: number;
  ignored: number;
  received: number;
  released: number;
  lost: number;
  late: number;
  duplicates: number;
  delay: { n: number; p50: number; p99: number; max: number };
  activePeak: number;
  active: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

interface JitterStats { received: number; released: number; lost: number; late: number; duplicates: number }
type Session = { stats: { packetsIn: number; ignored: number }; jitter: { stats: JitterStats } };
const proto = RtpSession.prototype as unknown as {
  onRtp(this: Session, buf: Buffer, rinfo: unknown): void;
  decode(this: Session, ts: number, payload: Buffer): void;
  close(this: Session): void;
};

const live = new Set<Session>();
const closed = { packetsIn: 0, ignored: 0, received: 0, released: 0, lost: 0, late: 0, duplicates: 0 };
const arrivals = new WeakMap<Session, Map<number, number>>();
let delay = new Samples();
const onRtp = proto.onRtp;
proto.onRtp = function (buf, rinfo) {
  const t = performance.now();
  live.add(this);
  if (buf.length >= 12 && (buf[1]! & 0x7f) !== 101) {
    let m = arrivals.get(this);
    if (!m) arrivals.set(this, (m = new Map()));
    m.set(buf.readUInt32BE(4), t);
  }
  onRtp.call(this, buf, rinfo);
};
const decode = proto.decode;
proto.decode = function (ts, payload) {
  decode.call(this, ts, payload);
  const m = arrivals.get(this);
  const t = m?.get(ts);
  if (t !== undefined) {
    delay.push(performance.now() - t);
    m!.delete(ts);
    if (m!.size > 64) m!.clear();
  }
};
const close = proto.close;
proto.close = function () {
  if (live.delete(this)) {
    closed.packetsIn += this.stats.packetsIn;
    closed.ignored += this.stats.ignored;
    for (const k of ['received', 'released', 'lost', 'late', 'duplicates'] as const) closed[k] += this.jitter.stats[k];
  }
  close.call(this);
};

const config = loadConfig(process.env);
const gateway = await startGateway(config, createLogger(config.logLevel));
const who = { tenant: 'default', caller: 'bench' };
void schema;
const added = await gateway.store.submit(number_added, { number: process.env.BENCH_SIP_NUMBER ?? '+15553330000', agent: 'default' }, who);
if (!added.outcome.ok) throw new Error(`number_added: ${JSON.stringify(added.outcome)}`);

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
let activePeak = 0;
setInterval(() => (activePeak = Math.max(activePeak, gateway.sip.app.activeDialogs)), 100).unref();

function totals(): Omit<SipGatewayStats, 'delay' | 'activePeak' | 'active' | 'loopP99Ms' | 'loopMaxMs'> {
  const t = { cpuMs: ownCpuMs(), ...closed };
  for (const s of live) {
    t.packetsIn += s.stats.packetsIn;
    t.ignored += s.stats.ignored;
    for (const k of ['received', 'released', 'lost', 'late', 'duplicates'] as const) t[k] += s.jitter.stats[k];
  }
  return t;
}
let base = totals();

process.on('message', (raw) => {
  const cmd = raw as { type: string };
  if (cmd.type === 'reset') {
    base = totals();
    delay = new Samples();
    activePeak = 0;
    eld.reset();
    send({ type: 'stats' });
  } else if (cmd.type === 'snapshot') {
    const t = totals();
    const d = delay.summary();
    const stats: SipGatewayStats = {
      cpuMs: t.cpuMs - base.cpuMs,
      packetsIn: t.packetsIn - base.packetsIn,
      ignored: t.ignored - base.ignored,
      received: t.received - base.received,
      released: t.released - base.released,
      lost: t.lost - base.lost,
      late: t.late - base.late,
      duplicates: t.duplicates - base.duplicates,
      delay: { n: d.n, p50: d.p50, p99: d.p99, max: d.max },
      activePeak,
      active: gateway.sip.app.activeDialogs,
      loopP99Ms: Math.max(0, eld.percentile(99) / 1e6 - 10),
      loopMaxMs: Math.max(0, eld.max / 1e6 - 10),
    };
    send({ type: 'stats', stats });
  } else if (cmd.type === 'stop') {
    void gateway.stop().finally(() => process.exit(0));
  }
});
process.once('disconnect', () => process.exit(0));
send({ type: 'listening', port: gateway.sip.port });
