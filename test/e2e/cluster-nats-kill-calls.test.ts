/**
 * One NATS server killed during 20 live calls (issue 15): `switchboard cluster up --nodes 2` (real nats-server ×3,
 * two `switchboard start` nodes, HAProxy), 20 Twilio calls through HAProxy spread over both nodes, then the server
 * leading the log's stream is killed (-9). No call drops: every call is still live, each caller's key press after
 * the kill is a committed agent turn (the log takes commands on the two servers left) and the agent's answer is
 * heard; every call then hangs up and ends `completed`; nothing is lost: every node holds every call's turn, and the data dirs
 * verify as one chain.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { api } from '../helpers/api.ts';
import { ulawEnergy } from '../helpers/audio.ts';
import { answeredBy, eventually, startClusterUp, verifyOneChain, type ClusterUp } from '../helpers/cluster-up.ts';
import { TWILIO_TOKEN } from '../helpers/gateway.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550107101';
const CALLS = 20;
const from = (i: number): string => `+1555020${String(i).padStart(4, '0')}`;

let cluster: ClusterUp | null = null;
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close();
  await cluster?.stop();
});

interface CallItem {
  id: string;
  from: string;
  state: string;
  end_reason: string | null;
}

async function calls(http: string): Promise<CallItem[]> {
  const r = await api<{ calls: CallItem[] }>(http, 'GET', '/v1/calls?limit=100');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.calls;
}

/** The agent turns of one call, from its events (GET /v1/calls/:id/events). */
async function turnKinds(http: string, callId: string): Promise<string[]> {
  const r = await api<{ events: Array<{ reducer: string; args: { kind?: string }; outcome: { ok: boolean } }> }>(http, 'GET', `/v1/calls/${callId}/events`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.events.filter((e) => e.reducer === 'agent_turn_started' && e.outcome.ok).map((e) => e.args.kind ?? '');
}

test('one NATS server (the stream leader) killed during 20 live calls: no call dropped, every key press after it committed and answered, nothing lost', { timeout: 600_000 }, async () => {
  cluster = await startClusterUp({ env: { SWITCHBOARD_FSYNC_POLICY: 'periodic' } });
  const { info } = cluster;
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const number = await api(info.http, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'short', provider: 'twilio' } });
  assert.equal(number.status, 201, JSON.stringify(number.body));
  for (const n of info.nodes) await eventually(`${n.id} has the number`, 30_000, async () => JSON.stringify((await api(n.http, 'GET', '/v1/numbers')).body).includes(NUMBER));

  // 20 calls through HAProxy, each hearing the disclosure and the greeting
  for (let i = 0; i < CALLS; i++) {
    const peer = new TwilioPeer({ publicUrl: info.http, authToken: TWILIO_TOKEN, to: NUMBER, from: from(i), redirectRetryMs: 15_000 });
    peers.push(peer);
    const dial = await peer.dial();
    assert.equal(dial.kind, 'streaming', JSON.stringify(dial));
  }
  await Promise.all(peers.map((p, i) => p.waitFor(() => ulawEnergy(p.receivedAudio()) > 200, 120_000, `call ${i} hears the agent`)));
  const owners = new Set(peers.flatMap((p) => answeredBy(info, p.callSid)));
  assert.equal(owners.size, 2, 'HAProxy spread the calls over both nodes');
  // each caller dialled from its own number
  const byFrom = new Map((await calls(info.http)).map((c) => [c.from, c]));
  const ids = peers.map((_, i) => byFrom.get(from(i))?.id ?? '');
  assert.ok(ids.every(Boolean), 'every call has its row');
  await Promise.all(ids.map((id, i) => eventually(`call ${i}'s greeting turn`, 60_000, async () => (await turnKinds(info.http, id)).length > 0)));

  // kill -9 the server leading the stream
  const nc = await connect({ servers: info.nats });
  const leader = (await (await jetstreamManager(nc)).streams.info('SWITCHBOARD_LOG')).cluster?.leader;
  await nc.close();
  const victim = info.nats_servers.find((s) => s.name === leader);
  assert.ok(victim, `the stream leader ${String(leader)} is one of ours`);
  process.kill(-victim.pid, 'SIGKILL');

  // every caller presses 5: the turn is committed through the two servers left, and the answer is heard
  const offsets = peers.map((p) => p.receivedAudio().length);
  for (const p of peers) assert.ok(p.sendDtmf('5'), 'the media stream is still open');
  const pressed = await Promise.allSettled(ids.map((id, i) => eventually(`call ${i}'s key press is an agent turn in the log`, 120_000, async () => (await turnKinds(info.http, id)).includes('onDtmf'))));
  const missing = ids.filter((_, i) => pressed[i]?.status === 'rejected');
  if (missing.length > 0) {
    const logs = info.nodes.map((n) => fs.readFileSync(n.log, 'utf8').split('\n'));
    const why = await Promise.all(missing.map(async (id) => `${id}: turns ${(await turnKinds(info.http, id)).join(',')}\n  ${logs.flat().filter((l) => l.includes(id) && /"level":(40|50)/.test(l)).slice(-5).join('\n  ')}`));
    assert.fail(`key presses not answered after the kill:\n${why.join('\n')}`);
  }
  await Promise.all(peers.map((p, i) => p.waitFor(() => ulawEnergy(p.receivedAudio().subarray(offsets[i])) > 200, 120_000, `call ${i} hears the agent after the kill`)));
  const live = await calls(info.http);
  for (const id of ids) assert.notEqual(live.find((c) => c.id === id)?.state, 'ended', `call ${id} is still live`);

  // hang up: every call ends completed
  for (const p of peers) await p.hangup();
  await eventually('every call ended', 120_000, async () => {
    const now = await calls(info.http);
    return ids.every((id) => now.find((c) => c.id === id)?.state === 'ended');
  });
  const ended = await calls(info.http);
  for (const id of ids) assert.equal(ended.find((c) => c.id === id)?.end_reason, 'twilio:completed', `call ${id}`);

  // nothing lost: both nodes hold every turn, and their data dirs verify with one head hash
  for (const n of info.nodes) {
    for (const id of ids) assert.ok((await turnKinds(n.http, id)).includes('onDtmf'), `${n.id} holds call ${id}'s key press`);
  }
  assert.equal(await cluster.stop(), 0);
  verifyOneChain(info.nodes.map((n) => ({ id: n.id, dir: n.data_dir })));
});
