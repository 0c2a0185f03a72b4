/**
 * `switchboard cluster up --nodes N`: a whole cluster on one machine, to try cluster mode.
 *
 *   DIR (default DATA_DIR/cluster)
 *   ├─ nats/      3 nats-server (JetStream, file storage, routed)    cli/cluster/nats.ts
 *   ├─ nodes/node-1 … node-N   each node's own data dir (the same recording master key copied into each)
 *   ├─ lb/        haproxy.cfg, kamailio.cfg, dispatcher.list          cli/cluster/balancers.ts (deploy/ templates)
 *   └─ logs/      one log file per node
 *
 *              HTTP :P (HAProxy) ──┬─► node-1 127.0.0.1:h1 ─┐
 *   callers ──                     └─► node-2 127.0.0.1:h2 ─┼─► NATS s0 s1 s2 (one log, R3)
 *              SIP  :S (Kamailio) ──┬─► node-1 127.0.0.1:s1 ─┘
 *                                   └─► node-2 127.0.0.1:s2
 *
 * Every port is picked free when it starts (none is fixed; `--http-port`/`--sip-port` choose the public two). Each
 * node is a real `switchboard start` with the caller's environment plus its own SWITCHBOARD_NODE_ID, data dir,
 * ports, RTP range, SWITCHBOARD_CLUSTER_NATS, and, alike on every node, SWITCHBOARD_PUBLIC_URL (HAProxy's URL: the
 * URL providers sign) and SWITCHBOARD_ADMIN_TOKEN. The first node starts alone (it bootstraps the admin into the
 * shared log), then the others together. Every process runs in its own process group; `stop()` (Ctrl-C, SIGTERM)
 * stops the nodes first (SIGINT: they stop at once, as `switchboard start` does on SIGINT), then the balancers, then NATS, and
 * leaves no process behind. DIR/pids.json names the running process groups: a `cluster up` over a DIR whose earlier
 * cluster still runs (its `cluster up` was killed with -9, which leaves the children running) is refused.
 * prepareNodes, startNode and waitReady are exported for the cluster benchmarks (bench/cluster/local.ts), which
 * compose the same pieces so they can restart a killed node on its data dir and ports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { newToken } from '../../api/auth/secrets.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { startHaproxy, startKamailio, type Backend, type Balancer } from './balancers.ts';
import { startNatsCluster, type NatsCluster } from './nats.ts';
import { freeSipPort, freeTcpPort, groupAlive, killGroup, sleep, spawnGroup, stopGroup, type Child } from './processes.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
/** RTP ports per node (each call takes an RTP/RTCP pair). */
const RTP_SPAN = 400;
export const MAX_NODES = 16;

export interface ClusterUpOptions {
  nodes: number;
  /** Where everything goes (created; kept after stop: a second `cluster up` over it continues the same log). */
  dir: string;
  /** Address HAProxy and Kamailio listen on (the nodes always listen on 127.0.0.1 behind them). */
  host: string;
  /** Public ports; 0 = a free one. */
  httpPort: number;
  sipPort: number;
  /** The environment every node inherits (the caller's, as `switchboard start` would see it). */
  env: NodeJS.ProcessEnv;
  /** SWITCHBOARD_ADMIN_TOKEN if set; else one is made and kept in DIR/admin-token. */
  adminToken: string | undefined;
  /** Progress lines ("node-2 ready"). */
  say: (line: string) => void;
}

export interface ClusterNode extends Backend {
  dataDir: string;
  log: string;
  child: Child;
}

export interface LocalCluster {
  dir: string;
  httpUrl: string;
  sipUri: string;
  adminToken: string;
  nats: NatsCluster;
  nodes: ClusterNode[];
  haproxy: Balancer;
  kamailio: Balancer;
  /** Stops every process (nodes, balancers, NATS); idempotent. `hard`: SIGKILL at once. */
  stop(hard?: boolean): Promise<void>;
}

/** The admin token: the given one, else the one kept in DIR/admin-token, else a new one kept there (0600). */
function adminTokenFor(dir: string, given: string | undefined): string {
  if (given) return given;
  const file = path.join(dir, 'admin-token');
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const token = newToken();
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/** Every node gets the first node's recording master key (created if none): secrets are cluster-wide, never in the log. */
function shareMasterKey(dataDirs: string[]): void {
  const first = dataDirs[0]!;
  loadOrCreateMasterKey(first);
  const key = fs.readFileSync(path.join(first, 'keys', 'recording-master.key'));
  for (const d of dataDirs.slice(1)) {
    const file = path.join(d, 'keys', 'recording-master.key');
    if (fs.existsSync(file)) {
      if (!fs.readFileSync(file).equals(key)) throw new Error(`${file} differs from ${first}'s master key: every node must have the same one`);
      continue;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, key, { mode: 0o600 });
  }
}

/**
 * DIR/pids.json lists the process groups of the cluster running over DIR (removed when it stops). One still alive —
 * a `cluster up` killed with -9 cannot stop its children — is refused: two NATS servers on one store dir would
 * corrupt it.
 */
function refuseIfRunning(dir: string): void {
  const file = path.join(dir, 'pids.json');
  if (!fs.existsSync(file)) return;
  let pids: unknown;
  try {
    pids = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  const alive = Array.isArray(pids) ? pids.filter((p): p is number => Number.isInteger(p) && p > 1 && groupAlive(p)) : [];
  if (alive.length > 0) throw new Error(`processes of an earlier cluster over ${dir} still run (process groups ${alive.join(', ')}): stop them first (kill -TERM -- -PGID)`);
}

/** The last lines of a node's log, for the error that says it died (the log may sit in a directory about to go). */
function logTail(file: string, lines = 12): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${l.slice(0, 400)}`).join('\n');
  } catch {
    return '  (no log)';
  }
}

/** Polls the node's /readyz until 200; throws, with the tail of its log, when the node exits first or after `timeoutMs`. */
export async function waitReady(node: ClusterNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!node.child.running()) throw new Error(`${node.id} exited while starting (log: ${node.log}):\n${logTail(node.log)}`);
    try {
      const r = await fetch(`http://${node.host}:${node.httpPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${node.id} not ready after ${timeoutMs / 1000} s (log: ${node.log})`);
}

/** A node's id, ports and dirs, picked before it starts (and kept: a restart on the same data dir reuses them). */
export type PreparedNode = Omit<ClusterNode, 'child'> & { tlsPort: number };

/** Picks each node's id, ports and data dir (with the shared master key); the benchmarks use it to restart one node. */
export async function prepareNodes(o: Pick<ClusterUpOptions, 'nodes' | 'dir'>): Promise<PreparedNode[]> {
  const out: PreparedNode[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const id = `node-${i + 1}`;
    const dataDir = path.join(o.dir, 'nodes', id);
    fs.mkdirSync(dataDir, { recursive: true });
    out.push({ id, host: '127.0.0.1', httpPort: await freeTcpPort(), sipPort: await freeSipPort(), tlsPort: await freeTcpPort(), dataDir, log: path.join(o.dir, 'logs', `${id}.log`) });
  }
  shareMasterKey(out.map((n) => n.dataDir));
  return out;
}

/** Starts node `i` (`switchboard start` in its own process group, output appended to its log); does not wait. */
export function startNode(n: PreparedNode, i: number, o: Pick<ClusterUpOptions, 'env'>, shared: { nats: string; publicUrl: string; token: string; rtpBase: number }): ClusterNode {
  const low = shared.rtpBase + i * RTP_SPAN;
  const env: NodeJS.ProcessEnv = {
    ...o.env,
    SWITCHBOARD_CLUSTER_NATS: shared.nats,
    SWITCHBOARD_NODE_ID: n.id,
    SWITCHBOARD_NODE: n.id,
    SWITCHBOARD_DATA_DIR: n.dataDir,
    SWITCHBOARD_HOST: n.host,
    SWITCHBOARD_HTTP_PORT: String(n.httpPort),
    SWITCHBOARD_SIP_PORT: String(n.sipPort),
    SWITCHBOARD_SIP_TLS_PORT: String(n.tlsPort),
    SWITCHBOARD_RTP_PORTS: `${low}-${low + RTP_SPAN - 1}`,
    SWITCHBOARD_PUBLIC_URL: shared.publicUrl,
    SWITCHBOARD_ADMIN_TOKEN: shared.token,
  };
  fs.appendFileSync(n.log, `--- ${new Date().toISOString()} ${n.id}: http ${n.host}:${n.httpPort}, sip ${n.sipPort}, rtp ${low}-${low + RTP_SPAN - 1}\n`);
  const child = spawnGroup(n.id, process.execPath, [BIN, 'start'], { env, log: n.log });
  return { id: n.id, host: n.host, httpPort: n.httpPort, sipPort: n.sipPort, dataDir: n.dataDir, log: n.log, child };
}

/** Starts NATS, the nodes and the balancers; on any failure stops what it started and throws. */
export async function clusterUp(o: ClusterUpOptions): Promise<LocalCluster> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > MAX_NODES) throw new Error(`--nodes: expected 1 to ${MAX_NODES}`);
  for (const d of ['nats', 'nodes', 'lb', 'logs']) fs.mkdirSync(path.join(o.dir, d), { recursive: true });
  refuseIfRunning(o.dir);
  const pidsFile = path.join(o.dir, 'pids.json');
  const adminToken = adminTokenFor(o.dir, o.adminToken);
  const nodes: ClusterNode[] = [];
  const balancers: Child[] = [];
  let nats: NatsCluster | null = null;
  let stopping: Promise<void> | null = null;
  const all = (): Child[] => [...nodes.map((n) => n.child), ...balancers, ...(nats?.servers ?? [])];
  const stop = (hard = false): Promise<void> => {
    if (hard) return Promise.all(all().map((c) => killGroup(c))).then(() => fs.rmSync(pidsFile, { force: true }));
    stopping ??= (async () => {
      // SIGINT: a node stops at once (SIGTERM would drain it, waiting for its live calls).
      await Promise.all(nodes.map((n) => stopGroup(n.child, 15_000, 'SIGINT')));
      await Promise.all(balancers.map((c) => stopGroup(c, 5000)));
      await nats?.stop();
      fs.rmSync(pidsFile, { force: true });
    })();
    return stopping;
  };
  try {
    o.say(`starting 3 NATS servers (JetStream) in ${path.join(o.dir, 'nats')}`);
    nats = await startNatsCluster({ dir: path.join(o.dir, 'nats'), size: 3 });
    const record = (): void => fs.writeFileSync(pidsFile, JSON.stringify(all().map((c) => c.pid)));
    record();
    const httpPort = o.httpPort || (await freeTcpPort(o.host));
    const sipPort = o.sipPort || (await freeSipPort(o.host));
    const httpUrl = `http://${o.host}:${httpPort}`;
    const rtpBase = 30_000 + 2 * Math.floor(Math.random() * 5000);
    const prepared = await prepareNodes(o);
    const shared = { nats: nats.env, publicUrl: httpUrl, token: adminToken, rtpBase };
    // The first node alone: it writes the bootstrap admin into the shared log; the others find it there.
    for (const [i, p] of prepared.entries()) {
      const node = startNode(p, i, o, shared);
      nodes.push(node);
      record();
      if (i === 0) {
        await waitReady(node, 120_000);
        o.say(`${node.id} ready (http 127.0.0.1:${node.httpPort}, sip 127.0.0.1:${node.sipPort})`);
      }
    }
    await Promise.all(
      nodes.slice(1).map(async (n) => {
        await waitReady(n, 120_000);
        o.say(`${n.id} ready (http 127.0.0.1:${n.httpPort}, sip 127.0.0.1:${n.sipPort})`);
      }),
    );
    const lb = path.join(o.dir, 'lb');
    const haproxy = await startHaproxy(lb, o.host, httpPort, nodes, (c) => balancers.push(c));
    const kamailio = await startKamailio(lb, o.host, sipPort, nodes, (c) => balancers.push(c));
    record();
    return { dir: o.dir, httpUrl, sipUri: `sip:${o.host}:${sipPort}`, adminToken, nats, nodes, haproxy, kamailio, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
