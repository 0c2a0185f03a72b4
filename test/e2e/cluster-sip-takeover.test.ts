/**
 * SIP takeover through `switchboard cluster up --nodes 2` (real nats-server ×3, two `switchboard start` nodes,
 * Kamailio record-routing): sipp calls through Kamailio, node A answers, A is killed (-9). B, once A's lease has run
 * out, claims the call through the log and sends a re-INVITE in the dialog through Kamailio: its Contact is B's, its
 * SDP's c=/m= are B's address and an RTP port of B's range, the o= session id is the one A answered with and its
 * version is one higher (RFC 3264 §8). sipp answers it, then sends RFC 4733 digit 1 to B's port (the opt-in consent
 * is granted: the caller's RTP reached B) and its BYE to B's Contact through the route set: B answers it 200. One
 * call row, ended `sip:bye`, owned by B, its first leg A's (lost), its second B's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { eventually, startClusterUp, type ClusterUp } from '../helpers/cluster-up.ts';
import { runSipp } from '../helpers/sipp.ts';

const NUMBER = '+15550107011';

let cluster: ClusterUp | null = null;
after(async () => {
  await cluster?.stop();
});

const sdpLine = (text: string, re: RegExp): string | undefined => re.exec(text)?.[1];

test('cluster: node A dies under a SIP call through Kamailio; B takes it over with a re-INVITE, the caller\'s RTP and BYE reach B', { timeout: 600_000 }, async () => {
  cluster = await startClusterUp({ env: { SWITCHBOARD_CLUSTER_LEASE_MS: '3000' } });
  const { info } = cluster;
  const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'optin', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 1 } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const num = await api(info.http, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'optin', provider: 'sip' } });
  assert.equal(num.status, 201, JSON.stringify(num.body));
  for (const n of info.nodes) await eventually(`${n.id} has the number`, 30_000, async () => JSON.stringify((await api(n.http, 'GET', '/v1/numbers')).body).includes(NUMBER));

  const kamailio = Number(/:(\d+)$/.exec(info.sip)?.[1]);
  const sipp = runSipp({ scenario: 'uac_takeover.xml', port: kamailio, service: NUMBER.slice(1), timeoutS: 180 });
  const answered = (n: (typeof info.nodes)[number]): boolean => fs.readFileSync(n.log, 'utf8').includes('SIP call answered');
  await eventually('a node answered the SIP call', 60_000, () => info.nodes.some(answered));
  const a = info.nodes.find(answered)!;
  const b = info.nodes.find((n) => n.id !== a.id)!;
  // The call is live on A (its leg connected in the log) before A dies.
  await eventually('the call is connected on A', 30_000, async () => {
    const r = await api(info.http, 'GET', '/v1/calls?limit=5');
    return /"state":"(active|consenting)"/.test(JSON.stringify(r.body));
  });
  await cluster.killNode(a.id);

  const run = await sipp;
  assert.equal(run.code, 0, `${run.output}\n--- ${b.id} log tail:\n${fs.readFileSync(b.log, 'utf8').split('\n').slice(-30).join('\n')}`);
  const answer = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 INVITE/i.test(m.text));
  assert.ok(answer, 'A answered the INVITE');
  const reinvite = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
  assert.ok(reinvite, 'the caller received a re-INVITE');
  const contact = /^Contact:\s*(.+)$/im.exec(reinvite.text)?.[1] ?? '';
  assert.match(contact, new RegExp(`:${b.sip_port}[>;]`), `the re-INVITE's Contact is B's (sip port ${b.sip_port}): ${contact}`);
  assert.doesNotMatch(contact, new RegExp(`:${a.sip_port}[>;]`));
  assert.match(reinvite.text, /^To:.*tag=/im, 'in the dialog (both tags)');
  // SDP: B's address and an RTP port B bound (its log names it), same o= session id as A's answer, version + 1.
  const taken = fs.readFileSync(b.log, 'utf8').split('\n').find((l) => l.includes('SIP call taken over'));
  assert.ok(taken, `B logged the takeover:\n${fs.readFileSync(b.log, 'utf8').split('\n').slice(-30).join('\n')}`);
  const bRtp = Number(/"rtp":(\d+)/.exec(taken)?.[1]);
  assert.equal(Number(sdpLine(reinvite.text, /^m=audio (\d+) /m)), bRtp, 'the offer\'s m= port is the RTP port B bound');
  const aRtp = Number(sdpLine(answer.text, /^m=audio (\d+) /m));
  assert.notEqual(bRtp, aRtp, 'a port of B, not A\'s');
  assert.equal(sdpLine(reinvite.text, /^c=IN IP4 (\S+)/m), sdpLine(answer.text, /^c=IN IP4 (\S+)/m), 'both nodes advertise the same host address here (one machine); the port tells them apart');
  const [aSession, aVersion] = (sdpLine(answer.text, /^o=\S+ (\d+ \d+) /m) ?? '').split(' ').map(Number);
  const [bSession, bVersion] = (sdpLine(reinvite.text, /^o=\S+ (\d+ \d+) /m) ?? '').split(' ').map(Number);
  assert.equal(bSession, aSession, 'the same SDP session id');
  assert.equal(bVersion, aVersion! + 1, 'the SDP version incremented');
  const aCseq = Number(/^CSeq:\s*(\d+) INVITE/im.exec(reinvite.text)?.[1]);
  assert.ok(aCseq > 1, 'a CSeq above the dialog\'s');
  assert.ok(run.messages.some((m) => m.dir === 'sent' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*\d+ INVITE/i.test(m.text)), 'sipp answered the re-INVITE');
  assert.ok(run.messages.some((m) => m.dir === 'received' && m.first.startsWith('ACK ')), 'B ACKed the 200');
  const bye = run.messages.find((m) => m.dir === 'sent' && m.first.startsWith('BYE '));
  assert.ok(bye, 'sipp sent BYE');
  assert.match(bye.first, new RegExp(`:${b.sip_port}\\b`), 'the BYE went to B\'s Contact (the new remote target)');
  assert.match(bye.text, /^Route:[^\n]*;lr/im, 'through the route set (Kamailio)');
  assert.ok(run.messages.some((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/i.test(m.text)), 'B answered the BYE 200');

  // The store (through HAProxy: B): one call, ended by the BYE, owned by B, consent granted by the DTMF sent to B.
  let detail: { call: { id: string; state: string; end_reason: string | null; owner_node: string | null }; legs: Array<{ state: string; disconnect_reason: string | null }>; consents: Array<{ outcome: string | null }> } | null = null;
  await eventually('the call ended by the BYE', 30_000, async () => {
    const list = (await api(info.http, 'GET', '/v1/calls?limit=10')).body as { calls?: Array<{ id: string }> };
    const calls = list.calls ?? [];
    if (calls.length !== 1) return false;
    detail = (await api(info.http, 'GET', `/v1/calls/${calls[0]!.id}`)).body as typeof detail;
    return detail?.call.state === 'ended';
  });
  const d = detail!;
  assert.equal(d.call.end_reason, 'sip:bye');
  assert.equal(d.call.owner_node, b.id, 'B owns the call');
  assert.equal(d.legs.length, 2, 'A\'s leg, then B\'s');
  assert.match(d.legs[0]!.disconnect_reason ?? '', new RegExp(`node ${a.id} lost`));
  assert.ok(d.consents.some((c) => c.outcome === 'granted'), 'digit 1, sent after the takeover to B\'s RTP port, granted consent');
});
