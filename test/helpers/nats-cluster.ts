/**
 * A real NATS JetStream cluster for tests: N `nats-server` processes (default 3) on free ports, each with its own
 * config and store dir in a temp dir, routed to each other. Each server runs in its own process group, killed
 * (the whole group) by `stop()`, `kill(i)` and on process exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort } from './gateway.ts';
import { tmpDir } from './tmp.ts';

export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsCluster {
  /** Client URLs, one per server (`nats://127.0.0.1:PORT`). */
  urls: string[];
  /** Comma-separated, as SWITCHBOARD_CLUSTER_NATS takes them. */
  env: string;
  /** Kills server `i` (SIGKILL, its whole process group). */
  kill(i: number): void;
  /** Starts server `i` again (same config and store dir) after a kill; resolves once it accepts clients. */
  restart(i: number): Promise<void>;
  /** The index of server `name` (`s0`, `s1`, … as JetStream names its peers). */
  indexOf(name: string): number;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) killGroup(p);
});

function killGroup(p: ChildProcess): void {
  if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nats-server on ${port} did not listen within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Waits until the cluster has a JetStream meta leader (account info answers). */
async function waitForJetStream(urls: string[]): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the NATS cluster has no JetStream after 20 s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await nc.close();
  }
}

/** Starts `size` routed JetStream servers and waits until each accepts clients. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = tmpDir('sb-nats-');
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const procs: ChildProcess[] = [];
  const files: string[] = [];
  const spawnServer = (i: number): void => {
    const p = spawn(NATS_SERVER, ['-c', files[i] as string], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr?.resume();
    p.once('exit', () => live.delete(p));
    live.add(p);
    procs[i] = p;
  };
  for (let i = 0; i < size; i++) {
    const store = path.join(dir, `s${i}`);
    fs.mkdirSync(store, { recursive: true });
    const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
    const conf = [
      `server_name: s${i}`,
      `listen: 127.0.0.1:${ports[i]}`,
      `jetstream { store_dir: "${store}" }`,
      size > 1 ? `cluster { name: sbtest; listen: 127.0.0.1:${routePorts[i]}; routes: [${routes}] }` : '',
    ].join('\n');
    const file = path.join(dir, `s${i}.conf`);
    fs.writeFileSync(file, conf);
    files.push(file);
    spawnServer(i);
  }
  await Promise.all(ports.map((p) => waitForPort(p as number, 10_000)));
  const urls = ports.map((p) => `nats://127.0.0.1:${p}`);
  await waitForJetStream(urls);
  return {
    urls,
    env: urls.join(','),
    kill(i) {
      const p = procs[i];
      if (p) killGroup(p);
    },
    async restart(i) {
      const p = procs[i];
      if (p && p.exitCode === null && p.signalCode === null) await new Promise<void>((resolve) => p.once('exit', () => resolve()));
      spawnServer(i);
      await waitForPort(ports[i] as number, 10_000);
    },
    indexOf(name) {
      return Number(/^s(\d+)$/.exec(name)?.[1] ?? -1);
    },
    async stop() {
      await Promise.all(
        procs.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null || p.signalCode !== null) return resolve();
              p.once('exit', () => resolve());
              killGroup(p);
            }),
        ),
      );
    },
  };
}
