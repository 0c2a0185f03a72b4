/**
 * One call's supervisor on the media (bridge/supervisor.ts), on a manual media clock with in-memory legs and a fake
 * recogniser (the real one is pocketsphinx in the e2e tests): joining writes the listen matrix and mixes the
 * supervisor in (it hears the caller, the caller never hears it); a whisper's words go to the agent and not the
 * caller; take-over holds the agent and the caller hears the supervisor; back to listen hands back with what was
 * said; the supervisor's media closing ends the supervision (`by: media`) and the mix; a supervision still active
 * at attach (a restart) is ended.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { ResumeInfo } from '../../../agents/types.ts';
import { supervisorJoined, supervisorModeSet } from '../../../bridge/call-facts.ts';
import type { CallContext } from '../../../bridge/call-context.ts';
import { storedMatrix } from '../../../bridge/legs-matrix.ts';
import { CallSupervision, type SupervisedAgent } from '../../../bridge/supervisor.ts';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { call_answered, call_received, tenant_created, user_created } from '../../../schema/reducers.ts';
import type { SpeechToText, SttResult, SttSession } from '../../../speech/stt.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const peak = (s: Int16Array): number => s.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const leg = { provider: 'webrtc', session: 'wsup_1', codec: 'opus', inputRate: 16000 } as const;

/** A recogniser that says `text` once it has been given 10 frames. */
function fakeStt(text: string): SpeechToText {
  return {
    name: 'fake',
    startSession(): SttSession {
      const listeners: Array<(r: SttResult) => void> = [];
      let frames = 0;
      return {
        write() {
          if (++frames === 10) for (const l of listeners) l({ text, isFinal: true, startMs: 0, endMs: 200, confidence: null, words: [] });
        },
        end: async () => undefined,
        close() {},
        on(event: string, l: (...a: never[]) => void) {
          if (event === 'result') listeners.push(l as unknown as (r: SttResult) => void);
          return () => undefined;
        },
      } as SttSession;
    },
  };
}

async function setup() {
  const store = openTestStore({ dataDir: tmpDir(), clock: () => 5_000 });
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  const admin = `user:${resultOf(await store.submit(user_created, { email: 'boss@acme.test', role: 'admin' }, T)).user_id}`;
  const callId = resultOf(await store.submit(call_received, { provider: 'sip', provider_call_id: 'c1', from: '+15550001111', to: '+15550002222' }, T)).call_id;
  resultOf(await store.submit(call_answered, { call_id: callId }, T));
  const ref = { tenant: 'acme', callId };
  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const caller = new MemoryLeg(false, true);
  const pipeline = new MediaPipeline(caller, clock, { bargeIn: false });
  // The recorder's second channel ("everyone else": what the caller heard), as the recording tap sees it.
  const recorded: Int16Array[] = [];
  pipeline.addTap({ name: 'rec', process: (f, ch) => void (ch === 'agent' && recorded.push(f.samples.slice())) });
  const ctx = { deps: { store, clock, stt: fakeStt('offer a discount') }, ref, log: pino({ level: 'silent' }), leg: caller, pipeline, closed: false, ended: false } as unknown as CallContext;
  const calls: string[] = [];
  const held: { keep: ((text: string) => void) | null; take: (() => ResumeInfo['transcript']) | null } = { keep: null, take: null };
  const agent: SupervisedAgent = {
    takeOver: (said) => void (calls.push('takeOver'), (held.keep = said)),
    handBack: (take) => void (calls.push('handBack'), (held.take = take)),
    whisper: (text) => void calls.push(`whisper:${text}`),
  };
  const sup = new MemoryLeg(false, true);
  const slot = (callerAmp: number, supAmp: number): void => {
    caller.speak(callerAmp);
    sup.speak(supAmp);
    now += 20;
    clock.tick();
  };
  const reason = () => storedMatrix(store, ref)?.reason;
  return { store, ref, admin, ctx, caller, sup, slot, calls, held, agent, reason, clock, recorded };
}

test('supervisor: listen, whisper, take over, hand back; the media closing ends it', async (t) => {
  const s = await setup();
  t.after(() => (s.clock.stop(), s.store.close()));
  const id = resultOf2(await supervisorJoined(s.store, s.ref, leg, { caller: s.admin })).supervision_id;
  const sv = new CallSupervision(s.ctx, s.agent);
  await sv.attach(id, s.sup, s.admin);
  assert.equal(s.reason(), 'supervisor:listen');
  for (let i = 0; i < 10; i++) s.slot(1000, 7000);
  assert.ok(s.sup.sentFrames.slice(-5).every((f) => peak(f) >= 900 && peak(f) <= 1100), 'the supervisor hears the caller');
  assert.ok(s.caller.sentFrames.slice(-5).every((f) => peak(f) < 100), 'nobody hears a listening supervisor');

  assert.ok((await supervisorModeSet(s.store, s.ref, id, 'whisper', { caller: s.admin })).ok);
  await sv.setMode(id, 'whisper', s.admin);
  assert.equal(s.reason(), 'supervisor:whisper');
  for (let i = 0; i < 12; i++) s.slot(0, 7000);
  assert.deepEqual(s.calls, ['whisper:offer a discount'], "the whisper's words go to the agent");
  assert.ok(s.caller.sentFrames.slice(-10).every((f) => peak(f) < 100), 'the caller hears none of the whisper');
  assert.ok(s.recorded.slice(-10).every((f) => peak(f) < 100), "the whisper is not on the recording's channel");

  await sv.setMode(id, 'takeover', s.admin);
  assert.equal(s.reason(), 'supervisor:takeover');
  assert.deepEqual(s.calls.slice(1), ['takeOver']);
  s.held.keep!('I need a refund');
  for (let i = 0; i < 10; i++) s.slot(0, 7000);
  assert.ok(s.caller.sentFrames.slice(-5).every((f) => peak(f) >= 6500), 'the caller hears the supervisor');
  assert.ok(s.recorded.slice(-5).every((f) => peak(f) >= 6500), 'taken over, the supervisor is recorded as the other party');

  await sv.setMode(id, 'listen', s.admin);
  assert.deepEqual(s.calls.slice(2), ['handBack']);
  assert.deepEqual(s.held.take!(), [{ speaker: 'caller', text: 'I need a refund' }], 'the hand-back carries what was said');

  s.sup.drop('browser closed');
  await waitFor(() => s.store.read('acme').call_supervisions.get(id)!.state === 'left');
  const row = s.store.read('acme').call_supervision_steps.find({ supervision_id: id }).at(-1)!;
  assert.deepEqual([row.step, row.by], ['leave', 'media']);
  await waitFor(() => s.reason() === 'supervisor:left');
  assert.equal(sv.current, null);
});

test('supervisor: a supervision still active at attach (a restart) is ended and the matrix is two-party again', async (t) => {
  const s = await setup();
  t.after(() => (s.clock.stop(), s.store.close()));
  const id = resultOf2(await supervisorJoined(s.store, s.ref, leg, { caller: s.admin })).supervision_id;
  const first = new CallSupervision(s.ctx, s.agent);
  await first.attach(id, s.sup, s.admin);
  assert.equal(s.reason(), 'supervisor:listen');
  // kill -9: nothing more is written by the first; the restarted session settles the rows.
  const again = new CallSupervision(s.ctx, s.agent);
  await again.settleStale();
  assert.equal(s.store.read('acme').call_supervisions.get(id)!.state, 'left');
  assert.equal(s.reason(), 'supervisor:left');
  assert.ok((await supervisorJoined(s.store, s.ref, { ...leg, session: 'wsup_2' }, { caller: s.admin })).ok, 'a supervisor may join again');
});

function resultOf2<R>(r: { ok: true; result: R } | { ok: false; code: string; message: string }): R {
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.result;
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond());
}
