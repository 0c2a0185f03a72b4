/**
 * The PCI pause and redaction routes on an in-process gateway, with a live call written through the reducers (no
 * media): who may pause (recording:pause: admin, compliance; not developer, not auditor), the pause row (by a user,
 * the recording row paused and resumed with it), a second pause answering the open one, resume's refusal when none
 * is on, an ended call refusing a pause; redaction policies set by policies:write only, and listed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, userToken } from '../helpers/api.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { call_answered, call_ended, call_received, consent_decided, consent_started, recording_started } from '../../schema/reducers.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
const as = { tenant: 'default', caller: 'system:test' };

async function liveCall(): Promise<{ callId: string; recordingId: string }> {
  const policy = gw.store.read('default').consent_policies.findOne({ name: 'default' })!;
  const { call_id: callId } = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: `CA${Math.random().toString(16).slice(2)}`, from: '+15550001111', to: '+15550002222', agent: 'default' }, as),
  );
  resultOf(await gw.store.submit(call_answered, { call_id: callId }, as));
  const { consent_id } = resultOf<{ consent_id: string }>(await gw.store.submit(consent_started, { call_id: callId, policy_id: policy.id }, as));
  resultOf(await gw.store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'dtmf', evidence: { digit: '1' } }, as));
  const { recording_id } = resultOf<{ recording_id: string }>(await gw.store.submit(recording_started, { call_id: callId }, as));
  return { callId, recordingId: recording_id };
}

before(async () => {
  gw = await startTestGateway();
});
after(() => gw.stop());

test('pause and resume a call’s recording: permissions, the row, the recording row, refusals', async () => {
  const { callId, recordingId } = await liveCall();
  const developer = await userToken(gw.publicUrl, 'developer');
  const auditor = await userToken(gw.publicUrl, 'auditor');
  const compliance = await userToken(gw.publicUrl, 'compliance');
  for (const who of [developer, auditor]) {
    assert.equal((await api(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/pause`, { token: who.token, body: {} })).status, 403);
  }
  const paused = await api<Record<string, unknown>>(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/pause`, { token: compliance.token, body: { reason: 'pci' } });
  assert.equal(paused.status, 201, JSON.stringify(paused.body));
  assert.equal(paused.body['by'], 'user');
  assert.equal(paused.body['paused_by'], `user:${compliance.userId}`);
  assert.equal(paused.body['resumed_at'], null);
  assert.equal(gw.store.read('default').recordings.get(recordingId)!.status, 'paused');
  const again = await api<Record<string, unknown>>(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/pause`, { token: compliance.token, body: {} });
  assert.equal(again.status, 200);
  assert.equal(again.body['id'], paused.body['id'], 'the open pause, not a second one');
  const resumed = await api<Record<string, unknown>>(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/resume`, { token: compliance.token, body: {} });
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body['resumed_by'], `user:${compliance.userId}`);
  assert.equal(typeof resumed.body['duration_ms'], 'number');
  const rec = gw.store.read('default').recordings.get(recordingId)!;
  assert.equal(rec.status, 'recording');
  assert.equal(rec.pauses.length, 1);
  assert.notEqual((rec.pauses[0] as { end_ms: number | null }).end_ms, null, 'the interval is closed');
  const none = await api<{ error: { code: string } }>(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/resume`, { body: {} });
  assert.equal(none.status, 409);
  assert.equal(none.body.error.code, 'not_paused');
  const list = await api<{ pauses: unknown[] }>(gw.publicUrl, 'GET', `/v1/calls/${callId}/recording/pauses`, { token: developer.token });
  assert.equal(list.status, 200);
  assert.equal(list.body.pauses.length, 1);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/calls/call_nope/recording/pause', { body: {} })).status, 404);
  resultOf(await gw.store.submit(call_ended, { call_id: callId, reason: 'test' }, as));
  const ended = await api<{ error: { code: string } }>(gw.publicUrl, 'POST', `/v1/calls/${callId}/recording/pause`, { body: {} });
  assert.equal(ended.status, 409);
  assert.equal(ended.body.error.code, 'call_ended');
});

test('redaction policies: set with policies:write (kinds deduplicated and sorted), listed with policies:read', async () => {
  const developer = await userToken(gw.publicUrl, 'developer');
  assert.equal((await api(gw.publicUrl, 'PUT', '/v1/consent-policies/default/redaction', { token: developer.token, body: { kinds: ['card'] } })).status, 403);
  assert.equal((await api(gw.publicUrl, 'PUT', '/v1/consent-policies/default/redaction', { body: { kinds: ['Card!'] } })).status, 400);
  const set = await api<Record<string, unknown>>(gw.publicUrl, 'PUT', '/v1/consent-policies/default/redaction', { body: { kinds: ['email', 'card', 'email'] } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body, { policy_name: 'default', kinds: ['card', 'email'], agent_sees: 'redacted' });
  const list = await api<{ policies: Array<Record<string, unknown>> }>(gw.publicUrl, 'GET', '/v1/redaction-policies', { token: developer.token });
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.policies.map((p) => [p['policy_name'], p['kinds'], p['agent_sees']]), [['default', ['card', 'email'], 'redacted']]);
});
