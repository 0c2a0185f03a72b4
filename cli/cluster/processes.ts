/**
 * The child processes of a local cluster (`switchboard cluster up`, and the tests' NATS cluster): each one started in
 * its own process group (so a server that forks, as Kamailio does, is stopped whole, and a Ctrl-C at the terminal
 * reaches only the parent, which stops them in order), its output appended to a log file or kept in memory, and
 * every group still running SIGKILLed when this process exits — no orphans.
 *
 *   spawnGroup(name, bin, args, { log }) ─► Child { pid, exited, exitCode }
 *   stopGroup(child, graceMs[, signal])  ─► SIGTERM (or SIGINT) to the group, SIGKILL after graceMs
 *   killGroup(child)                     ─► SIGKILL to the group at once
 *
 * Also the free-port pickers: a TCP port (bind 0), a port free for both UDP and TCP (SIP listens on both), and
 * waiting until a TCP port accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (its group may hold forked children: stopGroup waits for those too). */
  readonly exited: Promise<void>;
  /** Its last output lines (kept when no log file was given, for error messages). */
  readonly tail: string[];
  running(): boolean;
}

const live = new Set<Child>();
process.on('exit', () => {
  for (const c of live) signalGroup(c, 'SIGKILL');
});

function signalGroup(c: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-c.pid, signal);
  } catch {
    // the group is gone
  }
}

/** True while any process of the group `pgid` exists (signal 0 probes without sending). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file; unset: keep the last lines in `tail`. */
  log?: string;
}

/** Starts `bin args` in a new process group; it is killed with the group when this process exits. */
export function spawnGroup(name: string, bin: string, args: string[], opts: SpawnOptions = {}): Child {
  const out = opts.log ? fs.openSync(opts.log, 'a') : null;
  const proc = spawn(bin, args, {
    detached: true,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', out ?? 'pipe', out ?? 'pipe'],
  });
  if (out !== null) fs.closeSync(out);
  const tail: string[] = [];
  const keep = (d: Buffer): void => {
    tail.push(...d.toString().split('\n').filter(Boolean));
    if (tail.length > 200) tail.splice(0, tail.length - 200);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      exitedFlag = true;
      resolve();
    });
    proc.once('error', (err) => {
      tail.push(`${name}: ${err.message}`);
      exitedFlag = true;
      resolve();
    });
  });
  if (proc.pid === undefined) throw new Error(`${name}: cannot start ${bin}`);
  const child: Child = { name, proc, pid: proc.pid, exited, tail, running: () => !exitedFlag };
  live.add(child);
  void exited.then(() => {
    if (!groupAlive(child.pid)) live.delete(child);
  });
  return child;
}

/** `signal` (SIGTERM) to the whole group; SIGKILL whatever is left after `graceMs`; resolves when no process of it is left. */
export async function stopGroup(c: Child, graceMs: number, signal: 'SIGTERM' | 'SIGINT' = 'SIGTERM'): Promise<void> {
  signalGroup(c, signal);
  const deadline = Date.now() + graceMs;
  while (groupAlive(c.pid) && Date.now() < deadline) await sleep(50);
  if (groupAlive(c.pid)) signalGroup(c, 'SIGKILL');
  await c.exited;
  while (groupAlive(c.pid)) await sleep(20);
  live.delete(c);
}

/** SIGKILL to the whole group at once (a node's death, in tests). */
export async function killGroup(c: Child): Promise<void> {
  signalGroup(c, 'SIGKILL');
  await c.exited;
  while (groupAlive(c.pid)) await sleep(20);
  live.delete(c);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on `host` now (the OS picks it; bind 0). */
export function freeTcpPort(host = '127.0.0.1', port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, host, () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

/**
 * `n` distinct free TCP ports: every socket stays bound until all are chosen, so two calls cannot be handed the same
 * port (which `freeTcpPort()` run n times may do once a closed port is offered again). Another process may still take
 * one before it is used; callers that spawn servers on them retry (cli/cluster/nats.ts).
 */
export async function freeTcpPorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(0, host, () => {
            const addr = srv.address();
            resolve(typeof addr === 'object' && addr ? addr.port : 0);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** A port free for both TCP and UDP on `host` (SIP listens on both with one number). */
export async function freeSipPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freeTcpPort(host);
    if (await udpFree(port, host)) return port;
  }
  throw new Error(`no port free for both UDP and TCP on ${host}`);
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs` or when `alive()` turns false. */
export function waitForTcp(host: string, port: number, timeoutMs: number, what: string, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (!alive()) reject(new Error(`${what} exited before listening on ${host}:${port}`));
        else if (Date.now() > deadline) reject(new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}
