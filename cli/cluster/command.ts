/**
 * `switchboard cluster up --nodes N [--dir D] [--host H] [--http-port P] [--sip-port S] [--json]`: registers the
 * command; its action loads cli/cluster/up.ts on demand (so no other command pays for it). It starts the local
 * cluster, prints where to reach it (HTTP through HAProxy, SIP through Kamailio, the admin token, the dirs), then
 * waits: a node, balancer or NATS server that dies is reported and the rest go on; Ctrl-C or SIGTERM stops
 * everything (a second one kills at once) and exits 0.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/index.ts';
import { UsageError } from '../remote.ts';
import type { LocalCluster } from './up.ts';

interface UpOptions {
  nodes: string;
  dir?: string;
  host: string;
  httpPort: string;
  sipPort: string;
  json?: boolean;
}

function port(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${name}: expected a port 0–65535 (0 = a free one)`);
  return n;
}

export function registerClusterCommand(program: Command): void {
  const cluster = program.command('cluster').description('a local cluster to try cluster mode');
  cluster
    .command('up')
    .description('start on this machine a 3-server NATS cluster, N gateway nodes, HAProxy (HTTP) and Kamailio (SIP) in front of them; Ctrl-C stops them all')
    .option('--nodes <n>', 'gateway nodes', '2')
    .option('--dir <dir>', 'where NATS, the nodes and the balancer configs live (default SWITCHBOARD_DATA_DIR/cluster)')
    .option('--host <address>', 'address HAProxy and Kamailio listen on, which callers reach (not a wildcard)', '127.0.0.1')
    .option('--http-port <port>', 'public HTTP port (HAProxy); 0 = a free one', '0')
    .option('--sip-port <port>', 'public SIP port, UDP and TCP (Kamailio); 0 = a free one', '0')
    .option('--json', 'once up, print one JSON line: URLs, token, every process and port')
    .action(async (opts: UpOptions) => {
      const nodes = Number(opts.nodes);
      const config = loadConfig();
      const { clusterUp, MAX_NODES } = await import('./up.ts');
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new UsageError(`--nodes: expected a whole number from 1 to ${MAX_NODES}`);
      const dir = path.resolve(opts.dir ?? path.join(config.dataDir, 'cluster'));
      const say = (line: string): void => void process.stderr.write(`cluster: ${line}\n`);
      // The host is also what the nodes give providers (SWITCHBOARD_PUBLIC_URL) and what Kamailio record-routes.
      if (/^(0\.0\.0\.0|::|\[::\])$/.test(opts.host)) throw new UsageError('--host: the address callers reach (it goes into the public URL and Record-Route), not a wildcard');
      const httpPort = port('--http-port', opts.httpPort);
      const sipPort = port('--sip-port', opts.sipPort);
      let c: Awaited<ReturnType<typeof clusterUp>>;
      try {
        c = await clusterUp({ nodes, dir, host: opts.host, httpPort, sipPort, env: process.env, adminToken: config.admin.token, say });
      } catch (err) {
        // clusterUp stopped what it had started; the logs under DIR say why.
        console.error(`switchboard: cluster up failed: ${(err as Error).message}`);
        process.exit(1);
      }
      superviseUntilSignal(c, say);
      console.log(opts.json ? JSON.stringify(summaryJson(c)) : summaryText(c));
    });
}

/** Reports a process that dies on its own (the rest go on); SIGINT/SIGTERM stop everything, exit 0; a second one kills at once. */
function superviseUntilSignal(c: LocalCluster, say: (line: string) => void): void {
  let stopping = false;
  for (const child of [...c.nodes.map((n) => n.child), c.haproxy.child, c.kamailio.child, ...c.nats.servers]) {
    void child.exited.then(() => {
      if (!stopping) say(`${child.name} exited (${child.proc.signalCode ?? `code ${child.proc.exitCode}`}); the others go on`);
    });
  }
  const onSignal = (signal: string): void => {
    if (stopping) {
      say(`${signal} again: killing everything now`);
      void c.stop(true).then(() => process.exit(1));
      return;
    }
    stopping = true;
    say(`${signal}: stopping the nodes, the balancers, then NATS`);
    c.stop().then(
      () => {
        say('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        say(`stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

/** `--json`: one line with the URLs, the token and every process, port and file. */
function summaryJson(c: LocalCluster): Record<string, unknown> {
  return {
    http: c.httpUrl,
    sip: c.sipUri,
    admin_token: c.adminToken,
    dir: c.dir,
    nats: c.nats.urls,
    nats_servers: c.nats.servers.map((s, i) => ({ name: `s${i}`, url: c.nats.urls[i], pid: s.pid })),
    nodes: c.nodes.map((n) => ({ id: n.id, pid: n.child.pid, http: `http://${n.host}:${n.httpPort}`, sip_port: n.sipPort, data_dir: n.dataDir, log: n.log })),
    haproxy: { pid: c.haproxy.child.pid, config: c.haproxy.config },
    kamailio: { pid: c.kamailio.child.pid, config: c.kamailio.config },
    pids: [c.haproxy.child.pid, c.kamailio.child.pid, ...c.nats.servers.map((s) => s.pid), ...c.nodes.map((n) => n.child.pid)],
  };
}

function summaryText(c: LocalCluster): string {
  return [
    '',
    `Switchboard cluster: ${c.nodes.length} node(s) on a 3-server NATS cluster`,
    `  HTTP (HAProxy):   ${c.httpUrl}   webhooks, media sockets, ${c.httpUrl}/v1, ${c.httpUrl}/console`,
    `  SIP (Kamailio):   ${c.sipUri}   (UDP and TCP)`,
    `  admin token:      ${c.adminToken}`,
    `  NATS:             ${c.nats.env}`,
    ...c.nodes.map((n) => `  ${n.id.padEnd(16)}  http://${n.host}:${n.httpPort}  sip ${n.host}:${n.sipPort}  log ${n.log}`),
    `  configs:          ${c.haproxy.config}, ${c.kamailio.config}`,
    '',
    'Ctrl-C stops them all.',
  ].join('\n');
}
