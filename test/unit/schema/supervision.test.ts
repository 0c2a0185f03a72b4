/**
 * The supervision rows (schema/supervision.ts, written through bridge/call-facts.ts) and the matrix each supervisor
 * mode produces (bridge/supervisor-matrix.ts): a join writes a supervisor leg, the supervision and a `join` step;
 * each mode change and the leave are steps of their own; a user without `supervisor` is refused and nothing is
 * written; one supervisor at a time; the media may end a supervision; the whisper is never on the caller's channel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call_answered, call_received, tenant_created, user_created } from '../../../schema/reducers.ts';
import pino from 'pino';
import { endCall, supervisorJoined, supervisorLeft, supervisorModeSet } from '../../../bridge/call-facts.ts';
import { supervisedMatrix, unsupervisedMatrix, SUPERVISOR_LEG } from '../../../bridge/supervisor-matrix.ts';
import { isTwoParty } from '../../../bridge/legs-matrix.ts';
import { matrixProblem, recordingTracks } from '../../../media/mix-matrix.ts';
import { Mixer } from '../../../media/mixer.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const leg = { provider: 'webrtc', session: 'wsup_1', codec: 'opus', inputRate: 16000 } as const;

async function setup() {
  const store = openTestStore({ dataDir: tmpDir(), clock: () => 9_000 });
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  const admin = resultOf(await store.submit(user_created, { email: 'boss@acme.test', role: 'admin' }, T)).user_id;
  const auditor = resultOf(await store.submit(user_created, { email: 'aud@acme.test', role: 'auditor' }, T)).user_id;
  const compliance = resultOf(await store.submit(user_created, { email: 'comp@acme.test', role: 'compliance' }, T)).user_id;
  const callId = resultOf(await store.submit(call_received, { provider: 'sip', provider_call_id: 'c1', from: '+15550001111', to: '+15550002222' }, T)).call_id;
  resultOf(await store.submit(call_answered, { call_id: callId }, T));
  return { store, ref: { tenant: 'acme', callId }, admin: `user:${admin}`, auditor: `user:${auditor}`, compliance: `user:${compliance}` };
}

test('supervision: join, mode changes and leave are each a row; the leg row is kind supervisor', async (t) => {
  const { store, ref, admin } = await setup();
  t.after(() => store.close());
  const j = await supervisorJoined(store, ref, leg, { caller: admin });
  assert.ok(j.ok, JSON.stringify(j));
  const { supervision_id: sid, leg_id: legId } = j.result;
  assert.equal(j.result.mode, 'listen');
  const legRow = store.read('acme').legs.get(legId)!;
  assert.deepEqual([legRow.kind, legRow.provider, legRow.state, legRow.media_session], ['supervisor', 'webrtc', 'connected', 'wsup_1']);
  const w = await supervisorModeSet(store, ref, sid, 'whisper', { caller: admin });
  assert.ok(w.ok && w.result.changed);
  const same = await supervisorModeSet(store, ref, sid, 'whisper', { caller: admin });
  assert.ok(same.ok && !same.result.changed, 'the same mode again is no step');
  assert.ok((await supervisorModeSet(store, ref, sid, 'takeover', { caller: admin })).ok);
  assert.ok((await supervisorModeSet(store, ref, sid, 'listen', { caller: admin })).ok);
  const left = await supervisorLeft(store, ref, sid, 'the supervisor left', { caller: admin });
  assert.ok(left.ok);
  const again = await supervisorLeft(store, ref, sid, 'again', { caller: 'media' });
  assert.deepEqual(again.ok ? 'ok' : again.code, 'supervision_ended');
  const after = await supervisorModeSet(store, ref, sid, 'whisper', { caller: admin });
  assert.deepEqual(after.ok ? 'ok' : after.code, 'supervision_ended');
  const read = store.read('acme');
  const row = read.call_supervisions.get(sid)!;
  assert.deepEqual([row.state, row.mode, row.supervisor, row.left_reason], ['left', 'listen', admin, 'the supervisor left']);
  assert.equal(read.legs.get(legId)!.state, 'disconnected');
  const steps = read.call_supervision_steps.find({ supervision_id: sid }).map((s) => [s.step, s.mode, s.by]);
  assert.deepEqual(steps, [
    ['join', 'listen', admin],
    ['mode', 'whisper', admin],
    ['mode', 'takeover', admin],
    ['mode', 'listen', admin],
    ['leave', 'listen', admin],
  ]);
  // Every command names the call: each is among the call's events (and so in its proof).
  const named = [...store.events()].filter((e) => e.reducer.startsWith('call_supervisor_') && (e.args as { call_id?: string }).call_id === ref.callId);
  assert.equal(named.length, 8, named.map((e) => e.reducer).join(' '));
  const elsewhere = await supervisorModeSet(store, { tenant: 'acme', callId: 'call_other' }, sid, 'whisper', { caller: admin });
  assert.deepEqual(elsewhere.ok ? 'ok' : elsewhere.code, 'supervision_not_found', "another call's id does not reach this supervision");
});

test('supervision: a role without `supervisor` is refused and nothing is written', async (t) => {
  const { store, ref, auditor, compliance, admin } = await setup();
  t.after(() => store.close());
  for (const who of [auditor, compliance]) {
    const r = await supervisorJoined(store, ref, leg, { caller: who });
    assert.deepEqual(r.ok ? 'ok' : r.code, 'forbidden');
  }
  const read = store.read('acme');
  assert.equal(read.call_supervisions.find({ call_id: ref.callId }).length, 0);
  assert.equal(read.call_supervision_steps.find({ call_id: ref.callId }).length, 0);
  assert.equal(read.legs.find({ call_id: ref.callId, kind: 'supervisor' }).length, 0);
  const sid = resultOf2(await supervisorJoined(store, ref, leg, { caller: admin })).supervision_id;
  const m = await supervisorModeSet(store, ref, sid, 'takeover', { caller: auditor });
  assert.deepEqual(m.ok ? 'ok' : m.code, 'forbidden');
  assert.equal(store.read('acme').call_supervisions.get(sid)!.mode, 'listen');
});

test('supervision: one supervisor at a time; the media may end it; an ended call takes none', async (t) => {
  const { store, ref, admin } = await setup();
  t.after(() => store.close());
  const sid = resultOf2(await supervisorJoined(store, ref, leg, { caller: admin })).supervision_id;
  const second = await supervisorJoined(store, ref, leg, { caller: admin });
  assert.deepEqual(second.ok ? 'ok' : second.code, 'supervisor_busy');
  const byMedia = await supervisorLeft(store, ref, sid, 'supervisor media closed', { caller: 'media' });
  assert.ok(byMedia.ok);
  assert.equal(store.read('acme').call_supervision_steps.find({ supervision_id: sid }).at(-1)!.by, 'media');
  assert.ok((await supervisorJoined(store, ref, leg, { caller: admin })).ok, 'a new supervisor may join once the last left');
  const ghost = await supervisorJoined(store, { tenant: 'acme', callId: 'call_nope' }, leg, { caller: admin });
  assert.deepEqual(ghost.ok ? 'ok' : ghost.code, 'call_not_found');
  assert.ok(await endCall(store, pino({ level: 'silent' }), ref, 'done', { caller: 'test' }));
  const late = await supervisorJoined(store, ref, leg, { caller: admin });
  assert.deepEqual(late.ok ? 'ok' : late.code, 'call_ended');
  assert.equal(store.read('acme').legs.find({ call_id: ref.callId, kind: 'supervisor', state: 'connected' }).length, 0, 'the call end disconnects the supervisor leg');
});

function resultOf2<R>(r: { ok: true; result: R } | { ok: false; code: string; message: string }): R {
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.result;
}

test('supervisor matrices: listen, whisper and take over (who hears whom, and what the recording keeps)', () => {
  for (const mode of ['listen', 'whisper', 'takeover'] as const) assert.equal(matrixProblem(supervisedMatrix(mode)), null, mode);
  const listen = supervisedMatrix('listen');
  assert.deepEqual(listen.hears, { caller: ['agent'], agent: ['caller'], [SUPERVISOR_LEG]: ['caller', 'agent'] });
  assert.ok(!Object.values(listen.hears).some((s) => s.includes(SUPERVISOR_LEG)), 'nobody hears a listening supervisor');
  const whisper = supervisedMatrix('whisper');
  assert.deepEqual(whisper.hears.caller, ['agent'], 'the caller never hears a whisper');
  assert.ok(whisper.hears.agent!.includes(SUPERVISOR_LEG), 'the agent hears the whisper');
  const tracks = recordingTracks(whisper);
  assert.deepEqual(tracks.heardByCaller, ['agent'], "the whisper is not on the caller's channel");
  assert.deepEqual(tracks.aside, [SUPERVISOR_LEG], 'the whisper is kept on a track of its own');
  const take = supervisedMatrix('takeover');
  assert.deepEqual(take.hears.caller, [SUPERVISOR_LEG]);
  assert.deepEqual(take.hears[SUPERVISOR_LEG], ['caller']);
  assert.deepEqual(recordingTracks(take).heardByCaller, [SUPERVISOR_LEG], "in take-over the supervisor is the caller's other party");
  assert.ok(isTwoParty(unsupervisedMatrix()));
});

test('supervisor matrices through the mixer: a whisper never reaches the caller; take-over swaps the agent out', () => {
  const tone = (v: number) => new Int16Array(320).fill(v);
  const mixer = new Mixer(16000, supervisedMatrix('whisper'));
  const slot = () => {
    mixer.put('caller', tone(100));
    mixer.put('agent', tone(20));
    mixer.put(SUPERVISOR_LEG, tone(3));
    mixer.mix();
    return { caller: mixer.out('caller')[0], agent: mixer.out('agent')[0], sup: mixer.out(SUPERVISOR_LEG)[0] };
  };
  assert.deepEqual(slot(), { caller: 20, agent: 103, sup: 120 });
  mixer.setMatrix(supervisedMatrix('listen'));
  assert.deepEqual(slot(), { caller: 20, agent: 100, sup: 120 });
  mixer.setMatrix(supervisedMatrix('takeover'));
  assert.deepEqual(slot(), { caller: 3, agent: 103, sup: 100 });
});
