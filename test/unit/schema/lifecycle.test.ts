import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CALL_STATES, type CallState } from '../../../schema/tables.ts';
import { TRANSITIONS } from '../../../schema/index.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { call_ended, consent_policy_created, call_media_connected, call_media_lost, call_received, number_added, tenant_created } from '../../../schema/reducers.ts';

type S = ReturnType<typeof openTestStore>;

async function newCall(store: S, sid: string): Promise<string> {
  const r = await store.submit(call_received, { provider: 'twilio', provider_call_id: sid, from: '+15550001111', to: '+15551234567' }, T);
  assert.ok(r.outcome.ok, JSON.stringify(r.outcome));
  return (r.outcome.result as { call_id: string }).call_id;
}

/** The tenant's consent policy (made on first use): `consent_started` is what moves a call to `consenting`. */
async function policyOf(store: S): Promise<string> {
  const existing = store.read('acme').consent_policies.findOne({ name: 'lifecycle' });
  if (existing) return existing.id;
  return resultOf(await store.submit(consent_policy_created, { name: 'lifecycle', mode: 'notify', disclosure_text: 'Recorded.' }, T)).policy_id;
}

/**
 * Drives a new call into `state` along legal transitions. `call_activated` is retired (older logs only) but still
 * the one reducer that moves `answered` straight to `active`, so it is submitted here by its logged name.
 */
async function callIn(store: S, state: CallState, sid: string): Promise<string> {
  const id = await newCall(store, sid);
  const policy_id = await policyOf(store);
  const path: Record<CallState, string[]> = {
    ringing: [],
    answered: ['call_answered'],
    consenting: ['call_answered', 'consent_started'],
    active: ['call_answered', 'call_activated'],
    held: ['call_answered', 'call_activated', 'call_held'],
    transferring: ['call_answered', 'call_activated', 'call_transfer_started'],
    resuming: ['call_answered', 'call_activated', 'media', 'lost'],
    ended: ['call_ended'],
  };
  let legId = '';
  for (const step of path[state]) {
    let r;
    if (step === 'media') {
      r = await store.submit(call_media_connected, { call_id: id, provider: 'twilio', media_session: 'MZ1' }, T);
      legId = resultOf<{ leg_id: string }>(r).leg_id;
    } else if (step === 'lost') r = await store.submit(call_media_lost, { call_id: id, leg_id: legId, reason: 'socket closed' }, T);
    else r = await store.submitNamed(step, { call_id: id, policy_id, reason: 'x', target: 'sip:human@example.com' }, T);
    assert.ok(r.outcome.ok, `${step}: ${JSON.stringify(r.outcome)}`);
  }
  assert.equal(store.read('acme').calls.get(id)?.state, state);
  return id;
}

/** The reducer that attempts `to` (for `resuming`, losing the media leg). */
const REDUCER_FOR: Partial<Record<CallState, string>> = {
  answered: 'call_answered',
  consenting: 'consent_started',
  active: 'call_activated',
  held: 'call_held',
  transferring: 'call_transfer_started',
  ended: 'call_ended',
};

test('every (from, to) pair: legal transitions commit, illegal ones are rejected as illegal_transition', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  let n = 0;
  for (const from of CALL_STATES) {
    for (const to of CALL_STATES) {
      const reducer = REDUCER_FOR[to];
      if (!reducer) continue;
      const id = await callIn(store, from, `CA-${n++}`);
      const before = store.read('acme').calls.get(id);
      const r = await store.submitNamed(reducer, { call_id: id, policy_id: await policyOf(store), reason: 'test', target: 'sip:x@y' }, T);
      const legal = TRANSITIONS[from].includes(to) && (from !== 'resuming' || to === 'ended' || to === before?.resume_state);
      const after = store.read('acme').calls.get(id);
      if (legal) {
        assert.ok(r.outcome.ok, `${from} → ${to} should commit: ${JSON.stringify(r.outcome)}`);
        assert.equal(after?.state, to);
      } else {
        assert.equal(r.outcome.ok, false, `${from} → ${to} should be rejected`);
        const code = !r.outcome.ok ? r.outcome.error.code : '';
        assert.ok(code === 'illegal_transition' || (from === 'ended' && code === 'call_already_ended'), `${from} → ${to}: ${code}`);
        assert.deepEqual(after, before, 'a rejected transition changes nothing');
      }
    }
  }
  assert.ok(store.replay().ok);
});

test('a webhook retry of call_received returns the same call, never a second row', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const a = await newCall(store, 'CA-dup');
  const b = await newCall(store, 'CA-dup');
  assert.equal(a, b);
  assert.equal(store.read('acme').calls.find().length, 1);
});

test('media lost → resuming; a new media connection resumes into the state it left, and counts the epoch', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const id = await callIn(store, 'held', 'CA-r');
  const c1 = await store.submit(call_media_connected, { call_id: id, provider: 'twilio', media_session: 'MZ1' }, T);
  const leg1 = resultOf<{ leg_id: string }>(c1).leg_id;
  const lost = await store.submit(call_media_lost, { call_id: id, leg_id: leg1, reason: 'ws closed without stop' }, T);
  assert.deepEqual(lost.outcome, { ok: true, result: { state: 'resuming' } });
  const call = store.read('acme').calls.get(id);
  assert.equal(call?.state, 'resuming');
  assert.equal(call?.resume_state, 'held');
  const c2 = await store.submit(call_media_connected, { call_id: id, provider: 'twilio', media_session: 'MZ2' }, T);
  assert.equal(resultOf<{ resumed: boolean }>(c2).resumed, true);
  const after = store.read('acme').calls.get(id);
  assert.equal(after?.state, 'held');
  assert.equal(after?.resume_state, null);
  assert.equal(after?.media_epoch, 2);
  assert.deepEqual(store.read('acme').legs.find({ call_id: id }).map((l) => l.state).sort(), ['connected', 'disconnected']);
  // Ending disconnects the live leg and stamps the reason.
  await store.submit(call_ended, { call_id: id, reason: 'caller hung up' }, T);
  const ended = store.read('acme').calls.get(id);
  assert.equal(ended?.end_reason, 'caller hung up');
  assert.ok(ended?.ended_at);
  assert.deepEqual(store.read('acme').legs.find({ call_id: id, state: 'connected' }), []);
});

test('another tenant cannot move or even see a call', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const id = await newCall(store, 'CA-t');
  const r = await store.submit(call_ended, { call_id: id, reason: 'x' }, { tenant: 'evil', caller: 'mallory' });
  assert.equal(!r.outcome.ok && r.outcome.error.code, 'call_not_found');
  assert.equal(store.read('acme').calls.get(id)?.state, 'ringing');
});

test('numbers: one route per number, tenant must exist, clear refusal for a malformed number', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  const none = await store.submit(number_added, { number: '+15551234567', agent: 'default' }, T);
  assert.equal(!none.outcome.ok && none.outcome.error.code, 'tenant_not_found');
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const ok = await store.submit(number_added, { number: '+15551234567', agent: 'default' }, T);
  assert.ok(ok.outcome.ok);
  const again = await store.submit(number_added, { number: '+15551234567', agent: 'other' }, T);
  assert.equal(!again.outcome.ok && again.outcome.error.code, 'number_exists');
  await assert.rejects(store.submit(number_added, { number: '555 1234', agent: 'default' }, T), /E\.164/);
});
