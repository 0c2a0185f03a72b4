/**
 * A local NATS JetStream cluster: `size` `nats-server` processes (default 3) on free ports of 127.0.0.1, each with
 * its own config file and JetStream store dir (file storage) under `dir`, routed to each other, each in its own
 * process group (cli/cluster/processes.ts). `switchboard cluster up` runs it under the data dir; the tests and the
 * benchmarks run it in a temporary dir (test/helpers/nats-cluster.ts).
 *
 *   dir/s0.conf  dir/s0/ (store)  dir/s0.log      server_name s0, listen 127.0.0.1:P0, cluster routes R0 R1 R2
 *   dir/s1.conf  …                                 ready = every port accepts clients and JetStream has a meta leader
 *
 * A server that takes it (nats-server ≥ 2.10) gets `sync_interval: always`: every write is on disk before it is
 * acknowledged, so even a majority of the servers killed at once loses nothing acknowledged. 2.9 (Debian 12's)
 * cannot: it syncs every 2 minutes and relies on replication (see store/jetstream-log.ts for what nodes do then).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freeTcpPorts, killGroup, sleep, spawnGroup, stopGroup, type Child } from './processes.ts';

/** Debian installs nats-server in /usr/sbin, which a non-root PATH lacks. */
export function natsServerBin(): string {
  for (const p of ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) if (fs.existsSync(p)) return p;
  return 'nats-server';
}

/** Whether this nats-server takes `jetstream { sync_interval: always }` (added in 2.10). */
export function syncsEveryWrite(bin: string): boolean {
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const m = /v(\d+)\.(\d+)/.exec(out);
  return m !== null && (Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 10));
}

export interface NatsClusterOptions {
  /** Where the configs, store dirs and logs go (created). */
  dir: string;
  size?: number;
  /** The `nats-server` binary (default: natsServerBin()). */
  bin?: string;
  /** The cluster's name in the route config. */
  name?: string;
  /** Chooses the `n` ports of one attempt (client ports then route ports; default: freeTcpPorts). */
  choosePorts?: (n: number) => Promise<number[]>;
}

export interface NatsCluster {
  /** Client URLs, one per server (`nats://127.0.0.1:PORT`). */
  urls: string[];
  /** Comma-separated, as SWITCHBOARD_CLUSTER_NATS takes them. */
  env: string;
  /** The server processes, in order. */
  servers: Child[];
  /** Kills server `i` (SIGKILL, its whole process group). */
  kill(i: number): void;
  /** Starts server `i` again (same config and store dir) after a kill; resolves once it accepts clients. */
  restart(i: number): Promise<void>;
  /** The index of server `name` (`s0`, `s1`, … as JetStream names its peers); -1 for another name. */
  indexOf(name: string): number;
  stop(): Promise<void>;
}

/** Waits until the cluster has a JetStream meta leader (account info answers). */
async function waitForJetStream(urls: string[], timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the NATS cluster has no JetStream after ${timeoutMs / 1000} s: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * Waits until `url` answers as NATS server `name`. A bare TCP connect is not enough on a shared loopback: the port may
 * belong to another process (which accepts, or is another NATS server), while ours exited on "address in use".
 */
async function waitForServer(url: string, name: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`nats-server ${name} exited before listening on ${url}`);
    if (Date.now() > deadline) throw new Error(`nats-server ${name} did not answer on ${url} within ${timeoutMs} ms`);
    try {
      const nc = await connect({ servers: url, timeout: 1000, reconnect: false });
      const answered = nc.info?.server_name;
      await nc.close();
      if (answered === name) return;
    } catch {
      // not listening yet, or not a NATS server
    }
    await sleep(50);
  }
}

/** A server that lost its port to another process between the choice and its bind. */
class PortTaken extends Error {}

/**
 * Starts `size` routed JetStream servers and waits until each accepts clients and JetStream answers. The ports are
 * chosen free, but the loopback is shared: a server that finds its port taken by the time it binds (its log says
 * "address already in use") makes the whole cluster start again on new ports, up to three times. The store dirs are
 * kept, so a cluster restarted over an existing dir keeps its streams.
 */
export async function startNatsCluster(opts: NatsClusterOptions): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
    }
  }
}

const logSize = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);

/** Whether a server's log says, past byte `from[i]` (what this attempt appended), that its port was taken. */
function portTaken(dir: string, from: number[]): boolean {
  return from.some((start, i) => {
    const f = path.join(dir, `s${i}.log`);
    return fs.existsSync(f) && /address already in use/i.test(fs.readFileSync(f).subarray(start).toString('utf8'));
  });
}

async function startOnce(opts: NatsClusterOptions): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const bin = opts.bin ?? natsServerBin();
  fs.mkdirSync(opts.dir, { recursive: true });
  const logsFrom = Array.from({ length: size }, (_, i) => logSize(path.join(opts.dir, `s${i}.log`)));
  const all = await (opts.choosePorts ?? freeTcpPorts)(size * 2);
  const ports = all.slice(0, size);
  const routePorts = all.slice(size);
  const servers: Child[] = [];
  const files: string[] = [];
  const syncAlways = syncsEveryWrite(bin);
  const spawnServer = (i: number): void => {
    servers[i] = spawnGroup(`nats-server s${i}`, bin, ['-c', files[i]!], { log: path.join(opts.dir, `s${i}.log`) });
  };
  for (let i = 0; i < size; i++) {
    const store = path.join(opts.dir, `s${i}`);
    fs.mkdirSync(store, { recursive: true });
    const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
    const conf = [
      `server_name: s${i}`,
      `listen: 127.0.0.1:${ports[i]}`,
      `jetstream { store_dir: ${JSON.stringify(store)}${syncAlways ? ', sync_interval: always' : ''} }`,
      size > 1 ? `cluster { name: ${opts.name ?? 'switchboard'}; listen: 127.0.0.1:${routePorts[i]}; routes: [${routes}] }` : '',
    ].join('\n');
    const file = path.join(opts.dir, `s${i}.conf`);
    fs.writeFileSync(file, `${conf}\n`);
    files.push(file);
    spawnServer(i);
  }
  const cluster: NatsCluster = {
    urls: ports.map((p) => `nats://127.0.0.1:${p}`),
    env: ports.map((p) => `nats://127.0.0.1:${p}`).join(','),
    servers,
    kill(i) {
      const s = servers[i];
      if (s) void killGroup(s);
    },
    async restart(i) {
      const s = servers[i];
      if (s?.running()) await s.exited;
      spawnServer(i);
      await waitForServer(`nats://127.0.0.1:${ports[i]}`, `s${i}`, 10_000, () => servers[i]!.running());
    },
    indexOf(name) {
      return Number(/^s(\d+)$/.exec(name)?.[1] ?? -1);
    },
    async stop() {
      await Promise.all(servers.map((s) => stopGroup(s, 5000)));
    },
  };
  try {
    await Promise.all(ports.map((p, i) => waitForServer(`nats://127.0.0.1:${p}`, `s${i}`, 10_000, () => servers[i]!.running())));
    await waitForJetStream(cluster.urls, 20_000);
  } catch (err) {
    await cluster.stop();
    const message = `${(err as Error).message} (logs: ${opts.dir}/s*.log)`;
    throw portTaken(opts.dir, logsFrom) ? new PortTaken(message) : new Error(message);
  }
  return cluster;
}
