/**
 * Dialling a person into a call without a hand-over (bridge/transfer-dial.ts), with a store, in-memory legs and a
 * scripted dialer: a blind transfer bridges at the answer (`blind:hold` ─► `blind:bridged`) or comes back with the
 * reason (`blind:failed:<why>`, the dial cancelled when the time runs out); a bridged human's call onward replaces
 * the human in the mixer (`refer:bridged`) or changes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { CallLegs } from '../../../bridge/legs.ts';
import { bridgedPeerOf, HumanLegs } from '../../../bridge/human-legs.ts';
import { HUMAN_LEG, WARM } from '../../../bridge/legs-matrix.ts';
import { blindBridge, referOnward } from '../../../bridge/transfer-dial.ts';
import type { TransferDialer } from '../../../bridge/transfer-warm.ts';
import * as facts from '../../../bridge/call-facts.ts';
import { call_dialed, call_received, number_added, tenant_created } from '../../../schema/reducers.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';

const log = pino({ level: 'silent' });
const NUMBER = '+15550001000';

async function setup(t: { after(fn: () => void): void }) {
  const store = openTestStore();
  t.after(() => store.close());
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default' }, T));
  const callId = resultOf(await store.submit(call_received, { provider: 'sip', provider_call_id: 'c1', from: '+15550009999', to: NUMBER }, T)).call_id;
  const clock = new MediaClock({ manual: true, now: () => 0 });
  const caller = new MemoryLeg(false, true);
  const pipeline = new MediaPipeline(caller, clock);
  const legs = new CallLegs(caller, pipeline, clock, log);
  const humans = new HumanLegs();
  const dialed: string[] = [];
  const cancelled: Array<[string, string]> = [];
  let n = 0;
  const dialer: TransferDialer & { refuse?: boolean } = {
    cancel: (id, reason) => void cancelled.push([id, reason]),
    dial: async (req) => {
      if (dialer.refuse) throw new Error('no route');
      const r = resultOf(await store.submit(call_dialed, { provider: 'sip', provider_call_id: `h${++n}`, from: req.from, to: req.to }, { tenant: req.tenant, caller: req.caller }));
      dialed.push(r.call_id);
      return { callId: r.call_id };
    },
  };
  const closing = new AbortController();
  const ref = { tenant: 'acme', callId };
  const host = { store, ref, log, who: () => ({ tenant: 'acme', caller: 'agent:test' }), legs, humans, dialer, from: NUMBER, synthesize: async () => new Int16Array(160), closed: closing.signal };
  const reasons = () => store.read('acme').call_matrices.find({ call_id: callId }).sort((a, b) => a.n - b.n).map((r) => r.reason);
  const humanDialled = async (count: number): Promise<string> => {
    while (dialed.length < count || !humans.has(dialed.at(-1)!)) await new Promise((r) => setImmediate(r));
    return dialed.at(-1)!;
  };
  return { store, host, humans, legs, dialer, reasons, humanDialled, dialed, cancelled, callId };
}

test('blind: the caller hears hold while the person is dialled, and is bridged at the answer (no hand-over)', async (t) => {
  const s = await setup(t);
  const running = blindBridge(s.host, 'sip:desk@example.test', { timeoutMs: 60_000 });
  const id = await s.humanDialled(1);
  assert.equal(s.legs.mixed, true, 'the caller is on hold');
  const person = new MemoryLeg(false, true);
  assert.equal(s.humans.claim(id, person), true);
  const out = await running;
  assert.equal(out.ok, true);
  assert.deepEqual(s.reasons(), ['blind:hold', 'blind:bridged']);
  assert.equal(bridgedPeerOf(s.store, 'acme', id), s.callId, 'a restart finds the bridge from the row');
  s.legs.close();
});

test('blind: busy, unanswered (the dial cancelled) and refused dials come back with the reason', async (t) => {
  const s = await setup(t);
  const busy = blindBridge(s.host, 'sip:desk@example.test', { timeoutMs: 60_000 });
  s.humans.ended(await s.humanDialled(1), 'sip:busy');
  const b = await busy;
  assert.deepEqual(b.ok ? 'bridged' : [b.reason, b.endReason], ['busy', 'sip:busy']);

  const late = await blindBridge(s.host, 'sip:desk@example.test', { timeoutMs: 1 });
  assert.deepEqual(late.ok ? 'bridged' : late.reason, 'no_answer');
  const unanswered = s.store.read('acme').calls.get(s.dialed.at(-1)!)!;
  assert.deepEqual([unanswered.state, unanswered.end_reason], ['ended', 'transfer:no_answer']);
  assert.deepEqual(s.cancelled, [[unanswered.id, 'transfer:no_answer']]);

  s.dialer.refuse = true;
  const refused = await blindBridge(s.host, 'sip:desk@example.test');
  assert.deepEqual(refused.ok ? 'bridged' : [refused.reason, refused.callId], ['failed', null]);
  assert.deepEqual(s.reasons(), ['blind:hold', 'blind:failed:busy', 'blind:hold', 'blind:failed:no_answer', 'blind:hold', 'blind:failed:failed']);
  assert.equal(s.legs.mixed, false, 'caller ⇄ agent again');
});

test('onward: a bridged human is replaced by the person it refers the call to; a failed call onward changes nothing', async (t) => {
  const s = await setup(t);
  // The call is bridged to a first human (as a warm transfer leaves it).
  const first = new MemoryLeg(false, true);
  const firstId = resultOf(await s.store.submit(call_dialed, { provider: 'sip', provider_call_id: 'h0', from: NUMBER, to: 'sip:human@example.test' }, { tenant: 'acme', caller: 'agent:test' })).call_id;
  s.legs.addLeg(HUMAN_LEG, first);
  s.legs.setMatrix(WARM.bridged());
  assert.equal((await facts.matrixSet(s.store, s.host.ref, WARM.bridged(), { reason: 'warm:bridged', peerCallId: firstId }, { caller: 'agent:test' })).ok, true);

  const busy = referOnward(s.host, 'sip:desk@example.test', { timeoutMs: 60_000 });
  s.humans.ended(await s.humanDialled(1), 'sip:busy');
  const b = await busy;
  assert.deepEqual(b.ok ? 'bridged' : b.reason, 'busy');
  assert.deepEqual(s.reasons(), ['warm:bridged'], 'still bridged to the first human');
  assert.equal(bridgedPeerOf(s.store, 'acme', firstId), s.callId);

  const running = referOnward(s.host, 'sip:desk@example.test', { timeoutMs: 60_000 });
  const deskId = await s.humanDialled(2);
  const desk = new MemoryLeg(false, true);
  s.humans.claim(deskId, desk);
  const out = await running;
  assert.equal(out.ok, true);
  assert.deepEqual(s.reasons(), ['warm:bridged', 'refer:bridged']);
  assert.equal(bridgedPeerOf(s.store, 'acme', deskId), s.callId, 'the desk is the bridged peer now');
  assert.equal(bridgedPeerOf(s.store, 'acme', firstId), null);
  s.legs.close();
});
