/**
 * Runs the real `switchboard start` the way a newcomer does — no
 * SWITCHBOARD_ADMIN_TOKEN, so the gateway generates the admin token — with
 * stdout either a pipe or a pseudo-terminal (`script -qfc CMD /dev/null`,
 * util-linux), and keeps what it printed on each stream.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { gatewayEnv } from './gateway.ts';

export const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

export interface StartedProcess {
  child: ChildProcess;
  publicUrl: string;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<void>;
}

/** The environment of a first start on 127.0.0.1:`port` over `dataDir`, without an admin token of our choosing. */
export function firstStartEnv(port: number, dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = gatewayEnv({ logLevel: 'info', env: extra }, port, dataDir);
  delete env.SWITCHBOARD_ADMIN_TOKEN;
  return env;
}

/** Whether `script` (util-linux) is installed, for a pseudo-terminal. */
export function hasScript(): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * Starts the gateway and resolves once `ready` matches its stdout (default: the
 * banner on a terminal, the "listening" log line on a pipe). On a terminal the
 * process is `script` in its own process group, stopped as a group.
 */
export async function startProcess(
  env: NodeJS.ProcessEnv,
  opts: { tty?: boolean; ready?: RegExp; timeoutMs?: number; cwd?: string; baseUrl?: string } = {},
): Promise<StartedProcess> {
  const port = env.SWITCHBOARD_HTTP_PORT ?? '';
  const child = opts.tty
    ? spawn('script', ['-qfc', `${process.execPath} ${BIN} start`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(opts.cwd ? { cwd: opts.cwd } : {}) })
    : spawn(process.execPath, [BIN, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let out = '';
  let err = '';
  // The banner's last line: how to use a new token, how to recover one, or where it comes from.
  const ready = opts.ready ?? (opts.tty ? /Switchboard is running[\s\S]*(?:Bearer <the token>\.|start again\.|API token"\.)\r?\n/ : /switchboard listening/);
  // 'close', not 'exit': by then the child's stdout and stderr are read to the end.
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a gateway behind a failed wait: it would hold its ports and keep the test file alive.
      if (opts.tty && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
      reject(new Error(`no ${ready} within the bound:\n${out}\n${err}`));
    }, opts.timeoutMs ?? 60_000);
    const check = (): void => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`switchboard start exited ${code}:\n${out}\n${err}`));
    });
  });
  return {
    child,
    publicUrl: opts.baseUrl ?? `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGINT stops at once (SIGTERM drains: it would wait for live calls).
      if (opts.tty && child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
      else child.kill('SIGINT');
      await exited;
    },
  };
}
