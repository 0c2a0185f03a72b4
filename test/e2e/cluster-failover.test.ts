/**
 * Failover through HAProxy (issue 15): the real `switchboard cluster up --nodes 2` (3 nats-server, 2 nodes,
 * HAProxy, Kamailio). A call is answered by node A through HAProxy; consent is given (DTMF 1); the agent has
 * spoken and the recording runs; A is killed (-9). The provider's own reconnect goes through HAProxy and lands on
 * B — Twilio's `<Redirect>` (then a media stream whose token B checks: it was never in B's memory), Vonage's
 * synchronous `disconnected` event (retried until a live node answers). B takes the call once A's lease has run
 * out (SWITCHBOARD_CLUSTER_LEASE_MS is small here: that wait is part of the failover time), the audio flows again,
 * there is ONE call row, the agent carries on from its stored turn (it says it was cut off), the recording has a
 * new segment and a gap that names A, and `switchboard verify` passes on every node's data dir on one hash chain.
 *
 * The kill → audio time is printed, never asserted (waits are bounded event waits).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { eventually, startClusterUp, verifyOneChain, type ClusterUp, type UpInfo } from '../helpers/cluster-up.ts';
import { TWILIO_TOKEN, VONAGE_SECRET } from '../helpers/gateway.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { VonagePeer } from '../helpers/vonage-peer.ts';

const LEASE_MS = 2_000;
const ENV = { SWITCHBOARD_CLUSTER_LEASE_MS: String(LEASE_MS), VONAGE_SIGNATURE_SECRET: VONAGE_SECRET };

let cluster: ClusterUp | null = null;
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await cluster?.stop();
});

type Detail = {
  call: { id: string; state: string; media_epoch: number };
  owner: { node: string } | null;
  consents: Array<{ outcome: string }>;
  recordings: Array<{ status: string; segments: unknown[]; gaps: Array<Record<string, unknown>> }>;
  agent_actions: Array<{ status: string; args: unknown }>;
};

/** The one call to `number`, seen through HAProxy (any node): its id once it exists. */
async function callTo(info: UpInfo, number: string): Promise<string> {
  let id = '';
  await eventually(`a call to ${number} is listed`, 30_000, async () => {
    const r = await api<{ calls: Array<{ id: string; to: string }> }>(info.http, 'GET', '/v1/calls?limit=50');
    id = r.body.calls?.find((c) => c.to === number || c.to === number.slice(1))?.id ?? '';
    return id !== '';
  });
  return id;
}

async function detail(base: string, id: string): Promise<Detail> {
  const r = await api<Detail>(base, 'GET', `/v1/calls/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Routes `number` (opt-in consent) and waits until every node has applied it. */
async function route(info: UpInfo, number: string, provider: 'twilio' | 'vonage'): Promise<void> {
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: `optin-${provider}`, mode: 'opt-in', disclosure_text: 'This call is recorded. Press 1 to agree.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const r = await api(info.http, 'POST', '/v1/numbers', { body: { number, agent: 'default', consent_policy: `optin-${provider}`, provider } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  for (const n of info.nodes) await eventually(`${n.id} has ${number}`, 30_000, async () => JSON.stringify((await api(n.http, 'GET', '/v1/numbers')).body).includes(number));
}

/** Consent given, the agent has spoken, the recording runs: the call's owner (node A). */
async function establish(info: UpInfo, id: string, pressOne: () => void): Promise<string> {
  await eventually('the disclosure asks for consent', 30_000, async () => (await detail(info.http, id)).consents.length > 0);
  pressOne();
  await eventually('consent granted', 30_000, async () => (await detail(info.http, id)).consents.some((c) => c.outcome === 'granted'));
  await eventually('the agent has spoken and the recording runs', 30_000, async () => {
    const d = await detail(info.http, id);
    return d.agent_actions.some((a) => a.status === 'succeeded') && d.recordings.some((r) => r.status === 'recording');
  });
  const owner = (await detail(info.http, id)).owner?.node;
  assert.ok(owner, 'the call has an owner');
  return owner;
}

/** After the call: stopped cluster; verify on every node's data dir, one chain; the survivor's rows. */
async function checkAfter(info: UpInfo, providerCallId: string, victim: string, survivor: string): Promise<void> {
  // What the agent said is sealed with the call's key, which lives in the cluster's object store: read it through
  // the survivor's API (opened there) while the cluster is up.
  const http = info.nodes.find((n) => n.id === survivor)!.http;
  type Detail = { call: { provider_call_id: string | null }; agent_actions: Array<{ args: unknown }> };
  const listed = await api<{ calls: Array<{ id: string }> }>(http, 'GET', '/v1/calls?limit=100');
  let said: unknown[] | null = null;
  for (const c of listed.body.calls) {
    const detail = await api<Detail>(http, 'GET', `/v1/calls/${c.id}`);
    if (detail.body.call?.provider_call_id === providerCallId) said = detail.body.agent_actions.map((a) => a.args);
  }
  assert.ok(said, `the survivor has the call: ${JSON.stringify(listed.body)}`);
  assert.equal(await cluster!.stop(), 0);
  cluster = null;
  const dirs = info.nodes.map((n) => ({ id: n.id, dir: path.join(info.dir, 'nodes', n.id) }));
  for (const h of verifyOneChain(dirs)) console.log(`# verify ${h.id}: head ${h.seq} ${h.hash}`);
  const copy = Store.open({ dataDir: dirs.find((d) => d.id === survivor)!.dir, schema, checkpointMs: 0 });
  try {
    const calls = copy.read('default').calls.find({ provider_call_id: providerCallId });
    assert.equal(calls.length, 1, 'ONE call row');
    const call = calls[0]!;
    assert.equal(call.owner_node, survivor, 'the survivor owns the call');
    const events = [...copy.events()];
    const claims = events.filter((e) => e.reducer === 'call_media_connected' && e.outcome.ok && (e.args as { call_id: string }).call_id === call.id);
    assert.deepEqual([...new Set(claims.map((e) => e.node))], [victim, survivor], 'media on A, then on B');
    const sayings = copy.read('default').agent_actions.find({ call_id: call.id });
    assert.ok(said.some((a) => JSON.stringify(a).includes('cut off')), 'the agent resumed from its stored turn: ' + JSON.stringify(said));
    assert.equal(new Set(sayings.map((a) => a.request_id)).size, sayings.length, 'no action id reused across the failover');
    assert.ok((copy.read('default').agent_state.get(call.id)?.turn ?? 0) >= 2, 'the agent’s turns continued on B');
    const [rec] = copy.read('default').recordings.find({ call_id: call.id });
    assert.ok(rec, 'the call was recorded');
    assert.ok(rec.segments.length >= 1, 'a new segment after the failover');
    const named = rec.gaps.filter((g) => g.node === victim);
    assert.equal(named.length, 1, `one gap names the lost node ${victim}: ${JSON.stringify(rec.gaps)}`);
    assert.ok(Number(named[0]!.end_ms) > Number(named[0]!.start_ms));
  } finally {
    copy.close();
  }
}

test('Twilio: node A killed -9 mid-call; the <Redirect> through HAProxy lands on B, which takes the call over', { timeout: 600_000 }, async () => {
  const NUMBER = '+15550108001';
  cluster = await startClusterUp({ env: ENV });
  const { info } = cluster;
  await route(info, NUMBER, 'twilio');
  const peer = new TwilioPeer({ publicUrl: info.http, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', redirectRetryMs: 30_000 });
  closers.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const id = await callTo(info, NUMBER);
  const victim = await establish(info, id, () => assert.ok(peer.sendDtmf('1')));
  const survivor = info.nodes.find((n) => n.id !== victim)!;

  const streams = peer.streams;
  const heard = peer.receivedAudio().length;
  const t0 = performance.now();
  await cluster.killNode(victim);
  await peer.waitFor(() => peer.streams > streams && peer.receivedAudio().length > heard + 4000, 60_000, 'audio flows again after the kill');
  console.log(`# Twilio failover: kill -9 → audio again in ${Math.round(performance.now() - t0)} ms (lease ${LEASE_MS} ms)`);
  await eventually('the survivor owns the call', 20_000, async () => (await detail(survivor.http, id)).owner?.node === survivor.id);
  await eventually('the agent says it was cut off', 30_000, async () => (await detail(survivor.http, id)).agent_actions.some((a) => JSON.stringify(a.args).includes('cut off')));

  await peer.hangup();
  await eventually('the recording is finalized on B', 60_000, async () => (await detail(survivor.http, id)).recordings.some((r) => r.status === 'finalized'));
  await checkAfter(info, peer.callSid, victim, survivor.id);
});

test('Vonage: node A killed -9 mid-call; the synchronous disconnected event through HAProxy lands on B, which takes the call over', { timeout: 600_000 }, async () => {
  const NUMBER = '+15550108002';
  cluster = await startClusterUp({ env: ENV });
  const { info } = cluster;
  await route(info, NUMBER, 'vonage');
  const peer = new VonagePeer({ publicUrl: info.http, secret: VONAGE_SECRET, to: NUMBER, from: '+15550002222', retryMs: 30_000 });
  closers.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const id = await callTo(info, NUMBER);
  const victim = await establish(info, id, () => assert.ok(peer.sendDtmf('1')));
  const survivor = info.nodes.find((n) => n.id !== victim)!;

  const streams = peer.streams;
  const heard = peer.receivedBytes;
  const t0 = performance.now();
  await cluster.killNode(victim);
  await peer.waitFor(() => peer.streams > streams && peer.receivedBytes > heard + 16_000, 60_000, 'audio flows again after the kill');
  console.log(`# Vonage failover: kill -9 → audio again in ${Math.round(performance.now() - t0)} ms (lease ${LEASE_MS} ms)`);
  assert.equal(peer.endReason, null, 'the call goes on');
  await eventually('the survivor owns the call', 20_000, async () => (await detail(survivor.http, id)).owner?.node === survivor.id);
  await eventually('the agent says it was cut off', 30_000, async () => (await detail(survivor.http, id)).agent_actions.some((a) => JSON.stringify(a.args).includes('cut off')));

  await peer.hangup();
  await eventually('the recording is finalized on B', 60_000, async () => (await detail(survivor.http, id)).recordings.some((r) => r.status === 'finalized'));
  assert.equal(peer.protocolErrors.length, 0, peer.protocolErrors.join('; '));
  await checkAfter(info, peer.uuid, victim, survivor.id);
});
