/**
 * Who answered an outbound call (schema/answered-by.ts): one row per call, the first decision stands, an `unknown`
 * is replaced once by a definite decision from the other source, a provider repeating itself changes nothing, and
 * a late contradicting decision is a rejected (logged) outcome; another tenant's call is not found.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call_answered_by, call_received, tenant_created } from '../../../schema/reducers.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';

async function setup() {
  const store = openTestStore({ clock: () => 5_000 });
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' }));
  const call = resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA1', from: '+15550001111', to: '+15550002222', direction: 'outbound' }, T)).call_id;
  return { store, call };
}

function code(r: { outcome: { ok: true } | { ok: false; error: { code: string } } }): string {
  return r.outcome.ok ? 'ok' : r.outcome.error.code;
}

test('call_answered_by: the first decision is the row; the same source repeating it changes nothing', async () => {
  const { store, call } = await setup();
  const r = resultOf(await store.submit(call_answered_by, { call_id: call, by: 'machine', source: 'provider', evidence: { AnsweredBy: 'machine_end_beep' } }, T));
  assert.deepEqual(r, { call_id: call, by: 'machine', source: 'provider', existing: false });
  const again = resultOf(await store.submit(call_answered_by, { call_id: call, by: 'machine', source: 'provider', evidence: {} }, T));
  assert.equal(again.existing, true);
  const row = store.read('acme').answered_by.get(call)!;
  assert.deepEqual({ by: row.by, source: row.source, evidence: row.evidence, decided_at: row.decided_at, replaced: row.replaced }, { by: 'machine', source: 'provider', evidence: { AnsweredBy: 'machine_end_beep' }, decided_at: 5_000, replaced: null });
  const late = await store.submit(call_answered_by, { call_id: call, by: 'human', source: 'media', evidence: {} }, T);
  assert.equal(code(late), 'already_decided');
  assert.equal(store.read('acme').answered_by.get(call)!.by, 'machine');
});

test('call_answered_by: an unknown is replaced once by a definite decision of the other source', async () => {
  const { store, call } = await setup();
  resultOf(await store.submit(call_answered_by, { call_id: call, by: 'unknown', source: 'provider', evidence: { AnsweredBy: 'unknown' } }, T));
  assert.equal(code(await store.submit(call_answered_by, { call_id: call, by: 'human', source: 'provider', evidence: {} }, T)), 'already_decided');
  resultOf(await store.submit(call_answered_by, { call_id: call, by: 'human', source: 'media', evidence: { greeting_ms: 900 } }, T));
  const row = store.read('acme').answered_by.get(call)!;
  assert.deepEqual({ by: row.by, source: row.source, replaced: row.replaced }, { by: 'human', source: 'media', replaced: { by: 'unknown', source: 'provider', decided_at: 5_000 } });
  assert.equal(code(await store.submit(call_answered_by, { call_id: call, by: 'machine', source: 'provider', evidence: {} }, T)), 'already_decided');
});

test("call_answered_by: another tenant's call is not found", async () => {
  const { store, call } = await setup();
  assert.equal(code(await store.submit(call_answered_by, { call_id: call, by: 'human', source: 'media', evidence: {} }, { tenant: 'other', caller: 'test' })), 'call_not_found');
  assert.equal(store.read('acme').answered_by.get(call), undefined);
});
