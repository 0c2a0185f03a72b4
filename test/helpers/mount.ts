/**
 * Real disk-full tests need a tiny tmpfs, so `mount`, so root (or
 * CAP_SYS_ADMIN). Where mounting is refused a test skips with the reason —
 * except under CI (`CI` set), where the suite must prove what it claims: there
 * a refused mount fails the test instead of skipping it silently.
 *
 * `insidePrivateMounts(file)` re-runs a test file inside its own mount
 * namespace (`unshare -m`, mounts made private), so a tmpfs it mounts — on a
 * gateway's data dir, say — is seen by that run and its children only, and
 * disappears with it; like netns.ts for `unshare -n`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const FLAG = 'SWITCHBOARD_TEST_MOUNTNS';

/** True under CI, where a refused mount fails instead of skipping. */
export const underCi = (): boolean => Boolean(process.env.CI);

/**
 * Mounts a tmpfs of `size` (e.g. '64k', '24m') on `dir`. Returns null, or — where mounting is refused — the
 * reason to skip; under CI it throws that reason instead.
 */
export function mountTmpfs(dir: string, size: string): string | null {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return null;
  return refused(`cannot mount a tmpfs here (${r.error?.message ?? r.stderr.trim()})`);
}

/** A skip reason outside CI; under CI an error, so the test fails. */
export function refused(reason: string): string {
  if (underCi()) throw new Error(`${reason}: under CI this real-ENOSPC test must run (CI runs as root); refusing to skip it`);
  return `${reason}; real ENOSPC test skipped (needs root)`;
}

/** Whether a tmpfs can be mounted here: null, or the skip reason (throws under CI). */
export function probeMount(): string | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-mnt-probe-'));
  try {
    const reason = mountTmpfs(dir, '4k');
    if (reason === null) spawnSync('umount', [dir]);
    return reason;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function insidePrivateMounts(file: string, timeoutMs: number): boolean {
  if (process.env[FLAG] === '1') return true;
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --make-rprivate / && mount -t tmpfs -o size=4k tmpfs "$0"', os.tmpdir()], { encoding: 'utf8' });
  const cannot = probe.error || probe.status !== 0 ? `cannot mount in a private mount namespace (${probe.error?.message ?? probe.stderr.trim()})` : null;
  let skip: string | false = false;
  let failure: Error | null = null;
  if (cannot) {
    try {
      skip = refused(cannot);
    } catch (err) {
      failure = err as Error;
    }
  }
  test(`${path.basename(file)}, re-run inside a private mount namespace (unshare -m)`, { timeout: timeoutMs, skip }, async () => {
    if (failure) throw failure;
    const env: NodeJS.ProcessEnv = { ...process.env, [FLAG]: '1' };
    delete env.NODE_TEST_CONTEXT; // the inner run is a test runner of its own, not a reporting child of ours
    const child = spawn(
      'unshare',
      ['-m', 'sh', '-c', 'mount --make-rprivate / && exec "$0" "$@"', process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, file],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out: string[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', (err) => {
        out.push(`cannot start unshare: ${err.message}`);
        resolve(-1);
      });
      child.once('exit', (c) => resolve(c));
    });
    const text = out.join('');
    process.stderr.write(text.split('\n').filter((l) => /^\s*(✔|✖|ℹ|﹣)/.test(l)).join('\n') + '\n');
    assert.equal(code, 0, `inner run failed (exit ${code}):\n${text.split('\n').slice(-200).join('\n')}`);
  });
  return false;
}
