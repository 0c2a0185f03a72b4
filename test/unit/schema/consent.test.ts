/**
 * The store enforces consent: these drive the reducers directly (no call flow)
 * and show recordings, transcripts and agent turns refused without the right
 * decision.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { agent_turn_started, call_answered, call_received, consent_decided, consent_policy_created, consent_started, consent_withdrawn, recording_finalized, recording_hold_set, recording_purged, recording_started, tenant_created, transcript_appended } from '../../../schema/reducers.ts';

type S = ReturnType<typeof openTestStore>;
const DAY = 86_400_000;

async function callWithConsent(store: S, sid: string, mode: 'opt-in' | 'opt-out' | 'notify' = 'opt-in') {
  const policy = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: `p-${mode}`, mode, disclosure_text: 'We record calls.' }, T));
  const { call_id } = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'twilio', provider_call_id: sid, from: '+1', to: '+2' }, T));
  await store.submit(call_answered, { call_id }, T);
  const { consent_id } = resultOf<{ consent_id: string }>(await store.submit(consent_started, { call_id, policy_id: policy.policy_id }, T));
  return { call_id, consent_id, policy_id: policy.policy_id };
}

const code = (r: { outcome: { ok: boolean; error?: { code: string } } }) => (r.outcome.ok ? 'ok' : r.outcome.error?.code);

async function contentAttempts(store: S, call_id: string) {
  return {
    recording: code(await store.submit(recording_started, { call_id }, T)),
    transcript: code(await store.submit(transcript_appended, { call_id, channel: 'caller', start_ms: 0, end_ms: 900, text: 'hello', provider: 'test' }, T)),
  };
}

test('before a decision: no recording, no transcript, no agent turn', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { call_id } = await callWithConsent(store, 'CA1');
  assert.deepEqual(await contentAttempts(store, call_id), { recording: 'consent_required', transcript: 'consent_required' });
  const turn = await store.submit(agent_turn_started, { call_id, agent: 'a', version: '1', turn: 1, kind: 'start' }, T);
  assert.equal(code(turn), 'consent_required');
  assert.equal(store.read('acme').recordings.find().length, 0);
  assert.equal(store.read('acme').transcript_segments.find().length, 0);
});

for (const outcome of ['declined', 'no_response'] as const) {
  test(`${outcome}: recording and transcript refused; the agent may still serve the call`, async (t) => {
    const store = openTestStore();
    t.after(() => store.close());
    await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
    const { call_id, consent_id } = await callWithConsent(store, 'CA2');
    const method = outcome === 'declined' ? 'dtmf' : 'implied';
    assert.equal(code(await store.submit(consent_decided, { consent_id, outcome, method, evidence: { digit: '2' } }, T)), 'ok');
    assert.deepEqual(await contentAttempts(store, call_id), { recording: 'consent_required', transcript: 'consent_required' });
    assert.equal(code(await store.submit(agent_turn_started, { call_id, agent: 'a', version: '1', turn: 1, kind: 'start' }, T)), 'ok');
    assert.equal(store.read('acme').calls.get(call_id)?.state, 'active');
  });
}

test('granted: recording and transcripts are accepted, with the evidence kept on the consent row', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { call_id, consent_id } = await callWithConsent(store, 'CA3');
  await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'speech', evidence: { words: 'yes i agree', at_ms: 5400 } }, T);
  assert.deepEqual(await contentAttempts(store, call_id), { recording: 'ok', transcript: 'ok' });
  const consent = store.read('acme').consents.get(consent_id);
  assert.deepEqual(consent?.evidence, { words: 'yes i agree', at_ms: 5400 });
  assert.equal(consent?.method, 'speech');
  const rec = store.read('acme').recordings.find({ call_id })[0];
  assert.ok(rec && rec.retention_until! > rec.started_at + 2000 * DAY, 'retention from the policy (default 7 years)');
  assert.equal(store.read('acme').transcript_segments.find({ call_id })[0]?.recording_id, rec.id);
});

test('an opt-in policy cannot be granted implicitly; a decision is final', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { consent_id } = await callWithConsent(store, 'CA4', 'opt-in');
  assert.equal(code(await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'implied' }, T)), 'invalid_decision');
  assert.equal(code(await store.submit(consent_decided, { consent_id, outcome: 'declined', method: 'dtmf' }, T)), 'ok');
  assert.equal(code(await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'dtmf' }, T)), 'consent_decided');
});

test('withdrawal pauses the recording for good and stops transcripts', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { call_id, consent_id } = await callWithConsent(store, 'CA5');
  await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'dtmf', evidence: { digit: '1' } }, T);
  const { recording_id } = resultOf<{ recording_id: string }>(await store.submit(recording_started, { call_id }, T));
  assert.equal(code(await store.submit(consent_withdrawn, { call_id, method: 'dtmf', evidence: { sequence: '*9' } }, T)), 'ok');
  const rec = store.read('acme').recordings.get(recording_id);
  assert.equal(rec?.status, 'paused');
  assert.equal((rec?.pauses[0] as { reason: string }).reason, 'consent withdrawn');
  assert.deepEqual(await contentAttempts(store, call_id), { recording: 'consent_required', transcript: 'consent_required' });
  const consents = store.read('acme').consents.find({ call_id });
  assert.deepEqual(consents.map((c) => c.outcome).sort(), ['granted', 'withdrawn'], 'the grant stays on record beside its withdrawal');
});

test('policies are versioned by name', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const a = resultOf<{ version: number }>(await store.submit(consent_policy_created, { name: 'sales', mode: 'opt-in', disclosure_text: 'v1' }, T));
  const b = resultOf<{ version: number }>(await store.submit(consent_policy_created, { name: 'sales', mode: 'opt-in', disclosure_text: 'v2' }, T));
  assert.deepEqual([a.version, b.version], [1, 2]);
  assert.equal(store.read('acme').consent_policies.find({ name: 'default' }).length, 1, 'every tenant ships with the default policy');
  await assert.rejects(store.submit(consent_policy_created, { name: 'Bad Name', mode: 'opt-in', disclosure_text: 'x' }, T), /lowercase/);
  const xfer = await store.submit(consent_policy_created, { name: 'xfer', mode: 'opt-in', disclosure_text: 'x', on_decline: 'transfer' }, T);
  assert.equal(code(xfer), 'invalid_policy');
});

test('retention purge: refused under legal hold or before retention; the row and its sha256 stay', async (t) => {
  let now = 1_700_000_000_000;
  const store = openTestStore({ clock: () => now });
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { call_id, consent_id } = await callWithConsent(store, 'CA6');
  await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'dtmf' }, T);
  const { recording_id } = resultOf<{ recording_id: string }>(await store.submit(recording_started, { call_id }, T));
  const sha = 'a'.repeat(64);
  await store.submit(recording_finalized, { recording_id, uri: 'fs:x', bytes: 10, sha256: sha, key_id: 'k', format: 'wav', duration_ms: 1000, segments: [], gaps: [], pauses: [] }, T);
  assert.equal(code(await store.submit(recording_purged, { recording_id }, T)), 'retention_not_reached');
  now += 2556 * DAY;
  await store.submit(recording_hold_set, { recording_id, hold: true }, T);
  assert.equal(code(await store.submit(recording_purged, { recording_id }, T)), 'legal_hold');
  await store.submit(recording_hold_set, { recording_id, hold: false }, T);
  assert.equal(code(await store.submit(recording_purged, { recording_id }, T)), 'ok');
  const rec = store.read('acme').recordings.get(recording_id);
  assert.equal(rec?.status, 'purged');
  assert.equal(rec?.uri, null);
  assert.equal(rec?.sha256, sha);
  assert.ok(store.replay().ok);
});
