/**
 * The tool gate against a real store: what each requirement lets through, the typed refusal the agent gets
 * otherwise, and how a wait ends (decision, media closing) — and that a retried call finds the same request.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { isToolRefusal, type ToolRefusal } from '../../../agents/sdk.ts';
import { authorizeTool, type ToolCall, type ToolGateHost } from '../../../bridge/tool-gate.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { call_answered, call_received, consent_decided, consent_policy_created, consent_started, tenant_created, tool_approval_decided, tool_approval_requested, tool_policy_set } from '../../../schema/reducers.ts';
import { endCall } from '../../../bridge/call-facts.ts';

async function setup(t: { after(fn: () => void): void }, outcome: 'granted' | 'declined') {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const policy = resultOf(await store.submit(consent_policy_created, { name: 'p', mode: 'opt-in', disclosure_text: 'We record calls.' }, T));
  const { call_id } = resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA1', from: '+1', to: '+2' }, T));
  await store.submit(call_answered, { call_id }, T);
  const { consent_id } = resultOf(await store.submit(consent_started, { call_id, policy_id: policy.policy_id }, T));
  await store.submit(consent_decided, { consent_id, outcome, method: 'dtmf', evidence: { digit: '1' } }, T);
  const fillers: string[] = [];
  const closing = new AbortController();
  const host: ToolGateHost = {
    store,
    callId: call_id,
    log: pino({ level: 'silent' }),
    who: () => ({ tenant: 'acme', caller: 'agent:test' }),
    approval: { timeoutMs: 60_000, filler: 'Hold on.' },
    closed: closing.signal,
    filler: (text) => void fillers.push(text),
  };
  return { store, call_id, host, fillers, closing };
}

const call = (declared: ToolCall['declared'], requestId = 'tool:1:refund:x'): ToolCall => ({ agent: 'a', name: 'refund', args: { amount: 1 }, requestId, declared });

async function refusal(p: Promise<void>): Promise<ToolRefusal | 'ran'> {
  try {
    await p;
    return 'ran';
  } catch (err) {
    assert.ok(isToolRefusal(err), `a typed refusal, not ${String(err)}`);
    return err.refusal;
  }
}

test('without granted consent: none runs, consent and approval are refused (consent), a policy tightens none', async (t) => {
  const { store, host } = await setup(t, 'declined');
  assert.equal(await refusal(authorizeTool(host, call('none'))), 'ran');
  assert.equal(await refusal(authorizeTool(host, call('consent'))), 'consent');
  assert.equal(await refusal(authorizeTool(host, call('approval'))), 'consent');
  await store.submit(tool_policy_set, { tool: 'refund', requires: 'consent' }, T);
  assert.equal(await refusal(authorizeTool(host, call('none'))), 'consent');
});

test('approval: waits with a filler until approved; the same request id again finds the decision', async (t) => {
  const { store, host, fillers } = await setup(t, 'granted');
  const waiting = authorizeTool(host, call('approval'));
  let settled = false;
  void waiting.finally(() => (settled = true)).catch(() => undefined);
  const row = await new Promise<{ id: string }>((resolve) => {
    const sub = store.subscribe('tool_approvals', {}, 'acme', (d) => d.new && (sub.unsubscribe(), resolve(d.new as { id: string })));
  });
  assert.equal(settled, false, 'still waiting');
  resultOf(await store.submit(tool_approval_decided, { approval_id: row.id, decision: 'approve', reason: null }, T));
  assert.equal(await refusal(waiting), 'ran');
  assert.deepEqual(fillers, ['Hold on.']);
  assert.equal(await refusal(authorizeTool(host, call('approval'))), 'ran', 'a retried turn does not ask again');
  assert.equal(fillers.length, 1);
  assert.equal(store.read('acme').tool_approvals.find().length, 1);
});

test('approval: denied carries the reason; closing the media cancels a waiting request', async (t) => {
  const { store, host, closing } = await setup(t, 'granted');
  const denied = authorizeTool(host, call('approval', 'r-deny'));
  const first = await new Promise<{ id: string }>((resolve) => {
    const sub = store.subscribe('tool_approvals', {}, 'acme', (d) => d.new && (sub.unsubscribe(), resolve(d.new as { id: string })));
  });
  await store.submit(tool_approval_decided, { approval_id: first.id, decision: 'deny', reason: 'no' }, T);
  await assert.rejects(denied, (err: unknown) => isToolRefusal(err) && err.refusal === 'denied' && err.reason === 'no');
  const cancelled = authorizeTool(host, call('approval', 'r-cancel'));
  await new Promise<void>((resolve) => {
    const sub = store.subscribe('tool_approvals', { status: 'pending' }, 'acme', (d) => d.new && (sub.unsubscribe(), resolve()));
  });
  closing.abort();
  assert.equal(await refusal(cancelled), 'cancelled');
  assert.equal(store.read('acme').tool_approvals.findOne({ request_id: 'r-cancel' })?.status, 'cancelled');
});

test('ending the call cancels requests nobody waits on any more (e.g. after a restart)', async (t) => {
  const { store, call_id } = await setup(t, 'granted');
  const who = { tenant: 'acme', caller: 'agent:test' };
  const { approval_id } = resultOf(await store.submit(tool_approval_requested, { call_id, request_id: 'orphan', agent: 'a', tool: 'refund', args: null, timeout_ms: 60_000 }, who));
  assert.equal(await endCall(store, pino({ level: 'silent' }), { tenant: 'acme', callId: call_id }, 'caller hung up', { caller: 'test' }), true);
  const row = store.read('acme').tool_approvals.get(approval_id);
  assert.deepEqual([row?.status, row?.reason], ['cancelled', 'the call ended while waiting']);
});
