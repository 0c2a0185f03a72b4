/**
 * The gateway under test, as a child process of bench/agents.bench.ts: what
 * `switchboard start` runs (loadConfig → createLogger → startGateway), plus a
 * read-only probe:
 *
 *  - every `agent_action_requested` of kind `say` the bridge submits is timed
 *    (abs clock, see shared.ts) with its call and text — "the say being
 *    requested" is the moment the bridge asks the store for the row, before
 *    its commit; the store method is wrapped at run time, no gateway file changes;
 *  - the event-loop delay in 100 ms slices (LoopSlices), and GC pauses ≥ 5 ms.
 *
 * IPC: sends {type:'listening'}; answers 'greeted' (calls that have had a
 * "Hello from" say requested) and 'report'; 'stop' stops the gateway and exits.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { loadConfig } from '../../cli/config/index.ts';
import { startGateway } from '../../cli/gateway.ts';
import { createLogger } from '../../cli/logger.ts';
import { abs, LoopSlices, send, type GatewayCommand } from './shared.ts';

const config = loadConfig(process.env);
const logger = createLogger(config.logLevel);
const gateway = await startGateway(config, logger);
const loop = new LoopSlices(100);

/** Garbage-collection pauses of 5 ms and more: [abs end time, ms]. */
const gcs: Array<[number, number]> = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.duration >= 5) gcs.push([performance.timeOrigin + e.startTime + e.duration, e.duration]);
});
gcObserver.observe({ entryTypes: ['gc'] });

const says: Array<[callId: string, text: string, at: number]> = [];
type Submit = (name: string, args: unknown, who: unknown) => Promise<unknown>;
const store = gateway.store as unknown as { submit: Submit };
const submit: Submit = store.submit.bind(gateway.store);
store.submit = (name, args, who) => {
  if (name === 'agent_action_requested') {
    const a = args as { kind?: string; call_id?: string; args?: { text?: unknown } };
    if (a.kind === 'say' && typeof a.args?.text === 'string') says.push([a.call_id ?? '', a.args.text, abs()]);
  }
  return submit(name, args, who);
};

const sidOf = new Map<string, string>();
function sid(callId: string): string {
  let s = sidOf.get(callId);
  if (s === undefined) {
    s = gateway.store.read('default').calls.get(callId)?.provider_call_id ?? '';
    if (s) sidOf.set(callId, s);
  }
  return s;
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  loop.stop();
  gcObserver.disconnect();
  try {
    await gateway.stop();
  } finally {
    process.exit(code);
  }
}

process.on('message', (raw) => {
  const cmd = raw as GatewayCommand;
  if (cmd.type === 'greeted') {
    send({ type: 'greeted', calls: new Set(says.filter(([, text]) => text.startsWith('Hello from')).map(([id]) => id)).size });
  } else if (cmd.type === 'report') {
    send({
      type: 'report',
      says: says.map(([id, text, at]) => [sid(id), text, at]),
      loopMax: loop.maxIn(cmd.windows),
      gcs,
      clockSkipped: gateway.clock.stats.skippedSlots,
    });
  } else if (cmd.type === 'stop') {
    void stop(0);
  }
});
process.once('SIGTERM', () => void stop(0));
process.once('disconnect', () => void stop(0));

send({ type: 'listening', port: Number(new URL(gateway.urls.http).port) });
