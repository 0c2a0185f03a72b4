/**
 * The matrix as a row (schema/call-matrix.ts, written through bridge/call-facts.ts `matrixSet`): every change of who
 * hears whom is a new row numbered in log order, the same matrix again is no new row, a matrix the mixer could not
 * apply is a rejected outcome, an ended call takes none, and a reopened store (a restart) gives back the matrix in
 * force (bridge/legs-matrix.ts `storedMatrix`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { call_received, tenant_created } from '../../../schema/reducers.ts';
import { endCall, matrixSet } from '../../../bridge/call-facts.ts';
import { storedMatrix, WARM, isTwoParty } from '../../../bridge/legs-matrix.ts';
import { twoParty } from '../../../media/mix-matrix.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

async function setup(dataDir = tmpDir()) {
  const store = openTestStore({ dataDir, clock: () => 7_000 });
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  const callId = resultOf(await store.submit(call_received, { provider: 'sip', provider_call_id: 'c1', from: '+15550001111', to: '+15550002222' }, T)).call_id;
  return { store, ref: { tenant: 'acme', callId }, dataDir };
}

const src = { caller: 'agent:test' };

test('call_matrix_set: each change is a row in order; the same matrix again is not', async (t) => {
  const { store, ref } = await setup();
  t.after(() => store.close());
  assert.equal(storedMatrix(store, ref), null, 'a call without a row is two-party');
  const a = await matrixSet(store, ref, WARM.hold(), { reason: 'warm:hold' }, src);
  assert.ok(a.ok);
  assert.deepEqual({ n: a.result.n, existing: a.result.existing }, { n: 1, existing: false });
  const again = await matrixSet(store, ref, WARM.hold(), { reason: 'warm:hold' }, src);
  assert.ok(again.ok);
  assert.deepEqual({ n: again.result.n, existing: again.result.existing }, { n: 1, existing: true });
  const b = await matrixSet(store, ref, WARM.bridged(), { reason: 'warm:bridged', peerCallId: 'call_human' }, src);
  assert.ok(b.ok);
  assert.equal(b.result.n, 2);
  const rows = store.read('acme').call_matrices.find({ call_id: ref.callId });
  assert.deepEqual(rows.map((r) => [r.n, r.reason, r.peer_call_id, r.changed_by, r.changed_at]), [
    [1, 'warm:hold', null, 'agent:test', 7_000],
    [2, 'warm:bridged', 'call_human', 'agent:test', 7_000],
  ]);
  const now = storedMatrix(store, ref)!;
  assert.equal(now.reason, 'warm:bridged');
  assert.deepEqual(now.matrix.hears, { caller: ['human-1'], 'human-1': ['caller'] });
  const back = await matrixSet(store, ref, twoParty(), { reason: 'warm:failed:declined' }, src);
  assert.ok(back.ok);
  assert.ok(isTwoParty(storedMatrix(store, ref)!.matrix));
  assert.ok(!isTwoParty(WARM.hold()));
});

test('call_matrix_set: a matrix the mixer cannot apply is refused; so is a matrix for an ended call', async (t) => {
  const { store, ref } = await setup();
  t.after(() => store.close());
  const self = await matrixSet(store, ref, { legs: [{ id: 'caller', role: 'caller' }, { id: 'agent', role: 'agent' }], hears: { caller: ['caller'] } }, { reason: 'bad' }, src);
  assert.deepEqual(self.ok ? 'ok' : self.code, 'invalid_matrix');
  const stranger = await matrixSet(store, ref, { legs: [{ id: 'caller', role: 'caller' }], hears: { caller: ['human-9'] } }, { reason: 'bad' }, src);
  assert.deepEqual(stranger.ok ? 'ok' : stranger.code, 'invalid_matrix');
  const hold = await matrixSet(store, ref, { legs: [{ id: 'caller', role: 'caller' }, { id: 'hold', role: 'hold' }], hears: { hold: ['caller'] } }, { reason: 'bad' }, src);
  assert.deepEqual(hold.ok ? 'ok' : hold.code, 'invalid_matrix');
  assert.equal(store.read('acme').call_matrices.find({ call_id: ref.callId }).length, 0);
  assert.ok(await endCall(store, pino({ level: 'silent' }), ref, 'test', { caller: 'test' }));
  const late = await matrixSet(store, ref, WARM.hold(), { reason: 'warm:hold' }, src);
  assert.deepEqual(late.ok ? 'ok' : late.code, 'call_ended');
});

test('call_matrix_set: a restart (the store reopened) rebuilds the matrix in force from the row', async () => {
  const first = await setup();
  assert.ok((await matrixSet(first.store, first.ref, WARM.hold(), { reason: 'warm:hold' }, src)).ok);
  assert.ok((await matrixSet(first.store, first.ref, WARM.brief(), { reason: 'warm:brief', peerCallId: 'call_h' }, src)).ok);
  first.store.close();
  const reopened = openTestStore({ dataDir: first.dataDir });
  try {
    const now = storedMatrix(reopened, first.ref)!;
    assert.deepEqual({ n: now.n, reason: now.reason, peer: now.peerCallId }, { n: 2, reason: 'warm:brief', peer: 'call_h' });
    assert.deepEqual(now.matrix.hears, { agent: ['caller'], caller: ['hold'], 'human-1': ['agent'] });
    assert.deepEqual(now.matrix.legs.map((l) => l.id), ['agent', 'caller', 'hold', 'human-1']);
  } finally {
    reopened.close();
  }
});
