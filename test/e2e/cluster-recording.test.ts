/**
 * Recordings in cluster mode through the real processes (`switchboard cluster up --nodes 2`: 3 nats-server, 2 nodes,
 * HAProxy): a Twilio call through HAProxy is recorded on the node that took it; once finalized, the recording is
 * downloaded from EACH node's own URL — the same bytes, whose sha256 is the one the log recorded (the ETag) — and
 * neither node's data dir holds it: it is in the cluster's object store (store/jetstream-blobs.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { api, userToken } from '../helpers/api.ts';
import { ulawEnergy } from '../helpers/audio.ts';
import { answeredBy, eventually, startClusterUp, type ClusterUp } from '../helpers/cluster-up.ts';
import { TWILIO_TOKEN } from '../helpers/gateway.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550107101';
let cluster: ClusterUp | null = null;
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close();
  await cluster?.stop();
});

const files = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) : []);

test('cluster up: a call recorded on one node downloads identical (sha256) from every node, from the object store', { timeout: 600_000 }, async () => {
  cluster = await startClusterUp();
  const { info } = cluster;
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'rec', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const num = await api(info.http, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'rec', provider: 'twilio' } });
  assert.equal(num.status, 201, JSON.stringify(num.body));
  for (const n of info.nodes) {
    await eventually(`${n.id} has the number`, 30_000, async () => JSON.stringify((await api(n.http, 'GET', '/v1/numbers')).body).includes(NUMBER));
  }

  const peer = new TwilioPeer({ publicUrl: info.http, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550001111' });
  peers.push(peer);
  assert.equal((await peer.dial()).kind, 'streaming');
  await peer.waitFor(() => ulawEnergy(peer.receivedAudio()) > 200, 30_000, 'the disclosure and the agent are audible');
  await new Promise((r) => setTimeout(r, 6000)); // a few seconds of call to record
  const owner = answeredBy(info, peer.callSid);
  assert.equal(owner.length, 1);
  await peer.hangup();

  const compliance = await userToken(info.http, 'compliance', info.admin_token);
  const list = await api<{ calls: Array<{ id: string }> }>(info.http, 'GET', `/v1/calls?number=${encodeURIComponent(NUMBER)}`, { token: compliance.token });
  const callId = list.body.calls[0]!.id;
  const bodies: Buffer[] = [];
  for (const n of info.nodes) {
    let got: Awaited<ReturnType<typeof api>> | null = null;
    await eventually(`${n.id} serves the finalized recording`, 60_000, async () => {
      got = await api(n.http, 'GET', `/v1/calls/${callId}/recording`, { token: compliance.token, headers: { 'x-switchboard-purpose': 'cluster test' } });
      return got.status === 200;
    });
    const res = got!;
    const digest = createHash('sha256').update(res.raw).digest('hex');
    assert.equal(res.headers.get('etag'), `"${digest}"`, `${n.id}: the bytes match the sha256 in the log`);
    assert.equal(res.raw.subarray(0, 4).toString('latin1'), 'RIFF');
    bodies.push(res.raw);
  }
  assert.ok(bodies[0]!.equals(bodies[1]!), 'both nodes serve the same recording');
  for (const n of info.nodes) {
    const dataDir = (n as { data_dir?: string }).data_dir ?? path.dirname(n.log);
    assert.deepEqual(files(path.join(dataDir, 'recordings')).filter((f) => f.endsWith('.sbrec')), [], `${n.id} keeps no recording file`);
  }
});
