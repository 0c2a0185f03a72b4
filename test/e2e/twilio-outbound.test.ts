/**
 * Outbound Twilio calls end to end, through the fake Twilio REST API (test/helpers/fake-twilio-api.ts — NOT Twilio:
 * live accounts cannot be reached from here) and the real `twilio` package pointed at it:
 *
 *   POST /v1/calls {from: a Twilio number, to: E.164, amd} ─► calls.create ─► the fake answers 201 and drives the
 *   Twilio peer into our webhooks (signed with the account's own auth token, not TWILIO_AUTH_TOKEN) ─► TwiML ─►
 *   media stream ─► consent (opt-in, DTMF 1) ─► recording ─► the agent speaks ─► hang-up ─► `twilio:completed`
 *
 * Also: AnsweredBy becomes the call's `answered_by` row; a busy and an unanswered callee end the call `twilio:busy`
 * and `twilio:no-answer`; a from-number of another tenant is 404, of a provider that cannot dial 400, on a provider
 * without an account 422, one Twilio refuses (not on the account) 502 with nothing written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ulawEnergy } from '../helpers/audio.ts';
import { startFakeTwilioApi, type FakeTwilioApi } from '../helpers/fake-twilio-api.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import type { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15552220000';
const NOT_ON_ACCOUNT = '+15552220001';
const WEBRTC_NUMBER = '+15552220002';
const VONAGE_NUMBER = '+15552220003';
const OTHER_TENANT_NUMBER = '+15552220004';
const CALLEE = '+15557770000';
const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
const ACCOUNT_TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let fake: FakeTwilioApi;
const read = () => gw.store.read('default');

before(async () => {
  fake = await startFakeTwilioApi({ accountSid: ACCOUNT_SID, authToken: ACCOUNT_TOKEN, numbers: [NUMBER] });
  const file = path.join(tmpDir('sb-twilio-out-'), 'accounts.json');
  fs.writeFileSync(file, JSON.stringify({ twilio: { api_base: fake.url, accounts: [{ tenant: 'default', credentials: { account_sid: ACCOUNT_SID, auth_token: ACCOUNT_TOKEN } }] } }));
  gw = await startTestGateway({ env: { SWITCHBOARD_PROVIDER_ACCOUNTS: file } });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 20_000, retries: 0 }, who));
  for (const [number, provider] of [[NUMBER, 'twilio'], [NOT_ON_ACCOUNT, 'twilio'], [WEBRTC_NUMBER, 'webrtc'], [VONAGE_NUMBER, 'vonage']] as const) {
    resultOf(await gw.store.submit(number_added, { number, agent: 'default', provider, consent_policy_id: p.policy_id }, who));
  }
  resultOf(await gw.store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' }));
  resultOf(await gw.store.submit(number_added, { number: OTHER_TENANT_NUMBER, agent: 'default', provider: 'twilio' }, { tenant: 'other', caller: 'test' }));
});
after(async () => {
  await fake?.close();
  await gw?.stop();
});

type Placed = { call_id: string; provider: string; provider_call_id: string; error?: { code: string; message: string } };
const dial = (body: Record<string, unknown>) => api<Placed>(gw.publicUrl, 'POST', '/v1/calls', { body });

async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a Twilio number calls out: calls.create, answered by the peer (AMD human), consent, recording, the agent speaks', { timeout: 90_000 }, async () => {
  const r = await dial({ from: NUMBER, to: CALLEE, amd: true });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.provider, 'twilio');
  assert.match(r.body.provider_call_id, /^CA[0-9a-f]{32}$/);
  const create = fake.requests.find((q) => q.path.endsWith('/Calls.json'))!;
  assert.equal(create.authorization, `Basic ${Buffer.from(`${ACCOUNT_SID}:${ACCOUNT_TOKEN}`).toString('base64')}`);
  assert.deepEqual([create.form.To, create.form.From, create.form.Url, create.form.StatusCallback, create.form.MachineDetection], [[CALLEE], [NUMBER], [`${gw.publicUrl}/twilio/voice`], [`${gw.publicUrl}/twilio/status`], ['Enable']]);
  assert.ok(create.form.StatusCallbackEvent?.includes('completed'), 'final statuses are asked for');
  const callId = r.body.call_id;
  const call = () => read().calls.get(callId)!;
  assert.equal(call().direction, 'outbound');

  await waitFor(() => fake.peers.has(r.body.provider_call_id), 10_000, 'the fake drives the peer');
  const peer: TwilioPeer = fake.peers.get(r.body.provider_call_id)!;
  await peer.waitFor(() => peer.streams > 0, 15_000, 'media stream open');
  await peer.waitFor(() => call().state === 'consenting', 15_000, 'consent stage');
  await peer.waitFor(() => peer.receivedAudio().length > 8000, 15_000, 'the disclosure plays');
  peer.sendDtmf('1');
  await peer.waitFor(() => call().state === 'active', 15_000, 'consent granted, call active');
  assert.equal(read().consents.get(call().consent_id!)?.outcome, 'granted');
  await peer.waitFor(() => read().recordings.find({ call_id: callId }).length === 1, 10_000, 'recording started');
  await peer.waitFor(() => read().agent_actions.find({ call_id: callId, status: 'succeeded' }).length >= 1, 20_000, 'the agent spoke');
  assert.ok(ulawEnergy(peer.receivedAudio()) > 200, 'what the callee hears is audible');

  const amd = read().answered_by.get(callId);
  assert.deepEqual({ by: amd?.by, source: amd?.source, evidence: amd?.evidence }, { by: 'human', source: 'provider', evidence: { AnsweredBy: 'human', MachineDetectionDuration: '1840' } });

  await peer.hangup();
  await peer.waitFor(() => call().state === 'ended', 15_000, 'ended');
  assert.equal(call().end_reason, 'twilio:completed');
  const settled = (s: string) => s === 'finalized' || s === 'failed';
  await peer.waitFor(() => read().recordings.find({ call_id: callId }).every((x) => settled(x.status)), 30_000, 'recording finalized');
  assert.equal(read().recordings.find({ call_id: callId })[0]?.status, 'finalized');
  assert.equal(read().calls.find({ provider: 'twilio' }).length, 1, 'one row for the call: the webhooks found the dialled row');
  assert.ok(gw.store.verify().ok);
});

test('a busy and an unanswered callee end the call twilio:busy and twilio:no-answer', { timeout: 30_000 }, async () => {
  fake.callees.set('+15557770001', { kind: 'busy' });
  fake.callees.set('+15557770002', { kind: 'no-answer' });
  for (const [to, reason] of [['+15557770001', 'twilio:busy'], ['+15557770002', 'twilio:no-answer']] as const) {
    const r = await dial({ from: NUMBER, to });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await waitFor(() => read().calls.get(r.body.call_id)?.state === 'ended', 15_000, `${to} ended`);
    const c = read().calls.get(r.body.call_id)!;
    assert.equal(c.end_reason, reason);
    assert.equal(c.answered_at, null, 'never answered');
  }
});

test('caller ID: another tenant\'s number 404, a provider that cannot dial 400, no account 422, refused by Twilio 502; nothing written', async () => {
  const head = gw.store.head.seq;
  const cases: Array<[Record<string, unknown>, number, string]> = [
    [{ from: OTHER_TENANT_NUMBER, to: CALLEE }, 404, 'number_not_found'],
    [{ from: WEBRTC_NUMBER, to: CALLEE }, 400, 'provider_cannot_dial'],
    [{ from: VONAGE_NUMBER, to: CALLEE }, 422, 'no_provider_account'],
    [{ from: NUMBER, to: 'sip:bob@127.0.0.1' }, 400, 'invalid_request'],
    [{ from: NUMBER, to: '+1 not a number' }, 400, 'invalid_request'],
    [{ from: NOT_ON_ACCOUNT, to: CALLEE }, 502, 'provider_refused'],
  ];
  for (const [body, status, code] of cases) {
    const r = await dial(body);
    assert.equal(r.status, status, JSON.stringify({ body, got: r.body }));
    assert.equal(r.body.error?.code, code, JSON.stringify(r.body));
  }
  assert.match((await dial({ from: NOT_ON_ACCOUNT, to: CALLEE })).body.error?.message ?? '', /21210/);
  assert.equal(gw.store.head.seq, head, 'no command written for a refused dial');
});
