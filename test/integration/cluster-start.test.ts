/**
 * `switchboard start` in cluster mode (SWITCHBOARD_CLUSTER_NATS): a bad or unreachable NATS stops the start with
 * exit 2 and one line naming the variable; two real gateway processes on one 3-server NATS cluster share one log:
 * what one node writes the other serves, and `switchboard verify` on both data dirs passes on one hash chain (the
node stopped last holds the other's head: heartbeats go on until a node stops); a
 * node's data dir started without the cluster is refused (it would fork the log).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const running: GatewayProcess[] = [];
let nats: NatsCluster | null = null;
after(async () => {
  await Promise.all(running.map((g) => g.stop()));
  await nats?.stop();
});

function run(args: string[], env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('an unreachable NATS stops the start: exit 2, one line naming SWITCHBOARD_CLUSTER_NATS', async () => {
  const port = await freePort();
  const r = run(['start'], { SWITCHBOARD_DATA_DIR: tmpDir('sb-cl-'), SWITCHBOARD_HTTP_PORT: String(await freePort()), SWITCHBOARD_SIP_PORT: '0', SWITCHBOARD_CLUSTER_NATS: `nats://127.0.0.1:${port}` });
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, new RegExp(`switchboard: SWITCHBOARD_CLUSTER_NATS: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port}`));
  assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
});

test('a bad NATS URL stops the start: exit 2 naming the variable', async () => {
  const r = run(['start'], { SWITCHBOARD_DATA_DIR: tmpDir('sb-cl-'), SWITCHBOARD_HTTP_PORT: String(await freePort()), SWITCHBOARD_CLUSTER_NATS: 'http://example.com' });
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /SWITCHBOARD_CLUSTER_NATS: expected comma-separated NATS URLs/);
});

/** Polls GET `route` on `g` until its body mentions `text` (30 s bound). */
async function eventually(g: GatewayProcess, route: string, text: string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const r = await api(g.publicUrl, 'GET', route);
    if (JSON.stringify(r.body).includes(text)) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

test('two switchboard processes on one NATS cluster: one log, what A writes B serves, verify passes on both with one head hash', async () => {
  nats = await startNatsCluster(3);
  const dirs = [tmpDir('sb-cl-a-'), tmpDir('sb-cl-b-')];
  for (const [i, dataDir] of dirs.entries()) {
    running.push(
      await spawnGateway({
        port: await freePort(),
        dataDir,
        env: { SWITCHBOARD_CLUSTER_NATS: nats.env, SWITCHBOARD_NODE_ID: `node-${'ab'[i]}`, SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none' },
      }),
    );
  }
  const [a, b] = running as [GatewayProcess, GatewayProcess];
  const policy = await api(a.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  // B applies A's command from the stream (polled for the event itself, with a generous bound) …
  assert.ok(await eventually(b, '/v1/consent-policies', 'This line is recorded.'), 'node B serves the policy node A created');
  // … so a command submitted on B can build on it, and A sees B's
  const created = await api(b.publicUrl, 'POST', '/v1/numbers', { body: { number: '+15550100123', agent: 'default', consent_policy: 'short', provider: 'twilio' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.ok(await eventually(a, '/v1/numbers', '+15550100123'), 'node A serves the number node B created');
  await b.stop();
  await a.stop();
  running.length = 0;
  const heads = dirs.map((dataDir) => {
    const r = run(['verify'], { SWITCHBOARD_DATA_DIR: dataDir });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /verify: OK/);
    return /head: (\d+ [0-9a-f]{64})/.exec(r.out)?.[1];
  });
  assert.ok(heads[0] && heads[1]);
  // B stopped first; A went on (its heartbeats, its stop): B's head is A's event at that seq — one chain.
  const [seqB, hashB] = heads[1].split(' ');
  const copyA = Store.open({ dataDir: dirs[0] as string, schema, checkpointMs: 0 });
  try {
    const [atB] = [...copyA.events(Number(seqB), Number(seqB))];
    assert.equal(atB?.hash, hashB, `node A's log holds node B's head ${heads[1]}`);
  } finally {
    copyA.close();
  }
  // a node's data dir started without the cluster would fork its copy of the log: refused, exit 2
  const embedded = run(['start'], { SWITCHBOARD_DATA_DIR: dirs[0] as string, SWITCHBOARD_HTTP_PORT: String(await freePort()), SWITCHBOARD_SIP_PORT: '0' });
  assert.equal(embedded.code, 2, embedded.out);
  assert.match(embedded.out, /cluster node's copy of the log .*SWITCHBOARD_CLUSTER_NATS/);
});
