/**
 * The cluster benchmarks' cluster: composed from cli/cluster's own pieces rather than run as `switchboard cluster up`,
 * because a bench must restart one killed node on its data dir and ports, which `cluster up` does not do.
 *
 *   startNatsCluster (3 nats-server, JetStream R3)                     cli/cluster/nats.ts
 *   prepareNodes → startNode × N (`switchboard start`, own group)      cli/cluster/up.ts
 *   startHaproxy (deploy/haproxy template, leastconn, /readyz checks)  cli/cluster/balancers.ts
 *
 * No Kamailio: these benches speak Twilio only. Nodes get what the cluster tests give them (test/helpers/cluster-up.ts):
 * production profile, fsync periodic (the log's durability is JetStream's), log level info to their log file, the
 * tests' admin and Twilio tokens, no STT, espeak TTS, plus `env`.
 *
 *   kill(i)     SIGKILL to node i's process group (a crash)
 *   restart(i)  node i again on the same data dir and ports; resolves once /readyz answers and HAProxy has it UP
 *   cpu()       CPU ms so far of the nodes, HAProxy and NATS, each a process group (see groupCpuMs)
 *   route()     a number → the default agent (and its consent policy), through the API, applied on every node
 */
import fs from 'node:fs';
import path from 'node:path';
import { startHaproxy, type Balancer } from '../../cli/cluster/balancers.ts';
import { startNatsCluster, type NatsCluster } from '../../cli/cluster/nats.ts';
import { freeTcpPort, killGroup, stopGroup, type Child } from '../../cli/cluster/processes.ts';
import { prepareNodes, startNode, waitReady, type ClusterNode, type PreparedNode } from '../../cli/cluster/up.ts';
import { api } from '../../test/helpers/api.ts';
import { ADMIN_TOKEN, gatewayEnv } from '../../test/helpers/gateway.ts';
import { tmpDir } from '../../test/helpers/tmp.ts';
import { sleep } from '../lib.ts';

export interface BenchCluster {
  dir: string;
  /** HAProxy's URL: every node's SWITCHBOARD_PUBLIC_URL, the URL the load signs. */
  httpUrl: string;
  nats: NatsCluster;
  nodes: ClusterNode[];
  haproxy: Balancer;
  kill(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  cpu(): { nodes: number[]; haproxy: number; nats: number };
  stop(): Promise<void>;
}

let clkTck = 100;
/** The clock ticks per second /proc/<pid>/stat counts in (getconf CLK_TCK). */
export function setGroupClockTicks(n: number): void {
  if (Number.isFinite(n) && n > 0) clkTck = n;
}

/**
 * CPU time in ms (user + system) of every live process of the process group `pgid`, plus the children each has
 * reaped (cutime + cstime: e.g. a TTS subprocess that ran and exited), from /proc/<pid>/stat.
 */
export function groupCpuMs(pgid: number): number {
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name: state(3) ppid(4) pgrp(5) … utime(14) stime(15) cutime(16) cstime(17).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) !== pgid) continue;
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (ticks * 1000) / clkTck;
}

/** The address of HAProxy's stats page, from the config it was started with (`listen stats` / `bind`). */
function statsUrl(config: string): string {
  const m = /listen stats\s*\n\s*bind (\S+)/.exec(fs.readFileSync(config, 'utf8'));
  if (!m) throw new Error(`no stats bind in ${config}`);
  return `http://${m[1]}/stats;csv`;
}

/** Polls HAProxy's stats CSV until server `id` of backend `nodes` is UP (its health checks pass again). */
async function haproxyUp(url: string, id: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const csv = await (await fetch(url, { signal: AbortSignal.timeout(1000) })).text();
      const row = csv.split('\n').find((l) => l.startsWith(`nodes,${id},`));
      if (row?.split(',')[17]?.startsWith('UP')) return;
    } catch {
      // not answering yet
    }
    await sleep(100);
  }
  throw new Error(`HAProxy did not mark ${id} UP within ${timeoutMs / 1000} s`);
}

/** Starts NATS (3), `nodes` nodes and HAProxy in a temporary dir; resolves once every node is ready and UP. */
export async function startBenchCluster(opts: { nodes: number; env?: NodeJS.ProcessEnv; say?: (line: string) => void }): Promise<BenchCluster> {
  const say = opts.say ?? (() => undefined);
  const dir = tmpDir('sb-bench-cluster-');
  for (const d of ['nats', 'nodes', 'lb', 'logs']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const env = gatewayEnv({ logLevel: 'info', env: { SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_FSYNC_POLICY: 'periodic', ...opts.env } }, 0, dir);
  const nodes: ClusterNode[] = [];
  let nats: NatsCluster | null = null;
  let haproxy: Child | null = null;
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => stopGroup(n.child, 15_000, 'SIGINT')));
    if (haproxy) await stopGroup(haproxy, 5000);
    await nats?.stop();
  };
  try {
    nats = await startNatsCluster({ dir: path.join(dir, 'nats'), size: 3 });
    const httpUrl = `http://127.0.0.1:${await freeTcpPort()}`;
    const prepared: PreparedNode[] = await prepareNodes({ nodes: opts.nodes, dir });
    const shared = { nats: nats.env, publicUrl: httpUrl, token: ADMIN_TOKEN, rtpBase: 30_000 + 2 * Math.floor(Math.random() * 5000) };
    // As `cluster up` does: the first node alone (it bootstraps the admin into the shared log), then the others.
    for (const [i, p] of prepared.entries()) {
      nodes.push(startNode(p, i, { env }, shared));
      if (i === 0) await waitReady(nodes[0]!, 120_000);
    }
    await Promise.all(nodes.map((n) => waitReady(n, 120_000)));
    const lb = await startHaproxy(path.join(dir, 'lb'), '127.0.0.1', Number(new URL(httpUrl).port), nodes, (c) => (haproxy = c));
    const stats = statsUrl(lb.config);
    for (const n of nodes) await haproxyUp(stats, n.id, 30_000);
    say(`cluster: ${nodes.length} node(s) behind HAProxy ${httpUrl}, NATS ${nats.env}`);
    const natsServers = nats;
    return {
      dir,
      httpUrl,
      nats: natsServers,
      nodes,
      haproxy: lb,
      kill: (i) => killGroup(nodes[i]!.child),
      restart: async (i) => {
        if (nodes[i]!.child.running()) await killGroup(nodes[i]!.child);
        nodes[i] = startNode(prepared[i]!, i, { env }, shared);
        await waitReady(nodes[i]!, 120_000);
        await haproxyUp(stats, nodes[i]!.id, 30_000);
      },
      cpu: () => ({ nodes: nodes.map((n) => groupCpuMs(n.child.pid)), haproxy: groupCpuMs(lb.child.pid), nats: natsServers.servers.reduce((a, s) => a + groupCpuMs(s.pid), 0) }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Routes `number` to the default agent through HAProxy's API — with `policy` (consent_policy_created's arguments),
 * created first, when given — and waits until every node has applied it.
 */
export async function route(c: BenchCluster, number: string, policy?: { name: string } & Record<string, unknown>): Promise<void> {
  if (policy) {
    const p = await api(c.httpUrl, 'POST', '/v1/consent-policies', { body: policy });
    if (p.status !== 201) throw new Error(`consent policy: ${p.status} ${JSON.stringify(p.body)}`);
  }
  const r = await api(c.httpUrl, 'POST', '/v1/numbers', { body: { number, agent: 'default', provider: 'twilio', ...(policy ? { consent_policy: policy.name } : {}) } });
  if (r.status !== 201) throw new Error(`number: ${r.status} ${JSON.stringify(r.body)}`);
  for (const n of c.nodes) {
    const deadline = Date.now() + 30_000;
    while (!JSON.stringify((await api(`http://${n.host}:${n.httpPort}`, 'GET', '/v1/numbers')).body).includes(number)) {
      if (Date.now() > deadline) throw new Error(`${n.id} has not applied ${number} within 30 s`);
      await sleep(100);
    }
  }
}
