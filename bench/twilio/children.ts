/**
 * The Twilio bench's child processes (gateway, bare server, load workers): fork
 * with tsx, IPC request/answer, graceful stop with a kill fallback, and a
 * process-exit hook so no child outlives the bench.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../lib.ts';

const HERE = import.meta.dirname;

const children = new Set<ChildProcess>();
process.on('exit', () => killChildren());

/** Kills every child still running (bench end, or a failure). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export function spawnChild(file: string, env: NodeJS.ProcessEnv, stdout: 'inherit' | number, extraArgs: string[] = []): ChildProcess {
  const child = fork(path.join(HERE, file), [], {
    execArgv: [...extraArgs, '--import', 'tsx'],
    env,
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The next IPC message from `child` that `match` accepts; rejects on timeout or exit. */
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

export async function ask<T>(child: ChildProcess, cmd: unknown, type: string, timeoutMs = 60_000): Promise<T> {
  const p = nextMessage<{ type: string }>(child, (m) => m.type === type, timeoutMs, `${JSON.stringify(cmd)} → ${type}`);
  child.send(cmd as object);
  return (await p) as T;
}

export async function stopChild(child: ChildProcess, cmd: unknown, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    if (child.connected) child.send(cmd as object);
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

export function fdLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? (m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])) : null;
  } catch {
    return null;
  }
}
