/**
 * The compliance API around a real call: the number and its consent policy
 * are configured through the API, a signed Twilio call (the Twilio peer,
 * real-time paced audio) is watched live over `WS /v1/subscribe`, and after
 * hang-up the recording is fetched through the audited API and matches the
 * sha256 the store recorded.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { api, userToken } from '../helpers/api.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15557654321';
const open: Array<{ close(): Promise<void> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

test('configure by API, watch a live Twilio call over the subscription socket, then fetch its recording audited', { timeout: 90_000 }, async () => {
  const gw = await startTestGateway();
  open.push({ close: () => gw.stop() });
  const policy = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'This line is recorded.' } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const num = await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'short', provider: 'twilio' } });
  assert.equal(num.status, 201, JSON.stringify(num.body));

  const states: string[] = [];
  const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  open.push({ close: () => ws.close() });
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string; op?: string; new?: { state: string } | null };
    if (m.type === 'delta' && m.new) states.push(m.new.state);
  });
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'subscribe', id: 'calls', table: 'calls' }));

  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550009999', redirectRetryMs: 5000 });
  open.push({ close: () => peer.close() });
  await peer.dial();
  await peer.waitFor(() => states.includes('active'), 15_000, 'the call became active (seen over the socket)');
  await peer.play(speechUlaw('I would like to change my appointment'));
  await peer.waitFor(() => peer.marksEchoed >= 5, 10_000, 'the agent spoke');
  await peer.hangup();
  await peer.waitFor(() => states.includes('ended'), 10_000, 'the end arrived over the socket');
  // Each state the call went through arrived in order.
  const order = ['ringing', 'answered', 'consenting', 'active', 'ended'];
  const firsts = order.map((s) => states.indexOf(s));
  assert.ok(firsts.every((i) => i >= 0), `states seen: ${states.join(',')}`);
  assert.deepEqual([...firsts].sort((a, b) => a - b), firsts);

  const list = await api<{ calls: Array<{ id: string; state: string; from: string }> }>(gw.publicUrl, 'GET', `/v1/calls?number=${encodeURIComponent(NUMBER)}`);
  assert.equal(list.body.calls.length, 1);
  const callId = list.body.calls[0]!.id;
  assert.equal(list.body.calls[0]!.from, '+15550009999');
  const compliance = await userToken(gw.publicUrl, 'compliance');
  let rec: { sha256: string | null; status: string } | undefined;
  await peer.waitFor(() => {
    rec = gw.store.read('default').recordings.findOne({ call_id: callId });
    return rec?.status === 'finalized';
  }, 20_000, 'recording finalized');
  const audio = await api(gw.publicUrl, 'GET', `/v1/calls/${callId}/recording`, { token: compliance.token, headers: { 'x-switchboard-purpose': 'complaint 7' } });
  assert.equal(audio.status, 200);
  assert.equal(createHash('sha256').update(audio.raw).digest('hex'), rec!.sha256);
  assert.equal(audio.raw.subarray(0, 4).toString('latin1'), 'RIFF');
  const detail = await api<{ timeline: Array<{ kind: string }>; consents: Array<{ outcome: string }> }>(gw.publicUrl, 'GET', `/v1/calls/${callId}`, { token: compliance.token });
  assert.equal(detail.status, 200);
  assert.equal(detail.body.consents[0]?.outcome, 'granted');
  const kinds = detail.body.timeline.map((t) => t.kind);
  for (const k of ['call_received', 'consent_started', 'consent_decided', 'recording_started', 'recording_finalized', 'call_ended', 'recording_accessed']) {
    assert.ok(kinds.includes(k), `timeline has ${k}: ${kinds.join(',')}`);
  }
  const access = gw.store.read('default').access_log.find({ call_id: callId });
  assert.deepEqual(access.map((a) => [a.action, a.reason]).sort(), [['recording_accessed', 'complaint 7'], ['transcript_accessed', null]]);
});
