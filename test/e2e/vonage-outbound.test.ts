/**
 * Outbound Vonage calls end to end, through the fake Vonage REST API (test/helpers/fake-vonage-api.ts, its Voice API
 * part — NOT Vonage: live accounts cannot be reached from here) and the real @vonage/server-sdk pointed at it
 * (`apiHost`):
 *
 *   POST /v1/calls {from: a Vonage number, to: E.164, amd} ─► voice.createOutboundCall (Bearer JWT of the
 *   application's key) ─► the fake answers 201 and drives the Vonage peer into our signed webhooks ─► NCCO connect
 *   ─► websocket ─► consent (opt-in, DTMF 1) ─► recording ─► the agent speaks ─► hang-up ─► `vonage:completed`
 *
 * Also: the `machine` event of advanced machine detection becomes the call's `answered_by` row and, through the amd
 * stage, a call with no consent prompt that the default agent (no `onAnswered`) hangs up `amd:machine`; busy, rejected and
 * unanswered callees end the call `vonage:busy`, `vonage:rejected`, `vonage:unanswered`; a number Vonage refuses is
 * 502 with nothing written. Caller ID: another tenant's Vonage number is 404, and a number of ours on another provider
 * (Twilio, no account) is never placed through the Vonage application (422); the fake sees no create for either.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { startFakeVonageApi, type FakeVonageApi } from '../helpers/fake-vonage-api.ts';
import { startTestGateway, VONAGE_SECRET } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+447700900100';
const NOT_ON_ACCOUNT = '+447700900101';
const TWILIO_NUMBER = '+447700900102';
const OTHER_TENANT_NUMBER = '+447700900103';
const CALLEE = '+447700900200';
const APPLICATION_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let fake: FakeVonageApi;
const read = () => gw.store.read('default');

before(async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  fake = await startFakeVonageApi({ apiKey: 'k', apiSecret: 's', voice: { applicationId: APPLICATION_ID, publicKey, signatureSecret: VONAGE_SECRET, numbers: [NUMBER.slice(1)] } });
  const file = path.join(tmpDir('sb-vonage-out-'), 'accounts.json');
  fs.writeFileSync(file, JSON.stringify({ vonage: { api_base: fake.url, accounts: [{ tenant: 'default', credentials: { application_id: APPLICATION_ID, private_key: privateKey } }] } }));
  gw = await startTestGateway({ env: { SWITCHBOARD_PROVIDER_ACCOUNTS: file } });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 20_000, retries: 0 }, who));
  for (const number of [NUMBER, NOT_ON_ACCOUNT]) resultOf(await gw.store.submit(number_added, { number, agent: 'default', provider: 'vonage', consent_policy_id: p.policy_id }, who));
  resultOf(await gw.store.submit(number_added, { number: TWILIO_NUMBER, agent: 'default', provider: 'twilio' }, who));
  resultOf(await gw.store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' }));
  resultOf(await gw.store.submit(number_added, { number: OTHER_TENANT_NUMBER, agent: 'default', provider: 'vonage' }, { tenant: 'other', caller: 'test' }));
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

const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((s, v) => s + v * v, 0) / Math.max(1, pcm.length));

test('a Vonage number calls out: createOutboundCall, answered by the peer (AMD human), consent, recording, the agent speaks', { timeout: 90_000 }, async () => {
  fake.callees.set(CALLEE.slice(1), { kind: 'answer', answeredBy: 'human' });
  const r = await dial({ from: NUMBER, to: CALLEE, amd: true });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.provider, 'vonage');
  const create = fake.requests.find((q) => q.path === '/v1/calls' && q.method === 'POST')!;
  assert.match(create.authorization ?? '', /^Bearer /);
  const sent = JSON.parse(create.body) as Record<string, unknown>;
  assert.deepEqual(sent.to, [{ type: 'phone', number: CALLEE.slice(1) }]);
  assert.deepEqual(sent.from, { type: 'phone', number: NUMBER.slice(1) });
  assert.deepEqual([sent.answer_url, sent.event_url], [[`${gw.publicUrl}/vonage/answer`], [`${gw.publicUrl}/vonage/event`]]);
  assert.deepEqual(sent.advanced_machine_detection, { behavior: 'continue', mode: 'detect' });
  const callId = r.body.call_id;
  const call = () => read().calls.get(callId)!;

  await waitFor(() => fake.peers.has(r.body.provider_call_id), 10_000, 'the fake drives the peer');
  const peer = fake.peers.get(r.body.provider_call_id)!;
  await peer.waitFor(() => peer.streams > 0, 15_000, 'websocket open');
  await peer.waitFor(() => call().state === 'consenting', 15_000, 'consent stage');
  await peer.waitFor(() => peer.receivedBytes > 16_000, 15_000, 'the disclosure plays');
  peer.sendDtmf('1');
  await peer.waitFor(() => call().state === 'active', 15_000, 'consent granted');
  assert.equal(read().consents.get(call().consent_id!)?.outcome, 'granted');
  await peer.waitFor(() => read().recordings.find({ call_id: callId }).length === 1, 10_000, 'recording started');
  await peer.waitFor(() => read().agent_actions.find({ call_id: callId, status: 'succeeded' }).length >= 1, 20_000, 'the agent spoke');
  assert.ok(rms(peer.receivedAudio()) > 100, 'what the callee hears is audible');

  const amd = read().answered_by.get(callId);
  assert.deepEqual({ by: amd?.by, source: amd?.source }, { by: 'human', source: 'provider' });

  await peer.hangup();
  await peer.waitFor(() => call().state === 'ended', 15_000, 'ended');
  assert.equal(call().end_reason, 'vonage:completed');
  const settled = (s: string) => s === 'finalized' || s === 'failed';
  await peer.waitFor(() => read().recordings.find({ call_id: callId }).every((x) => settled(x.status)), 30_000, 'recording finalized');
  assert.equal(read().recordings.find({ call_id: callId })[0]?.status, 'finalized');
  assert.equal(read().calls.find({ provider: 'vonage' }).length, 1, 'one row: the webhooks found the dialled row');
});

test('advanced machine detection says machine: the answered_by row, no consent prompt nor recording, and an agent without onAnswered hangs up (amd:machine)', { timeout: 60_000 }, async () => {
  const to = '+447700900299';
  fake.callees.set(to.slice(1), { kind: 'answer', answeredBy: 'machine' });
  const r = await dial({ from: NUMBER, to, amd: true });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const callId = r.body.call_id;
  await waitFor(() => read().calls.get(callId)?.state === 'ended', 30_000, 'the machine call ended');
  const amd = read().answered_by.get(callId);
  assert.deepEqual({ by: amd?.by, source: amd?.source, sub: amd?.evidence.sub_state }, { by: 'machine', source: 'provider', sub: 'beep_start' });
  assert.equal(read().calls.get(callId)?.end_reason, 'amd:machine');
  assert.equal(read().recordings.find({ call_id: callId }).length, 0, 'nothing recorded for a machine');
});

test('busy, rejected and unanswered callees end the call vonage:busy, vonage:rejected, vonage:unanswered; a number Vonage refuses is 502', { timeout: 30_000 }, async () => {
  for (const kind of ['busy', 'rejected', 'unanswered'] as const) {
    const to = `+4477009003${kind.length}${kind.charCodeAt(0) % 10}`;
    fake.callees.set(to.slice(1), { kind });
    const r = await dial({ from: NUMBER, to });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await waitFor(() => read().calls.get(r.body.call_id)?.state === 'ended', 15_000, `${kind} ended`);
    assert.equal(read().calls.get(r.body.call_id)?.end_reason, `vonage:${kind}`);
  }
  const head = gw.store.head.seq;
  const refused = await dial({ from: NOT_ON_ACCOUNT, to: CALLEE });
  assert.equal(refused.status, 502, JSON.stringify(refused.body));
  assert.equal(refused.body.error?.code, 'provider_refused');
  assert.match(refused.body.error?.message ?? '', /HTTP 403/);
  assert.equal(gw.store.head.seq, head, 'nothing written');
});

test('caller ID: another tenant\'s Vonage number 404; our Twilio number never goes through the Vonage account (422); nothing sent', async () => {
  const creates = fake.requests.filter((q) => q.method === 'POST' && q.path === '/v1/calls').length;
  const calls = read().calls.find({}).length;
  for (const [from, status, code] of [[OTHER_TENANT_NUMBER, 404, 'number_not_found'], [TWILIO_NUMBER, 422, 'no_provider_account']] as const) {
    const r = await dial({ from, to: CALLEE });
    assert.equal(r.status, status, `${from}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error?.code, code);
  }
  assert.equal(fake.requests.filter((q) => q.method === 'POST' && q.path === '/v1/calls').length, creates, 'no create reached the provider');
  assert.equal(read().calls.find({}).length, calls, 'nothing written');
});
