/**
 * Draining a cluster node past its time limit (bridge/drain.ts, issue 15): two real `switchboard start` nodes on a
 * real 3-server NATS JetStream cluster, with a lease far longer than the test. A Twilio call streams from node A;
 * A gets SIGTERM with a small SWITCHBOARD_DRAIN_TIMEOUT_MS: it is `draining` (seen from B), answers /readyz 503,
 * and at the limit records itself `stopped` (its lease ends), leaves the call unended and exits 0. The same call's
 * media on B (Twilio's <Redirect> through the balancer) is taken at once — not after the lease — and streams.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550108888';
/** Longer than the whole test: B can take A's call only because A's drain ended its lease (node_stopped). */
const LEASE_MS = 600_000;

let nats: NatsCluster | null = null;
const gateways: GatewayProcess[] = [];
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close().catch(() => undefined);
  await Promise.all(gateways.map((g) => g.stop()));
  await nats?.stop();
});

type Nodes = { nodes: Array<{ id: string; state: string; down_reason: string | null }> };

async function nodeState(g: GatewayProcess, id: string): Promise<{ state: string; down_reason: string | null } | undefined> {
  const r = await api<Nodes>(g.publicUrl, 'GET', '/v1/cluster/nodes');
  return r.body.nodes.find((n) => n.id === id);
}

test('a draining cluster node at its time limit hands its live call over (node_stopped) and exits 0', { timeout: 240_000 }, async () => {
  nats = await startNatsCluster(3);
  for (const name of ['node-a', 'node-b']) {
    const port = await freePort();
    gateways.push(
      await spawnGateway({
        port,
        dataDir: tmpDir(`sb-cdrain-${name}-`),
        env: { SWITCHBOARD_CLUSTER_NATS: nats.env, SWITCHBOARD_NODE_ID: name, SWITCHBOARD_CLUSTER_LEASE_MS: String(LEASE_MS), SWITCHBOARD_DRAIN_TIMEOUT_MS: '4000', SWITCHBOARD_STT: 'none' },
      }),
    );
  }
  const [a, b] = gateways as [GatewayProcess, GatewayProcess];
  const number = await api(a.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', provider: 'twilio' } });
  assert.equal(number.status, 201, JSON.stringify(number.body));

  const onA = new TwilioPeer({ publicUrl: a.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', followRedirect: false, statusOnEnd: false });
  peers.push(onA);
  assert.equal((await onA.dial()).kind, 'streaming');
  await onA.waitFor(() => onA.receivedAudio().length > 4000, 30_000, 'A streams the call');

  const exited = new Promise<number | null>((r) => a.child.once('exit', (code) => r(code)));
  a.child.kill('SIGTERM');
  const deadline = performance.now() + 20_000;
  let seen = await nodeState(b, 'node-a');
  while (seen?.state !== 'draining' && seen?.state !== 'stopped' && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await nodeState(b, 'node-a');
  }
  assert.ok(seen?.state === 'draining' || seen?.state === 'stopped', `node-a draining as seen from node-b: ${JSON.stringify(seen)}`);
  assert.equal(await exited, 0);

  const after = await nodeState(b, 'node-a');
  assert.equal(after?.state, 'stopped');
  assert.equal(after?.down_reason, 'drain timeout (4000 ms): 1 call(s) handed over');
  const calls = await api<{ calls: Array<{ id: string; state: string }> }>(b.publicUrl, 'GET', '/v1/calls');
  assert.equal(calls.body.calls.length, 1);
  assert.notEqual(calls.body.calls[0]?.state, 'ended', 'the call was handed over, not ended');

  // The same call's media on B: taken although A's lease would run for minutes more.
  const onB = new TwilioPeer({ publicUrl: b.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', callSid: onA.callSid });
  peers.push(onB);
  assert.equal((await onB.dial()).kind, 'streaming');
  await onB.waitFor(() => onB.receivedAudio().length > 8000, 60_000, 'B streams the call');
  const detail = await api<{ owner: { node: string } }>(b.publicUrl, 'GET', `/v1/calls/${calls.body.calls[0]?.id}`, { headers: { 'x-switchboard-purpose': 'test' } });
  assert.equal(detail.body.owner.node, 'node-b');
  await onB.hangup();
});
