/**
 * Answering-machine detection's rows: `call_amd_requested` (schema/amd-requests.ts) is for outbound calls only and
 * is idempotent; `pendingAmd` (bridge/amd-stage.ts) sees a request until the media detector's `call_answered_by`
 * row decides it, and hands on a provider's definite decision; a
 * machine's consent (consent/machine.ts) is `no_response`, implied, with `answered_by: machine` — agent turns are
 * allowed (the voicemail), recording and transcripts are not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pendingAmd } from '../../../bridge/amd-stage.ts';
import { recordMachineConsent } from '../../../consent/machine.ts';
import { agent_turn_started, call_amd_requested, call_answered, call_answered_by, call_dialed, call_received, number_added, recording_started, tenant_created } from '../../../schema/reducers.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';

async function setup() {
  const store = openTestStore();
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  const number = resultOf(await store.submit(number_added, { number: '+15550001111', agent: 'sales' }, T));
  const out = resultOf(await store.submit(call_dialed, { provider: 'sip', provider_call_id: 'c1@x', from: '+15550001111', to: 'sip:bob@pbx.test', agent: null }, T)).call_id;
  const inbound = resultOf(
    await store.submit(call_received, { provider: 'sip', provider_call_id: 'c2@x', from: '+15559998888', to: '+15550001111', number_id: number.number_id, agent: 'sales' }, T),
  ).call_id;
  return { store, out, inbound };
}

test('call_amd_requested: outbound calls only, once per call; pendingAmd until a decision', async () => {
  const { store, out, inbound } = await setup();
  const refused = await store.submit(call_amd_requested, { call_id: inbound, on_unknown: 'human', timeout_ms: 30_000 }, T);
  assert.equal(refused.outcome.ok ? 'ok' : refused.outcome.error.code, 'not_outbound');
  assert.deepEqual(resultOf(await store.submit(call_amd_requested, { call_id: out, on_unknown: 'hangup', timeout_ms: 5000 }, T)), { call_id: out, existing: false });
  assert.deepEqual(resultOf(await store.submit(call_amd_requested, { call_id: out, on_unknown: 'human', timeout_ms: 9000 }, T)), { call_id: out, existing: true });
  assert.deepEqual(pendingAmd(store, { tenant: 'acme', callId: out }), { onUnknown: 'hangup', timeoutMs: 5000, decided: null });
  assert.equal(pendingAmd(store, { tenant: 'acme', callId: inbound }), null);
  await assert.rejects(store.submit(call_amd_requested, { call_id: out, on_unknown: 'human', timeout_ms: 100 }, T), /timeout_ms/, 'a timeout below 2000 ms is refused');
  // The provider's own AMD said unknown: the media detector still listens (and may replace it).
  resultOf(await store.submit(call_answered_by, { call_id: out, by: 'unknown', source: 'provider', evidence: {} }, T));
  assert.equal(pendingAmd(store, { tenant: 'acme', callId: out })?.decided, null);
  resultOf(await store.submit(call_answered_by, { call_id: out, by: 'machine', source: 'media', evidence: { reason: 'beep' } }, T));
  assert.equal(pendingAmd(store, { tenant: 'acme', callId: out }), null, 'decided by the media detector: a resumed call does not listen again');
});

test("pendingAmd: the provider's definite decision is taken as it is, without listening", async () => {
  const { store, out } = await setup();
  resultOf(await store.submit(call_amd_requested, { call_id: out, on_unknown: 'human', timeout_ms: 30_000 }, T));
  resultOf(await store.submit(call_answered_by, { call_id: out, by: 'human', source: 'provider', evidence: { AnsweredBy: 'human' } }, T));
  assert.deepEqual(pendingAmd(store, { tenant: 'acme', callId: out })?.decided, { by: 'human', evidence: { AnsweredBy: 'human' } });
});

test("a machine's consent: no_response, implied, answered_by machine; agent turns allowed, recording refused; idempotent", async () => {
  const { store, out } = await setup();
  resultOf(await store.submit(call_answered, { call_id: out }, T));
  await recordMachineConsent(store, 'acme', out, { amd_reason: 'beep' });
  await recordMachineConsent(store, 'acme', out, { amd_reason: 'beep' });
  const read = store.read('acme');
  const call = read.calls.get(out)!;
  const consent = read.consents.get(call.consent_id!)!;
  assert.equal(consent.outcome, 'no_response');
  assert.equal(consent.method, 'implied');
  assert.deepEqual(consent.evidence, { amd_reason: 'beep', answered_by: 'machine' });
  assert.equal(read.consents.find({ call_id: out }).length, 1, 'one consent row');
  assert.equal(call.state, 'active');
  assert.ok((await store.submit(agent_turn_started, { call_id: out, agent: 'sales', version: 'v1', turn: 1, kind: 'onAnswered' }, T)).outcome.ok);
  const rec = await store.submit(recording_started, { call_id: out, channels: 2, format: 'wav' }, T);
  assert.equal(rec.outcome.ok ? 'ok' : rec.outcome.error.code, 'consent_required');
});
