import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ConsentCancelled, promptFor, runConsentStage, type ConsentAnswer, type ConsentStageIo } from '../../../consent/stage.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { call_answered, call_received, consent_policy_created, tenant_created } from '../../../schema/reducers.ts';

/** Scripted caller: answers at a given prompt (0-based), during or after it, or never. */
function io(script: { at?: number; answer?: ConsentAnswer; during?: boolean; hangUpAt?: number }) {
  let gone = false;
  const prompts: string[] = [];
  let listener: ((a: ConsentAnswer) => void) | null = null;
  let interrupted = 0;
  const slept: number[] = [];
  const impl: ConsentStageIo = {
    async say(text) {
      prompts.push(text);
      if (script.answer && script.at === prompts.length - 1 && script.during) listener?.(script.answer);
      return { heardMs: 1000, interrupted: false };
    },
    interrupt: () => void interrupted++,
    onAnswer(l) {
      listener = l;
      return () => (listener = null);
    },
    async sleep(ms) {
      slept.push(ms);
      if (script.answer && script.at === prompts.length - 1 && !script.during) listener?.(script.answer);
      if (script.hangUpAt === prompts.length - 1) gone = true;
    },
    cancelled: () => gone,
  };
  return { impl, prompts, slept, interrupted: () => interrupted };
}

async function setup(t: TestContext, mode: 'opt-in' | 'opt-out' | 'notify', retries = 1) {
  const store = openTestStore();
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const { policy_id } = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'p', mode, disclosure_text: 'We record calls.', retries, timeout_ms: 4000 }, T));
  const { call_id } = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'sip', provider_call_id: 'x1', from: 'a', to: 'b' }, T));
  await store.submit(call_answered, { call_id }, T);
  const policy = store.read('acme').consent_policies.get(policy_id)!;
  return { store, policy, call_id };
}

test('opt-in: DTMF 1 during the prompt grants, cuts the prompt short, and keeps the digit as evidence', async (t) => {
  const { store, policy, call_id } = await setup(t, 'opt-in');
  const s = io({ at: 0, during: true, answer: { answer: 'yes', method: 'dtmf', evidence: { digit: '1', at_ms: 2100 } } });
  const d = await runConsentStage({ store, tenant: 'acme', callId: call_id, policy, pendingConsentId: null, io: s.impl });
  assert.equal(d.outcome, 'granted');
  assert.equal(d.method, 'dtmf');
  assert.equal(s.interrupted(), 1);
  assert.equal(s.prompts[0], promptFor(policy));
  assert.match(s.prompts[0]!, /press 1 or say yes/);
  const row = store.read('acme').consents.get(d.consentId);
  assert.deepEqual([row?.outcome, row?.method, row?.evidence], ['granted', 'dtmf', { digit: '1', at_ms: 2100 }]);
  assert.equal(store.read('acme').calls.get(call_id)?.state, 'active');
});

test('opt-in: a spoken no after the retry prompt declines', async (t) => {
  const { store, policy, call_id } = await setup(t, 'opt-in', 2);
  const s = io({ at: 1, answer: { answer: 'no', method: 'speech', evidence: { words: 'no i do not agree', at_ms: 15000 } } });
  const d = await runConsentStage({ store, tenant: 'acme', callId: call_id, policy, pendingConsentId: null, io: s.impl });
  assert.deepEqual([d.outcome, d.method], ['declined', 'speech']);
  assert.equal(s.prompts.length, 2);
  assert.match(s.prompts[1]!, /^Sorry, I did not get that/);
});

test('opt-in silence: every attempt times out → no_response; opt-out silence → granted (implied); notify → granted after the disclosure', async (t) => {
  for (const [mode, outcome] of [['opt-in', 'no_response'], ['opt-out', 'granted'], ['notify', 'granted']] as const) {
    const { store, policy, call_id } = await setup(t, mode, 1);
    const s = io({});
    const d = await runConsentStage({ store, tenant: 'acme', callId: call_id, policy, pendingConsentId: null, io: s.impl });
    assert.equal(d.outcome, outcome, mode);
    assert.equal(d.method, 'implied');
    assert.deepEqual(s.slept, mode === 'notify' ? [] : [4000, 4000], `${mode}: waits timeout_ms after each of 1 + retries prompts`);
    store.close();
  }
});

test('the caller hangs up while the stage waits: nothing is decided, the consent stays pending (a resume continues it)', async (t) => {
  const { store, policy, call_id } = await setup(t, 'opt-in', 1);
  const s = io({ hangUpAt: 0 });
  await assert.rejects(runConsentStage({ store, tenant: 'acme', callId: call_id, policy, pendingConsentId: null, io: s.impl }), ConsentCancelled);
  const consent = store.read('acme').consents.find({ call_id })[0];
  assert.equal(consent?.outcome, 'pending');
});
