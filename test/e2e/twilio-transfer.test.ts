/**
 * Blind transfer to a human over Twilio: the call becomes `transferring`
 * with its target, the media stream closes, Twilio's <Redirect> asks the
 * webhook again and is answered with <Dial>; when the bridged call ends the
 * status callback ends ours. Both ways in: an agent's `ctx.transfer`, and a
 * consent policy whose `on_decline` is `transfer`.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const open: Array<{ close(): Promise<unknown> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

async function gateway() {
  const gw = await startTestGateway({ env: { SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push({ close: () => gw.stop() });
  return gw;
}

function peer(gw: { publicUrl: string }, to: string): TwilioPeer {
  const p = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to, from: '+15550007777', redirectRetryMs: 5000 });
  open.push({ close: () => p.close() });
  return p;
}

test('an agent transfers the caller: transferring with its target, the stream closes, Twilio is told to <Dial> it, the call ends when the bridge does', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const NUMBER = '+15550125000';
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'concierge', consent_policy: 'short' } })).status, 201);
  assert.equal((await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work: tmpDir('sb-transfer-') })).status, 201);
  const p = peer(gw, NUMBER);
  await p.dial();
  const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
  const actions = () => gw.store.read('default').agent_actions.find({ call_id: call().id });
  await p.waitFor(() => actions().some((a) => a.status === 'succeeded'), 15_000, 'greeted');
  p.sendDtmf('0');
  await p.waitFor(() => p.dialed.length === 1, 10_000, 'Twilio told to dial');
  assert.deepEqual(p.dialed, ['+15559990000']);
  assert.equal(p.streams, 1, 'no new media stream: the caller went to the human, not back to the agent');
  await p.waitFor(() => call().state === 'ended', 10_000, 'the call ends after the bridge');
  const events = [...gw.store.events()].filter((e) => JSON.stringify(e.args).includes(call().id)).map((e) => e.reducer);
  assert.ok(events.includes('call_transfer_started'));
  assert.ok(!events.includes('call_media_lost'), 'closing the media for a transfer is not a media loss');
  assert.ok(!events.includes('call_resume_requested'), 'the redirect after a transfer is not a resume');
  const transfer = actions().find((a) => a.kind === 'transfer')!;
  assert.equal(transfer.status, 'succeeded');
  assert.deepEqual(transfer.args, { target: '+15559990000' });
  assert.equal(call().transfer_target, '+15559990000');
});

test('a consent policy with on_decline transfer sends a declining caller to its transfer target', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const NUMBER = '+15550126000';
  const policy = await api(gw.publicUrl, 'POST', '/v1/consent-policies', {
    body: { name: 'optin', mode: 'opt-in', disclosure_text: 'We record calls.', on_decline: 'transfer', transfer_target: 'sip:desk@example.com' },
  });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'optin' } })).status, 201);
  const p = peer(gw, NUMBER);
  await p.dial();
  const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
  await p.waitFor(() => call().state === 'consenting', 10_000, 'consent asked');
  p.sendDtmf('2');
  await p.waitFor(() => p.dialed.length === 1, 15_000, 'dialled the desk');
  assert.deepEqual(p.dialed, ['sip:desk@example.com']);
  await p.waitFor(() => call().state === 'ended', 10_000, 'ended after the bridge');
  assert.equal(gw.store.read('default').consents.get(call().consent_id!)?.outcome, 'declined');
  assert.equal(gw.store.read('default').recordings.find({ call_id: call().id }).length, 0, 'nothing recorded');
});
