/**
 * Browser WebRTC tests run inside a private network namespace (`unshare -n`,
 * loopback only): outside one, ICE would pick the host's own addresses and
 * tests would depend on the machine's network. A test file calls
 * `insidePrivateNetwork(import.meta.filename)`: outside the namespace it
 * registers one test that re-runs the file under `unshare -n` (after `ip link
 * set lo up`) and passes when every inner test passes; inside, it returns true
 * and the file registers its real tests. `npm test` stays unchanged.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const FLAG = 'SWITCHBOARD_TEST_NETNS';

export function insidePrivateNetwork(file: string, timeoutMs: number): boolean {
  if (process.env[FLAG] === '1') return true;
  test(`${path.basename(file)}, re-run inside a private network namespace (unshare -n)`, { timeout: timeoutMs }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, [FLAG]: '1' };
    delete env.NODE_TEST_CONTEXT; // the inner run is a test runner of its own, not a reporting child of ours
    const child = spawn(
      'unshare',
      ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, '--test-force-exit', file],
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
    // The inner spec report, for whoever reads the outer run's output.
    process.stderr.write(text.split('\n').filter((l) => /^\s*(✔|✖|ℹ|﹣)/.test(l)).join('\n') + '\n');
    assert.equal(code, 0, `inner run failed (exit ${code}); needs root or user namespaces for "unshare -n":\n${text.split('\n').slice(-150).join('\n')}`);
  });
  return false;
}
