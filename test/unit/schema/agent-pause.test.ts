/**
 * Pausing an agent (schema/agent-pause.ts): the audited pause rows and their refusals (unknown agent, already
 * paused, not paused, another tenant's agent, a role that may not deploy), the per-number and tenant-default
 * fallbacks, and `fallbackFor` — which call keeps its agent and where the others go.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_FALLBACK_MESSAGE, fallbackFor, openPause } from '../../../schema/agent-pause.ts';
import { agent_paused, agent_resumed, call_received, number_added, number_fallback_set, tenant_created, user_created } from '../../../schema/reducers.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';

async function setup(now: { t: number }) {
  const store = openTestStore({ clock: () => now.t });
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' }));
  const num = resultOf(await store.submit(number_added, { number: '+15550001111', agent: 'sales' }, T)).number_id;
  resultOf(await store.submit(number_added, { number: '+15550002222', agent: 'support' }, T));
  resultOf(await store.submit(number_added, { number: '+15550003333', agent: 'theirs' }, { tenant: 'other', caller: 'test' }));
  return { store, num };
}

function code(r: { outcome: { ok: boolean } & ({ ok: true } | { ok: false; error: { code: string } }) }): string {
  return r.outcome.ok ? 'ok' : r.outcome.error.code;
}

test('agent_paused / agent_resumed: one audited row per pause (who, when, why; who resumed, when)', async () => {
  const now = { t: 1_000_000 };
  const { store } = await setup(now);
  const dev = resultOf(await store.submit(user_created, { email: 'dev@acme.test', role: 'developer' }, T)).user_id;
  const p = resultOf(await store.submit(agent_paused, { agent: 'sales', reason: 'bad prompt in v3', keep_live: true }, { tenant: 'acme', caller: `user:${dev}` }));
  assert.equal(p.agent, 'sales');
  let row = store.read('acme').agent_pauses.get(p.pause_id)!;
  assert.deepEqual(
    { reason: row.reason, keep_live: row.keep_live, paused_by: row.paused_by, paused_at: row.paused_at, resumed_at: row.resumed_at },
    { reason: 'bad prompt in v3', keep_live: true, paused_by: `user:${dev}`, paused_at: 1_000_000, resumed_at: null },
  );
  assert.equal(openPause(store.read('acme'), 'sales')?.id, p.pause_id);
  now.t += 5_000;
  const r = resultOf(await store.submit(agent_resumed, { agent: 'sales' }, { tenant: 'acme', caller: 'system:ops' }));
  assert.deepEqual(r, { pause_id: p.pause_id, agent: 'sales', paused_for_ms: 5_000 });
  row = store.read('acme').agent_pauses.get(p.pause_id)!;
  assert.equal(row.resumed_by, 'system:ops');
  assert.equal(row.resumed_at, 1_005_000);
  assert.equal(openPause(store.read('acme'), 'sales'), undefined);
  // Paused again: a second row; the first stays as it was.
  const again = resultOf(await store.submit(agent_paused, { agent: 'sales' }, T));
  assert.notEqual(again.pause_id, p.pause_id);
  assert.equal(store.read('acme').agent_pauses.find({ agent: 'sales' }).length, 2);
  store.close();
});

test('refusals: unknown agent, another tenant\'s agent, already paused, not paused, a role that may not deploy', async () => {
  const { store } = await setup({ t: 1_000_000 });
  assert.equal(code(await store.submit(agent_paused, { agent: 'nobody' }, T)), 'agent_not_found');
  assert.equal(code(await store.submit(agent_paused, { agent: 'theirs' }, T)), 'agent_not_found', 'another tenant routes it, not this one');
  assert.equal(code(await store.submit(agent_resumed, { agent: 'theirs' }, T)), 'agent_not_found');
  assert.equal(code(await store.submit(agent_resumed, { agent: 'sales' }, T)), 'not_paused');
  resultOf(await store.submit(agent_paused, { agent: 'sales' }, T));
  assert.equal(code(await store.submit(agent_paused, { agent: 'sales', reason: 'twice' }, T)), 'already_paused');
  assert.equal(openPause(store.read('other'), 'sales'), undefined, 'the pause is this tenant\'s only');
  const auditor = resultOf(await store.submit(user_created, { email: 'aud@acme.test', role: 'auditor' }, T)).user_id;
  assert.equal(code(await store.submit(agent_resumed, { agent: 'sales' }, { tenant: 'acme', caller: `user:${auditor}` })), 'forbidden');
  assert.equal(code(await store.submit(number_fallback_set, { number_id: null, kind: 'message' }, { tenant: 'acme', caller: `user:${auditor}` })), 'forbidden');
  store.close();
});

test('number_fallback_set: per number or the tenant default; a target where one is needed; the number in this tenant', async () => {
  const { store, num } = await setup({ t: 1_000_000 });
  assert.equal(code(await store.submit(number_fallback_set, { number_id: num, kind: 'transfer' }, T)), 'invalid_fallback');
  assert.equal(code(await store.submit(number_fallback_set, { number_id: num, kind: 'agent', target: 'Not A Name' }, T)), 'invalid_fallback');
  assert.equal(code(await store.submit(number_fallback_set, { number_id: num, kind: 'message' }, { tenant: 'other', caller: 'test' })), 'number_not_found');
  resultOf(await store.submit(number_fallback_set, { number_id: num, kind: 'transfer', target: '+15559990000' }, T));
  resultOf(await store.submit(number_fallback_set, { number_id: num, kind: 'agent', target: 'support' }, T));
  resultOf(await store.submit(number_fallback_set, { number_id: null, kind: 'message', message: 'We are closed.' }, T));
  const rows = store.read('acme').number_fallbacks.find({});
  assert.equal(rows.length, 2, 'set again replaces');
  assert.deepEqual(
    rows.map((r) => [r.id, r.kind, r.target, r.message]).sort(),
    [[num, 'agent', 'support', null], ['default:acme', 'message', null, 'We are closed.']].sort(),
  );
  store.close();
});

test('fallbackFor: the number\'s, else the tenant default, else the default message; keep_live keeps earlier calls', async () => {
  const now = { t: 1_000_000 };
  const { store, num } = await setup(now);
  const call = (received_at: number, number_id: string | null = num) => ({ tenant: 'acme', agent: 'sales', number_id, received_at });
  const fb = (c: ReturnType<typeof call>) => fallbackFor(store.read('acme'), c);
  assert.equal(fb(call(1)), null, 'not paused');
  now.t = 2_000_000;
  resultOf(await store.submit(agent_paused, { agent: 'sales', keep_live: true }, T));
  assert.equal(fb(call(1_500_000)), null, 'live before a keep_live pause: keeps its agent');
  assert.deepEqual(fb(call(2_500_000)), { kind: 'message', message: DEFAULT_FALLBACK_MESSAGE }, 'nothing set: the default message');
  resultOf(await store.submit(number_fallback_set, { number_id: null, kind: 'transfer', target: 'sip:desk@example.com' }, T));
  assert.deepEqual(fb(call(2_500_000)), { kind: 'transfer', target: 'sip:desk@example.com', message: DEFAULT_FALLBACK_MESSAGE }, 'the tenant default');
  resultOf(await store.submit(number_fallback_set, { number_id: num, kind: 'agent', target: 'support' }, T));
  assert.deepEqual(fb(call(2_500_000)), { kind: 'agent', agent: 'support' }, 'the number\'s own');
  assert.deepEqual(fb(call(2_500_000, null)), { kind: 'transfer', target: 'sip:desk@example.com', message: DEFAULT_FALLBACK_MESSAGE }, 'a call without a number: the default');
  resultOf(await store.submit(agent_paused, { agent: 'support' }, T));
  assert.deepEqual(fb(call(2_500_000)), { kind: 'message', message: DEFAULT_FALLBACK_MESSAGE }, 'a paused fallback agent gives way to the message');
  // A pause without keep_live: every call on the agent gets the fallback, live or new.
  resultOf(await store.submit(agent_resumed, { agent: 'sales' }, T));
  resultOf(await store.submit(agent_paused, { agent: 'sales' }, T));
  assert.notEqual(fb(call(1_500_000)), null);
  // The call row's own fields, as the bridge reads them.
  const c = resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA1', from: '+1555', to: '+15550001111', number_id: num, agent: 'sales' }, T));
  const row = store.read('acme').calls.get(c.call_id)!;
  assert.deepEqual(fallbackFor(store.read('acme'), { tenant: 'acme', agent: row.agent, number_id: row.number_id, received_at: row.received_at }), { kind: 'message', message: DEFAULT_FALLBACK_MESSAGE });
  store.close();
});
