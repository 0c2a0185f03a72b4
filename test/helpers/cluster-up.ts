/**
 * The real `switchboard cluster up` as a test fixture: 3 nats-server, N `switchboard start` nodes, HAProxy and
 * Kamailio, all real processes on free ports, started with `--json` so the test reads each node's URL, pid and log.
 * `stop()` sends Ctrl-C (SIGINT) and waits for the command's exit; `killNode()` kills one node's process group with
 * -9, as a crash would. `verifyOneChain()` checks the nodes' data dirs after the cluster stopped. Used by the cluster
 * end-to-end tests (test/e2e/cluster-*.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { schema } from '../../schema/index.ts';
import { Store } from '../../store/index.ts';
import { ADMIN_TOKEN, TWILIO_TOKEN } from './gateway.ts';
import { tmpDir } from './tmp.ts';

export const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

/** What `cluster up --json` prints on its first line. */
export interface UpInfo {
  http: string;
  sip: string;
  admin_token: string;
  dir: string;
  nats: string[];
  /** The NATS servers: `name` as JetStream names its peers (s0…), their client URL and process group. */
  nats_servers: Array<{ name: string; url: string; pid: number }>;
  nodes: Array<{ id: string; pid: number; http: string; sip_port: number; data_dir: string; log: string }>;
  pids: number[];
}

export interface ClusterUp {
  info: UpInfo;
  proc: ChildProcess;
  /** Ctrl-C; resolves with the command's exit code (null when it was already gone). */
  stop(): Promise<number | null>;
  /** kill -9 of one node's process group; resolves once it is gone. */
  killNode(id: string): Promise<void>;
}

/** A process group (or process) still has a member: signal 0 probes it. */
export function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/** Polls `check` every 100 ms until true; fails naming `what` after `timeoutMs` (a generous bound, not a figure). */
export async function eventually(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

/** The nodes whose log says they answered the call with this provider id (Twilio CallSid, SIP Call-ID). */
export function answeredBy(info: UpInfo, providerId: string): string[] {
  return info.nodes.filter((n) => fs.readFileSync(n.log, 'utf8').split('\n').some((l) => l.includes(providerId) && /call answered/.test(l))).map((n) => n.id);
}

/**
 * Starts `cluster up --nodes N --json` with a production profile, espeak TTS and no STT unless `env` says
 * otherwise; resolves with its printed info once every node is ready.
 */
export function startClusterUp(opts: { nodes?: number; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<ClusterUp> {
  const dataDir = tmpDir('sb-clup-');
  const proc = spawn(process.execPath, [BIN, 'cluster', 'up', '--nodes', String(opts.nodes ?? 2), '--json', ...(opts.args ?? [])], {
    env: {
      ...process.env,
      SWITCHBOARD_DATA_DIR: dataDir,
      SWITCHBOARD_PROFILE: 'production',
      SWITCHBOARD_FSYNC_POLICY: 'periodic',
      SWITCHBOARD_LOG_LEVEL: 'info',
      SWITCHBOARD_ADMIN_TOKEN: ADMIN_TOKEN,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      SWITCHBOARD_STT: 'none',
      SWITCHBOARD_TTS: 'espeak',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const info = new Promise<UpInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cluster up did not come up:\n${err}`)), 240_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as UpInfo);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cluster up exited ${code}:\n${err}`));
    });
  });
  return info.then((i) => ({
    info: i,
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGINT');
      return exited;
    },
    killNode: async (id: string) => {
      const n = i.nodes.find((x) => x.id === id);
      if (!n) throw new Error(`no node ${id}`);
      process.kill(-n.pid, 'SIGKILL');
      await eventually(`${id} is gone`, 10_000, () => !alive(n.pid));
    },
  }));
}

/**
 * After the cluster stopped: `switchboard verify` passes on every node's data dir, and the nodes hold one chain —
 * every node's head is the event at that seq in the longest node's log (a node that died, or stopped a moment before
 * another's last command, is behind, never forked). Returns the heads.
 */
export function verifyOneChain(nodes: Array<{ id: string; dir: string }>): Array<{ id: string; dir: string; seq: number; hash: string }> {
  const heads = nodes.map(({ id, dir }) => {
    const r = spawnSync(process.execPath, [BIN, 'verify', '--data-dir', dir], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'silent' } });
    assert.equal(r.status, 0, `${id}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /verify: OK/);
    const m = /head: (\d+) ([0-9a-f]{64})/.exec(r.stdout);
    assert.ok(m, r.stdout);
    return { id, dir, seq: Number(m[1]), hash: m[2]! };
  });
  const longest = heads.reduce((a, b) => (b.seq > a.seq ? b : a));
  const store = Store.open({ dataDir: longest.dir, schema, checkpointMs: 0 });
  try {
    for (const h of heads) assert.equal([...store.events(h.seq, h.seq)][0]?.hash, h.hash, `${longest.id}'s log holds ${h.id}'s head ${h.seq}`);
  } finally {
    store.close();
  }
  return heads;
}
