/**
 * `switchboard cluster up --nodes 2`, the real command with real processes: 3 nats-server, 2 `switchboard start`
 * nodes, HAProxy and Kamailio. Through HAProxy a Twilio call (the Twilio peer) hears the agent; through Kamailio a
 * sipp call is answered by a node, and the caller's ACK and BYE, sent by the route set of the 200's Record-Route,
 * reach that node (its 200 to the BYE: another node would answer 481). The node that took the Twilio call is
 * killed (-9): the next Twilio call through HAProxy and the next SIP call through Kamailio land on the other node.
 * A second `cluster up` over the same dir is refused while the first runs. Ctrl-C (SIGINT) stops the command with
 * exit 0 and leaves none of its processes (nor their forks) behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ulawEnergy } from '../helpers/audio.ts';
import { alive, answeredBy, BIN, eventually, startClusterUp, type ClusterUp, type UpInfo } from '../helpers/cluster-up.ts';
import { TWILIO_TOKEN } from '../helpers/gateway.ts';
import { runSipp } from '../helpers/sipp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const TWILIO_NUMBER = '+15550107001';
const SIP_NUMBER = '+15550107002';

let cluster: ClusterUp | null = null;
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close();
  await cluster?.stop();
});

async function twilioCall(info: UpInfo): Promise<TwilioPeer> {
  const peer = new TwilioPeer({ publicUrl: info.http, authToken: TWILIO_TOKEN, to: TWILIO_NUMBER, from: '+15550001111', redirectRetryMs: 15_000 });
  peers.push(peer);
  const dial = await peer.dial();
  assert.equal(dial.kind, 'streaming', JSON.stringify(dial));
  await peer.waitFor(() => ulawEnergy(peer.receivedAudio()) > 200, 30_000, 'the disclosure and the agent are audible, not silence');
  return peer;
}

async function sipCall(info: UpInfo): Promise<{ callId: string; node: string }> {
  const port = Number(/:(\d+)$/.exec(info.sip)?.[1]);
  const run = await runSipp({ scenario: 'uac_proxied.xml', port, service: SIP_NUMBER.slice(1), timeoutS: 40 });
  assert.equal(run.code, 0, run.output);
  const ok = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 INVITE/i.test(m.text));
  assert.ok(ok, 'the INVITE was answered');
  assert.match(ok.text, /Record-Route:[^\n]*127\.0\.0\.1:\d+[^\n]*;lr/i, 'the 200 carries the proxy in Record-Route');
  const bye = run.messages.find((m) => m.dir === 'sent' && m.first.startsWith('BYE'));
  assert.ok(bye, 'sipp sent its BYE');
  assert.match(bye.text, /Route:[^\n]*;lr/i, 'the BYE follows the route set through Kamailio');
  const byeOk = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/i.test(m.text));
  assert.ok(byeOk, 'the node holding the dialog answered the BYE 200 (another node would say 481)');
  const callId = /^Call-ID:\s*(\S+)/im.exec(bye.text)?.[1] ?? '';
  const nodes = answeredBy(info, callId);
  assert.equal(nodes.length, 1, `one node answered ${callId}: ${nodes.join(', ')}`);
  return { callId, node: nodes[0]! };
}

test('cluster up --nodes 2: Twilio through HAProxy, SIP through Kamailio, a dead node is routed around, Ctrl-C leaves nothing', { timeout: 600_000 }, async () => {
  cluster = await startClusterUp();
  const { info } = cluster;
  assert.equal(info.nodes.length, 2);
  assert.match(info.http, /^http:\/\/127\.0\.0\.1:\d+$/);
  for (const pid of info.pids) assert.ok(alive(pid), `process ${pid} runs`);

  // Routes, written through HAProxy into the shared log.
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  for (const [number, provider] of [[TWILIO_NUMBER, 'twilio'], [SIP_NUMBER, 'sip']] as const) {
    const r = await api(info.http, 'POST', '/v1/numbers', { body: { number, agent: 'default', consent_policy: 'short', provider } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  // Every node applies them from the log before it is asked to route a call.
  for (const n of info.nodes) {
    await eventually(`${n.id} has both numbers`, 30_000, async () => {
      const r = await api(n.http, 'GET', '/v1/numbers');
      return JSON.stringify(r.body).includes(TWILIO_NUMBER) && JSON.stringify(r.body).includes(SIP_NUMBER);
    });
  }

  // SIP through Kamailio, both nodes alive: answered by one node, the BYE reaches it.
  const first = await sipCall(info);
  await eventually('the SIP call ended by the BYE', 20_000, async () => {
    const r = await api(info.http, 'GET', '/v1/calls?limit=50');
    return /"end_reason":"sip:bye"/.test(JSON.stringify(r.body));
  });
  assert.ok(info.nodes.some((n) => n.id === first.node));

  // Twilio through HAProxy: the disclosure and the agent's greeting are heard.
  const a = await twilioCall(info);
  const owners = answeredBy(info, a.callSid);
  assert.equal(owners.length, 1, `one node answered ${a.callSid}`);
  const victim = info.nodes.find((n) => n.id === owners[0])!;
  const survivor = info.nodes.find((n) => n.id !== victim.id)!;
  await a.hangup();

  // Kill that node: the next calls go to the other one.
  await cluster.killNode(victim.id);
  const b = await twilioCall(info);
  assert.deepEqual(answeredBy(info, b.callSid), [survivor.id], 'HAProxy sent the new Twilio call to the live node');
  await b.hangup();
  const second = await sipCall(info);
  assert.equal(second.node, survivor.id, 'Kamailio sent the new INVITE to the live node');

  // A second `cluster up` over the same dir while this one runs is refused (two NATS servers on one store dir).
  const again = spawnSync(process.execPath, [BIN, 'cluster', 'up', '--nodes', '1', '--dir', info.dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(again.status, 1, `${again.stdout}${again.stderr}`);
  assert.match(again.stderr, /processes of an earlier cluster over .* still run \(process groups \d+/);
  assert.ok(info.pids.filter((p) => p !== victim.pid).every(alive), 'the running cluster is untouched');

  // Ctrl-C: exit 0, and no process (nor a forked Kamailio worker) is left.
  assert.equal(await cluster.stop(), 0);
  const left = info.pids.filter(alive);
  assert.deepEqual(left, [], 'every process group of the cluster is gone');
  assert.ok(!fs.existsSync(path.join(info.dir, 'pids.json')), 'the pid list is removed with the processes');
});
