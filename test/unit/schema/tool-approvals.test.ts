/**
 * Tool authorisation in the store: the effective requirement (declared, tightened by the tenant's policy, never
 * loosened), consent refusals, approval requests decided once, timeouts, cancellation, and tenant isolation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import {
  call_answered,
  call_ended,
  call_received,
  consent_decided,
  consent_policy_created,
  consent_started,
  tenant_created,
  tool_approval_cancelled,
  tool_approval_decided,
  tool_approval_expired,
  tool_approval_requested,
  tool_authorized,
  tool_policy_set,
  user_created,
} from '../../../schema/reducers.ts';

type S = ReturnType<typeof openTestStore>;
const code = (r: { outcome: { ok: boolean; error?: { code: string } } }) => (r.outcome.ok ? 'ok' : r.outcome.error?.code);

async function setup(t: { after(fn: () => void): void }, outcome: 'granted' | 'declined' = 'granted') {
  let now = 1_000_000;
  const store = openTestStore({ clock: () => now });
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  await store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' });
  const policy = resultOf(await store.submit(consent_policy_created, { name: 'p', mode: 'opt-in', disclosure_text: 'We record calls.' }, T));
  const { call_id } = resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA1', from: '+1', to: '+2' }, T));
  await store.submit(call_answered, { call_id }, T);
  const { consent_id } = resultOf(await store.submit(consent_started, { call_id, policy_id: policy.policy_id }, T));
  await store.submit(consent_decided, { consent_id, outcome, method: 'dtmf', evidence: { digit: outcome === 'granted' ? '1' : '2' } }, T);
  const user = async (tenant: string, role: 'admin' | 'compliance' | 'auditor' | 'developer', email: string) => {
    const u = resultOf(await store.submit(user_created, { email, role, password_hash: null }, { tenant, caller: 'test' }));
    return { tenant, caller: `user:${u.user_id}` };
  };
  const supervisor = await user('acme', 'compliance', 'sup@acme.test');
  return { store, call_id, supervisor, user, advance: (ms: number) => (now += ms) };
}

const request = (store: S, call_id: string, request_id = 'tool:1:refund:abc') =>
  store.submit(tool_approval_requested, { call_id, request_id, agent: 'concierge', tool: 'refund', args: { amount: 5 }, timeout_ms: 120_000 }, T);

test('a policy tightens a declared requirement and never loosens it', async (t) => {
  const { store, call_id, supervisor } = await setup(t);
  const auth = (tool: string, declared: 'none' | 'consent' | 'approval') => store.submit(tool_authorized, { call_id, request_id: `r-${tool}-${declared}`, tool, declared }, T);
  assert.equal(resultOf(await auth('refund', 'none')).requires, 'none');
  resultOf(await store.submit(tool_policy_set, { tool: 'refund', requires: 'approval' }, supervisor));
  assert.equal(resultOf(await auth('refund', 'none')).requires, 'approval');
  resultOf(await store.submit(tool_policy_set, { tool: 'lookup', requires: 'none' }, supervisor));
  assert.equal(resultOf(await auth('lookup', 'consent')).requires, 'consent', 'a `none` policy does not loosen a consent tool');
  assert.equal(store.read('acme').tool_policies.find().length, 2);
  assert.equal(store.read('other').tool_policies.find().length, 0, 'policies are per tenant');
});

test('a developer may not set a tool policy', async (t) => {
  const { store, user } = await setup(t);
  const dev = await user('acme', 'developer', 'dev@acme.test');
  assert.equal(code(await store.submit(tool_policy_set, { tool: 'refund', requires: 'none' }, dev)), 'forbidden');
});

test('consent and approval tools are refused without granted consent; `none` tools run', async (t) => {
  const { store, call_id } = await setup(t, 'declined');
  assert.equal(code(await store.submit(tool_authorized, { call_id, request_id: 'a', tool: 'lookup', declared: 'none' }, T)), 'ok');
  assert.equal(code(await store.submit(tool_authorized, { call_id, request_id: 'b', tool: 'crm', declared: 'consent' }, T)), 'consent_required');
  assert.equal(code(await store.submit(tool_authorized, { call_id, request_id: 'c', tool: 'refund', declared: 'approval' }, T)), 'consent_required');
});

test('approved once: a second decision (on any node) is refused, and the request id finds the same row', async (t) => {
  const { store, call_id, supervisor } = await setup(t);
  const first = resultOf(await request(store, call_id));
  assert.equal(first.status, 'pending');
  const again = resultOf(await request(store, call_id));
  assert.deepEqual([again.approval_id, again.existing], [first.approval_id, true]);
  const ok = resultOf(await store.submit(tool_approval_decided, { approval_id: first.approval_id, decision: 'approve', reason: 'verified customer' }, supervisor));
  assert.equal(ok.status, 'approved');
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id: first.approval_id, decision: 'approve', reason: null }, supervisor)), 'approval_decided');
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id: first.approval_id, decision: 'deny', reason: null }, supervisor)), 'approval_decided');
  const row = store.read('acme').tool_approvals.get(first.approval_id);
  assert.deepEqual([row?.status, row?.decided_by, row?.reason], ['approved', supervisor.caller, 'verified customer']);
  assert.equal(resultOf(await store.submit(tool_approval_expired, { approval_id: first.approval_id }, T)).status, 'approved', 'a late timer leaves it approved');
  assert.equal(resultOf(await request(store, call_id)).status, 'approved', 'a retried turn sees the decision');
});

test('denied: the row keeps who and why', async (t) => {
  const { store, call_id, supervisor } = await setup(t);
  const { approval_id } = resultOf(await request(store, call_id));
  resultOf(await store.submit(tool_approval_decided, { approval_id, decision: 'deny', reason: 'amount too high' }, supervisor));
  const row = store.read('acme').tool_approvals.get(approval_id);
  assert.deepEqual([row?.status, row?.reason, row?.decided_by], ['denied', 'amount too high', supervisor.caller]);
});

test('after the timeout: expiry is recorded, and an approval is refused', async (t) => {
  const { store, call_id, supervisor, advance } = await setup(t);
  const { approval_id } = resultOf(await request(store, call_id));
  assert.equal(code(await store.submit(tool_approval_expired, { approval_id }, T)), 'approval_pending', 'not before its time');
  advance(120_000);
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id, decision: 'approve', reason: null }, supervisor)), 'approval_expired');
  assert.equal(resultOf(await store.submit(tool_approval_expired, { approval_id }, T)).status, 'expired');
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id, decision: 'approve', reason: null }, supervisor)), 'approval_decided');
  assert.equal(store.read('acme').tool_approvals.get(approval_id)?.status, 'expired');
});

test('a call that ends while waiting cancels the request; no new request on an ended call', async (t) => {
  const { store, call_id, supervisor } = await setup(t);
  const { approval_id } = resultOf(await request(store, call_id));
  await store.submit(call_ended, { call_id, reason: 'caller hung up' }, T);
  assert.equal(resultOf(await store.submit(tool_approval_cancelled, { approval_id, reason: 'call ended' }, T)).status, 'cancelled');
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id, decision: 'approve', reason: null }, supervisor)), 'approval_decided');
  assert.equal(code(await request(store, call_id, 'tool:2:refund:def')), 'call_ended');
  assert.equal(store.read('acme').tool_approvals.get(approval_id)?.reason, 'call ended');
});

test('another tenant cannot see or decide a request; an auditor cannot decide', async (t) => {
  const { store, call_id, user } = await setup(t);
  const { approval_id } = resultOf(await request(store, call_id));
  const stranger = await user('other', 'admin', 'admin@other.test');
  assert.equal(store.read('other').tool_approvals.find().length, 0);
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id, decision: 'approve', reason: null }, stranger)), 'approval_not_found');
  const auditor = await user('acme', 'auditor', 'aud@acme.test');
  assert.equal(code(await store.submit(tool_approval_decided, { approval_id, decision: 'approve', reason: null }, auditor)), 'forbidden');
  assert.equal(store.read('acme').tool_approvals.get(approval_id)?.status, 'pending');
});
