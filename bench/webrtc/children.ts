/**
 * Child processes of the WebRTC and SIP benches: fork with tsx, IPC
 * request/answer, graceful stop with a SIGKILL fallback, and an exit hook so
 * no child outlives the bench. (Like bench/twilio/children.ts, but with paths
 * given by the caller.)
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { sleep } from '../lib.ts';

const children = new Set<ChildProcess>();
process.on('exit', () => killChildren());

export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Tracks a child started elsewhere (spawn), so killChildren() covers it too. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** BENCH_CPU_PROF=DIR: every forked child writes a V8 CPU profile there (NODE_OPTIONS cannot carry --cpu-prof). */
export function forkChild(file: string, env: NodeJS.ProcessEnv, stdout: 'inherit' | 'ignore' | number = 'inherit'): ChildProcess {
  const prof = process.env.BENCH_CPU_PROF;
  const execArgv = ['--import', 'tsx', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  return track(fork(file, [], { execArgv, env, stdio: ['ignore', stdout, 'inherit', 'ipc'] }));
}

export function nextMessage<T>(child: ChildProcess, match: (m: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (!match(m as T)) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (${code ?? signal})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export async function ask<T>(child: ChildProcess, cmd: { type: string }, answer: string, timeoutMs = 60_000): Promise<T> {
  const p = nextMessage<{ type: string }>(child, (m) => m.type === answer, timeoutMs, `${cmd.type} → ${answer}`);
  child.send(cmd);
  return (await p) as T;
}

export async function stopChild(child: ChildProcess, cmd: { type: string } | null, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    if (cmd && child.connected) child.send(cmd);
    else child.kill('SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  const ok = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!ok) {
    child.kill('SIGKILL');
    await exited;
  }
}

export function send(msg: unknown): void {
  if (process.send) process.send(msg);
}

/** CPU (user + system) of this process in ms. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * CPU (user + system) of this process's main thread in ms, from /proc (Linux; NaN elsewhere): unlike the event
 * loop's utilisation it does not count time the thread waited for a core, and unlike process.cpuUsage it leaves
 * worker threads out. Clock-tick resolution (10 ms).
 */
export function mainThreadCpuMs(): number {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}
const TICKS_PER_S = 100;
