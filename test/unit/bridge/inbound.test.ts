/**
 * Inbound routing, shared by every ingress: the number picks tenant and agent,
 * a provider's retry finds the same call, unknown numbers are refused and
 * logged — and a number bound to one provider refuses calls from the others.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { routeInbound, UNROUTED_TENANT } from '../../../bridge/inbound.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { number_added, tenant_created } from '../../../schema/reducers.ts';

const store = openTestStore();
after(() => store.close());

const inbound = (provider: 'twilio' | 'vonage' | 'sip' | 'webrtc', to: string, id: string) => ({ provider, providerCallId: id, from: '+15550001111', to });
const rejections = (tenant: string) =>
  [...store.events()].filter((e) => e.reducer === 'call_rejected' && e.tenant === tenant).map((e) => (e.args as { reason: string; provider: string }));

test('setup: a tenant with a Twilio-bound number and an any-provider number', async () => {
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(number_added, { number: '+15557000001', agent: 'sales', provider: 'twilio' }, T));
  resultOf(await store.submit(number_added, { number: '+15557000002', agent: 'support' }, T));
});

test('a provider-bound number answers its provider; the same provider call id again is the same call', async () => {
  const first = await routeInbound(store, inbound('twilio', '+15557000001', 'CA1'), 'test');
  assert.equal(first.kind, 'accepted');
  const again = await routeInbound(store, inbound('twilio', '+15557000001', 'CA1'), 'test');
  assert.equal(again.kind, 'accepted');
  assert.equal(first.kind === 'accepted' && again.kind === 'accepted' && first.callId === again.callId, true);
  assert.equal(store.read('acme').calls.find({ provider: 'twilio' }).length, 1);
});

test('two copies of the first webhook at once (a retry racing the original) both get the call, one row, answered once', async () => {
  const copies = await Promise.all([0, 1, 2].map(() => routeInbound(store, inbound('twilio', '+15557000001', 'CA-race'), 'test')));
  assert.deepEqual(copies.map((d) => d.kind), ['accepted', 'accepted', 'accepted']);
  const ids = new Set(copies.map((d) => (d.kind === 'accepted' ? d.callId : '')));
  assert.equal(ids.size, 1, 'the same call');
  const rows = store.read('acme').calls.find({ provider: 'twilio', provider_call_id: 'CA-race' });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.state, 'answered');
});

test('the same number reached through another ingress is refused like an unknown number, with no call row; the tenant sees the attempt', async () => {
  for (const provider of ['webrtc', 'sip', 'vonage'] as const) {
    const d = await routeInbound(store, inbound(provider, '+15557000001', `${provider}-1`), 'test');
    assert.deepEqual(d, { kind: 'rejected', reason: 'provider_mismatch' });
    assert.equal(store.read('acme').calls.find({ provider }).length, 0);
  }
  assert.deepEqual(rejections('acme').map((r) => [r.provider, r.reason]), [
    ['webrtc', 'provider_mismatch: number is twilio'],
    ['sip', 'provider_mismatch: number is twilio'],
    ['vonage', 'provider_mismatch: number is twilio'],
  ]);
});

test('a number without a provider answers every ingress; an unknown number is logged outside any tenant', async () => {
  for (const provider of ['webrtc', 'sip'] as const) assert.equal((await routeInbound(store, inbound(provider, '+15557000002', `${provider}-2`), 'test')).kind, 'accepted');
  assert.deepEqual(await routeInbound(store, inbound('sip', '+15550000404', 'x'), 'test'), { kind: 'rejected', reason: 'unknown_number' });
  assert.deepEqual(rejections(UNROUTED_TENANT).map((r) => r.reason), ['unknown_number']);
});

test('at the node limit a new call is busy (logged, no call row); a retry or resume of a call it has still comes in', async () => {
  const { CallAdmission } = await import('../../../bridge/admission.ts');
  const live = new Set<string>();
  const admission = new CallAdmission({ maxCalls: 1, maxLoopLagMs: 0, live });
  const a = await routeInbound(store, inbound('sip', '+15557000002', 'cap-a'), 'test', admission);
  assert.equal(a.kind, 'accepted');
  if (a.kind === 'accepted') live.add(a.callId); // its media connected
  const b = await routeInbound(store, inbound('sip', '+15557000002', 'cap-b'), 'test', admission);
  assert.deepEqual(b, { kind: 'busy', reason: 'over_capacity', retryAfterS: 30 });
  assert.equal(store.read('acme').calls.findOne({ provider: 'sip', provider_call_id: 'cap-b' }), undefined, 'no call row for the refused call');
  const refused = rejections('acme').filter((r) => r.provider === 'sip');
  assert.match(refused.at(-1)?.reason ?? '', /^over_capacity: 1 live calls, limit 1$/);
  const retry = await routeInbound(store, inbound('sip', '+15557000002', 'cap-a'), 'test', admission);
  assert.equal(retry.kind, 'accepted', 'the call the node already carries is never refused');
  if (a.kind === 'accepted') live.delete(a.callId); // it ended
  assert.equal((await routeInbound(store, inbound('sip', '+15557000002', 'cap-c'), 'test', admission)).kind, 'accepted');
});
