/**
 * The two load balancers of a local cluster, rendered from the configs in the repository and started in their own
 * process groups (cli/cluster/processes.ts):
 *
 *   deploy/haproxy/haproxy.cfg.tmpl   ─► DIR/haproxy.cfg    ─► haproxy -f … -db       HTTP + WebSockets → nodes
 *   deploy/kamailio/kamailio.cfg.tmpl ─► DIR/kamailio.cfg   ─► kamailio -f … -DD -E   SIP (UDP, TCP) → nodes
 *                                        DIR/dispatcher.list   (one line per node)
 *
 * A template's `{{NAME}}` placeholders are replaced; a placeholder left without a value is an error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freeTcpPort, spawnGroup, waitForTcp, type Child } from './processes.ts';

const DEPLOY = path.join(import.meta.dirname, '..', '..', 'deploy');
export const HAPROXY_TEMPLATE = path.join(DEPLOY, 'haproxy', 'haproxy.cfg.tmpl');
export const KAMAILIO_TEMPLATE = path.join(DEPLOY, 'kamailio', 'kamailio.cfg.tmpl');

/** A node as the balancers see it. */
export interface Backend {
  id: string;
  host: string;
  httpPort: number;
  sipPort: number;
}

/** Replaces each `{{NAME}}` of `template` with `values[NAME]`; throws naming any placeholder without a value. */
export function render(template: string, values: Record<string, string>): string {
  const missing = new Set<string>();
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) missing.add(name);
    return v ?? '';
  });
  if (missing.size > 0) throw new Error(`template placeholders without a value: ${[...missing].join(', ')}`);
  return out;
}

function findBin(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return name;
}

/** Kamailio's module dir (Debian puts it under the multiarch lib dir). */
export function kamailioModules(): string {
  const candidates = ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules', '/usr/local/lib64/kamailio/modules'];
  return candidates.find((d) => fs.existsSync(path.join(d, 'dispatcher.so'))) ?? candidates[0]!;
}

export function renderHaproxy(bind: string, statsBind: string, nodes: readonly Backend[]): string {
  const servers = nodes.map((n) => `    server ${n.id} ${n.host}:${n.httpPort}`).join('\n');
  return render(fs.readFileSync(HAPROXY_TEMPLATE, 'utf8'), { BIND: bind, STATS_BIND: statsBind, SERVERS: servers });
}

export function renderKamailio(host: string, port: number, dispatcherList: string): string {
  return render(fs.readFileSync(KAMAILIO_TEMPLATE, 'utf8'), { LISTEN_HOST: host, LISTEN_PORT: String(port), MODULES: kamailioModules(), DISPATCHER_LIST: dispatcherList });
}

/** The dispatcher list: set 1, one node per line. */
export function dispatcherList(nodes: readonly Backend[]): string {
  return `# setid destination flags priority attributes\n${nodes.map((n) => `1 sip:${n.host}:${n.sipPort} 0 0 node=${n.id}`).join('\n')}\n`;
}

export interface Balancer {
  child: Child;
  config: string;
}

/** Renders haproxy.cfg into `dir` and starts HAProxy on `host:port` (`started` gets the process at once); resolves once it accepts connections. */
export async function startHaproxy(dir: string, host: string, port: number, nodes: readonly Backend[], started: (c: Child) => void): Promise<Balancer> {
  const config = path.join(dir, 'haproxy.cfg');
  const stats = await freeTcpPort('127.0.0.1');
  fs.writeFileSync(config, renderHaproxy(`${host}:${port}`, `127.0.0.1:${stats}`, nodes));
  const child = spawnGroup('haproxy', findBin('haproxy'), ['-f', config, '-db'], { log: path.join(dir, 'haproxy.log') });
  started(child);
  await waitForTcp(host, port, 10_000, 'haproxy', () => child.running());
  return { child, config };
}

/** Renders kamailio.cfg and the dispatcher list into `dir` and starts Kamailio on `host:port` (UDP and TCP). */
export async function startKamailio(dir: string, host: string, port: number, nodes: readonly Backend[], started: (c: Child) => void): Promise<Balancer> {
  const list = path.join(dir, 'dispatcher.list');
  fs.writeFileSync(list, dispatcherList(nodes));
  const config = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(config, renderKamailio(host, port, list));
  const runDir = path.join(dir, 'kamailio-run');
  fs.mkdirSync(runDir, { recursive: true });
  const child = spawnGroup('kamailio', findBin('kamailio'), ['-f', config, '-DD', '-E', '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'), '-m', '64', '-M', '8'], {
    log: path.join(dir, 'kamailio.log'),
  });
  started(child);
  await waitForTcp(host, port, 15_000, 'kamailio', () => child.running());
  return { child, config };
}
