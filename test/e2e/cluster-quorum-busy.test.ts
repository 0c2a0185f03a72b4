/**
 * A cluster node whose replicated log lost its quorum (two of three NATS servers killed) stops admitting calls: a
 * real `switchboard start` on a real 3-server NATS cluster reports the log unavailable on /healthz and /readyz and
 * answers a new Twilio call busy; once the servers return it is ready again and takes the next call.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550100777';
const cleanup: Array<() => unknown> = [];
let nats: NatsCluster | null = null;
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await nats?.stop();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('no quorum: /readyz 503 naming the cluster log, a new call gets the busy answer; servers back: ready, calls taken', { timeout: 240_000 }, async () => {
  nats = await startNatsCluster(3);
  const gw: GatewayProcess = await spawnGateway({
    port: await freePort(),
    dataDir: tmpDir('sb-clq-'),
    env: { SWITCHBOARD_CLUSTER_NATS: nats.env, SWITCHBOARD_NODE_ID: 'node-a', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none' },
  });
  cleanup.push(() => gw.stop());
  const policy = await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const number = await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'short', provider: 'twilio' } });
  assert.equal(number.status, 201, JSON.stringify(number.body));
  const dial = (from: string): TwilioPeer => {
    const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from });
    cleanup.push(() => peer.close());
    return peer;
  };

  await nats.killWritten([0, 1], 'SWITCHBOARD_LOG');
  const readyz = await until('the node to report the log unavailable', async () => {
    const r = await api<{ status: string; reason?: string }>(gw.publicUrl, 'GET', '/readyz', { token: null });
    return r.status === 503 ? r : undefined;
  });
  assert.equal(readyz.body.status, 'not_ready');
  assert.match(String(readyz.body.reason), /cluster log unavailable \((no quorum|the stream)/);
  const healthz = await api<{ status: string; store?: { fault: string } }>(gw.publicUrl, 'GET', '/healthz', { token: null });
  assert.equal(healthz.status, 200, 'the process stays up');
  assert.equal(healthz.body.store?.fault, 'log_unavailable');
  const refused = dial('+15550001001');
  assert.deepEqual(await refused.dial(), { kind: 'rejected' });
  assert.equal(refused.endDetail, 'busy', 'the new caller gets the busy answer');

  await Promise.all([nats.restart(0), nats.restart(1)]);
  await until('the node to be ready again', async () => ((await api(gw.publicUrl, 'GET', '/readyz', { token: null })).status === 200 ? true : undefined));
  const taken = dial('+15550001002');
  assert.equal((await taken.dial()).kind, 'streaming');
});
