/**
 * Browser WebRTC tests run inside a private network namespace (`unshare -n`,
 * loopback only): outside one, ICE would pick the host's own addresses and
 * tests would depend on the machine's network. A test file calls
 * `insidePrivateNetwork(import.meta.filename)`: outside the namespace it
 * registers one test that re-runs the file under `unshare -n` (after `ip link
 * set lo up`) and passes when every inner test passes; inside, it returns true
 * and the file registers its real tests. `npm test` stays unchanged.
 *
 * `{ interfaceAddress: '10.77.0.1/24' }` gives the namespace a machine's
 * "real" interface too: one end of a veth pair (the kernel here has no
 * `dummy` links) holding that address, both ends up — so the gateway gathers
 * it as a host candidate and a stock browser uses it, as on a normal machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const FLAG = 'SWITCHBOARD_TEST_NETNS';

export interface PrivateNetworkOptions {
  /** An IPv4 address with prefix (`10.77.0.1/24`) on a non-loopback interface inside the namespace. */
  interfaceAddress?: string;
}

export function insidePrivateNetwork(file: string, timeoutMs: number, opts: PrivateNetworkOptions = {}): boolean {
  if (process.env[FLAG] === '1') return true;
  test(`${path.basename(file)}, re-run inside a private network namespace (unshare -n)`, { timeout: timeoutMs }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, [FLAG]: '1' };
    delete env.NODE_TEST_CONTEXT; // the inner run is a test runner of its own, not a reporting child of ours
    let setup = 'ip link set lo up';
    if (opts.interfaceAddress !== undefined) {
      if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(opts.interfaceAddress)) throw new Error(`interfaceAddress: ${opts.interfaceAddress} is not an IPv4 address with a prefix`);
      setup += ` && ip link add sb0 type veth peer name sb1 && ip addr add ${opts.interfaceAddress} dev sb0 && ip link set sb0 up && ip link set sb1 up`;
    }
    const child = spawn(
      'unshare',
      ['-n', 'sh', '-c', `${setup} && exec "$0" "$@"`, process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', `--test-timeout=${timeoutMs}`, '--test-force-exit', file],
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
