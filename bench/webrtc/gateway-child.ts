/**
 * The gateway under test for bench/webrtc.bench.ts: what `switchboard start`
 * runs (loadConfig → createLogger → startGateway), plus a read-only probe:
 * process CPU (process.cpuUsage), /metrics' frame counters, the WebRTC legs'
 * frame counts (legs collected by wrapping calls.attach at run time), and the
 * event-loop delay. No gateway file is changed.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../../cli/config/index.ts';
import { startGateway } from '../../cli/gateway.ts';
import { createLogger } from '../../cli/logger.ts';
import { WebrtcLeg } from '../../ingress/webrtc/leg.ts';
import type { CallLeg } from '../../media/call-leg.ts';
import { mainThreadCpuMs, ownCpuMs, send } from './children.ts';
import type { ServerCommand, ServerStats } from './shared.ts';

const config = loadConfig(process.env);
const gateway = await startGateway(config, createLogger(config.logLevel));
const base = gateway.urls.http;
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
let elu0 = performance.eventLoopUtilization();

const legs = new Set<WebrtcLeg>();
const calls = gateway.calls;
const attach = calls.attach.bind(calls);
calls.attach = (ref: { tenant: string; callId: string }, leg: CallLeg) => {
  if (leg instanceof WebrtcLeg) legs.add(leg);
  return attach(ref, leg);
};

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

async function totals(): Promise<ServerStats> {
  let framesIn = 0;
  let framesOut = 0;
  for (const l of legs) {
    framesIn += l.stats.framesIn;
    framesOut += l.stats.framesOut;
  }
  return { cpuMs: ownCpuMs(), late: await metric('switchboard_media_frames_late_total'), framesOut, framesIn, loopP99Ms: Math.max(0, eld.percentile(99) / 1e6 - 10), loopUtil: 0, mainCpuMs: mainThreadCpuMs() };
}

let base0 = await totals();
process.on('message', (raw) => {
  const cmd = raw as ServerCommand;
  if (cmd.type === 'reset') {
    void totals().then((t) => {
      base0 = t;
      eld.reset();
    elu0 = performance.eventLoopUtilization();
      send({ type: 'stats', stats: t });
    });
  } else if (cmd.type === 'snapshot') {
    void totals().then((t) =>
      send({
        type: 'stats',
        stats: { cpuMs: t.cpuMs - base0.cpuMs, late: t.late - base0.late, framesOut: t.framesOut - base0.framesOut, framesIn: t.framesIn - base0.framesIn, loopP99Ms: t.loopP99Ms, loopUtil: performance.eventLoopUtilization(elu0).utilization, mainCpuMs: t.mainCpuMs - base0.mainCpuMs },
      }),
    );
  } else if (cmd.type === 'stop') {
    void gateway.stop().finally(() => process.exit(0));
  }
});
process.once('disconnect', () => process.exit(0));
send({ type: 'listening', port: Number(new URL(base).port) });
