/**
 * The warm transfer's steps (bridge/transfer-warm.ts) with a store, in-memory legs and a scripted dialer standing in
 * for the adapters: each step is a call_matrices row; the human's call ending busy or unanswered, the time running
 * out (the dial still ringing is cancelled: no_answer), a refused dial and the human pressing 2 each bring the caller back (two-party, no mixer) with the reason;
 * pressing 1 bridges. The human's "call" is a real call row, so ending it is a real call_ended.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { CallLegs } from '../../../bridge/legs.ts';
import { bridgedPeerOf, HumanLegs } from '../../../bridge/human-legs.ts';
import { failureFor, warmTransfer, type TransferDialer } from '../../../bridge/transfer-warm.ts';
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
  let n = 0;
  const cancelled: Array<[string, string]> = [];
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
  /** Resolves once the transfer has dialled (the human's call id). */
  const humanDialled = async (): Promise<string> => {
    while (dialed.length === 0 || !humans.has(dialed.at(-1)!)) await new Promise((r) => setImmediate(r));
    return dialed.at(-1)!;
  };
  return { store, host, humans, legs, dialer, reasons, humanDialled, dialed, cancelled };
}

test('the human accepts with 1: hold, brief, bridged; the human hears the summary', async (t) => {
  const s = await setup(t);
  const running = warmTransfer(s.host, 'sip:human@example.test', { summary: 'refund', timeoutMs: 60_000 });
  const id = await s.humanDialled();
  assert.equal(s.legs.mixed, true, 'the caller is on hold');
  const human = new MemoryLeg(false, true);
  assert.equal(s.humans.claim(id, human), true, "the human's media goes to the transfer, not to a session");
  while (!s.reasons().includes('warm:brief')) await new Promise((r) => setImmediate(r));
  human.press('1');
  const out = await running;
  assert.equal(out.ok, true);
  assert.deepEqual(s.reasons(), ['warm:hold', 'warm:brief', 'warm:bridged']);
  assert.equal(s.store.read('acme').call_matrices.find({ call_id: s.host.ref.callId }).find((r) => r.reason === 'warm:bridged')?.peer_call_id, id);
  assert.equal(s.humans.has(id), false, 'no longer waited for');
  s.legs.close();
});

test('the human declines with 2: back to the agent, the human call ended by us', async (t) => {
  const s = await setup(t);
  const running = warmTransfer(s.host, 'sip:human@example.test', { timeoutMs: 60_000 });
  const id = await s.humanDialled();
  const human = new MemoryLeg(false, true);
  s.humans.claim(id, human);
  while (!s.reasons().includes('warm:brief')) await new Promise((r) => setImmediate(r));
  human.press('2');
  const out = await running;
  assert.deepEqual(out.ok ? 'bridged' : out.reason, 'declined');
  assert.deepEqual(s.reasons(), ['warm:hold', 'warm:brief', 'warm:failed:declined']);
  assert.equal(s.legs.mixed, false, 'two-party again: no mixer');
  assert.equal(human.closed, true);
  const row = s.store.read('acme').calls.get(id)!;
  assert.deepEqual([row.state, row.end_reason], ['ended', 'transfer:declined']);
});

test("the human's call ends before answering (busy), or the time runs out, or the dial is refused", async (t) => {
  const s = await setup(t);
  const busy = warmTransfer(s.host, 'sip:human@example.test', { timeoutMs: 60_000 });
  s.humans.ended(await s.humanDialled(), 'sip:busy');
  const b = await busy;
  assert.deepEqual(b.ok ? 'bridged' : b.reason, 'busy');

  const late = warmTransfer(s.host, 'sip:human@example.test', { timeoutMs: 1 });
  const l = await late;
  assert.deepEqual(l.ok ? 'bridged' : l.reason, 'no_answer');
  const unanswered = s.store.read('acme').calls.get(s.dialed.at(-1)!)!;
  assert.deepEqual([unanswered.state, unanswered.end_reason], ['ended', 'transfer:no_answer']);
  assert.deepEqual(s.cancelled, [[unanswered.id, 'transfer:no_answer']], 'the dial still ringing was cancelled');

  s.dialer.refuse = true;
  const refused = await warmTransfer(s.host, 'sip:human@example.test', { timeoutMs: 60_000 });
  assert.deepEqual(refused.ok ? 'bridged' : refused.reason, 'failed');
  assert.deepEqual(s.reasons(), ['warm:hold', 'warm:failed:busy', 'warm:hold', 'warm:failed:no_answer', 'warm:hold', 'warm:failed:failed']);
  assert.equal(s.legs.mixed, false);
});

test('end reasons of a human call that was never answered', () => {
  assert.equal(failureFor('sip:busy'), 'busy');
  assert.equal(failureFor('twilio:no-answer'), 'no_answer');
  assert.equal(failureFor('vonage:unanswered'), 'no_answer');
  assert.equal(failureFor('sip:timeout'), 'no_answer');
  assert.equal(failureFor('vonage:rejected'), 'declined');
  assert.equal(failureFor('sip:auth-failed'), 'failed');
});

test('after a restart: the human of a bridge in force is known by its row, parked, and handed to its caller', async (t) => {
  const s = await setup(t);
  const running = warmTransfer(s.host, 'sip:human@example.test', { timeoutMs: 60_000 });
  const id = await s.humanDialled();
  const human = new MemoryLeg(false, true);
  s.humans.claim(id, human);
  while (!s.reasons().includes('warm:brief')) await new Promise((r) => setImmediate(r));
  assert.equal(bridgedPeerOf(s.store, 'acme', id), null, 'briefing is no bridge yet');
  human.press('1');
  assert.equal((await running).ok, true);
  assert.equal(bridgedPeerOf(s.store, 'acme', id), s.host.ref.callId, 'bridged: the row names the caller');
  assert.equal(bridgedPeerOf(s.store, 'acme', s.host.ref.callId), null);
  s.legs.close();

  // The "restarted" node: the human's leg comes back first and is parked; the caller's session then claims it.
  const fresh = new HumanLegs();
  const back = new MemoryLeg(false, true);
  fresh.park(id, back);
  let got: unknown = null;
  fresh.expect(id, { leg: (l) => (got = l), ended: () => undefined });
  assert.equal(got, back);
  // One nobody claims is closed after the park time.
  const orphan = new MemoryLeg(false, true);
  fresh.park('call_other', orphan, 1);
  while (!orphan.closed) await new Promise((r) => setTimeout(r, 5));
  assert.match(orphan.closedWith?.reason ?? '', /did not come back/);
});
