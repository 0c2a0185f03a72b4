/**
 * The supervise routes' edges (api/routes/supervise.ts), on an in-process gateway without media: 403 for every role
 * but admin (nothing written), 400 for a body without an offer, 404 for another call or supervision, 409 for an
 * ended call and for a call whose media is not on this node. The media path itself is in test/e2e/supervisor*.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call_answered, call_ended, call_received } from '../../schema/reducers.ts';
import { api, userToken } from '../helpers/api.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
let live = '';
let ended = '';
const who = { tenant: 'default', caller: 'test' };

before(async () => {
  gw = await startTestGateway();
  live = resultOf(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-sup-1', from: '+15550001111', to: '+15550002222' }, who)).call_id;
  await gw.store.submit(call_answered, { call_id: live }, who);
  ended = resultOf(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-sup-2', from: '+15550001111', to: '+15550002222' }, who)).call_id;
  await gw.store.submit(call_ended, { call_id: ended, reason: 'done' }, who);
});
after(async () => gw?.stop());

const code = (r: { body: unknown }) => (r.body as { error?: { code: string } }).error?.code;

test('supervise: only a role with `supervisor` may; a refusal writes nothing', async () => {
  const head = gw.store.head.seq;
  for (const role of ['compliance', 'auditor', 'developer']) {
    const { token } = await userToken(gw.publicUrl, role);
    const mark = gw.store.head.seq;
    const r = await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise`, { token, body: { sdp: 'v=0\r\n' } });
    assert.equal(r.status, 403, `${role}: ${JSON.stringify(r.body)}`);
    const m = await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise/sup_x/mode`, { token, body: { mode: 'takeover' } });
    assert.equal(m.status, 403, role);
    const d = await api(gw.publicUrl, 'DELETE', `/v1/calls/${live}/supervise/sup_x`, { token });
    assert.equal(d.status, 403, role);
    assert.equal(gw.store.head.seq, mark, `${role}: nothing written`);
  }
  assert.ok(gw.store.head.seq > head, 'the users and tokens were written');
  assert.equal(gw.store.read('default').call_supervisions.find({ call_id: live }).length, 0);
});

test('supervise: a bad body, an unknown call or supervision, an ended call, a call not live here', async () => {
  const mark = gw.store.head.seq;
  assert.equal((await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise`, { body: {} })).status, 400);
  assert.equal((await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise/sup_x/mode`, { body: { mode: 'shout' } })).status, 400);
  const unknown = await api(gw.publicUrl, 'POST', '/v1/calls/call_nope/supervise', { body: { sdp: 'v=0\r\n' } });
  assert.deepEqual([unknown.status, code(unknown)], [404, 'call_not_found']);
  const over = await api(gw.publicUrl, 'POST', `/v1/calls/${ended}/supervise`, { body: { sdp: 'v=0\r\n' } });
  assert.deepEqual([over.status, code(over)], [409, 'call_ended']);
  const elsewhere = await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise`, { body: { sdp: 'v=0\r\n' } });
  assert.deepEqual([elsewhere.status, code(elsewhere)], [409, 'call_not_live_here'], 'no media session for the call on this node');
  const noSup = await api(gw.publicUrl, 'POST', `/v1/calls/${live}/supervise/sup_x/mode`, { body: { mode: 'whisper' } });
  assert.deepEqual([noSup.status, code(noSup)], [404, 'supervision_not_found']);
  assert.equal((await api(gw.publicUrl, 'DELETE', `/v1/calls/${live}/supervise/sup_x`)).status, 404);
  assert.equal(gw.store.head.seq, mark, 'nothing written');
  const list = await api<{ supervisions: unknown[] }>(gw.publicUrl, 'GET', `/v1/calls/${live}/supervisions`);
  assert.deepEqual([list.status, list.body.supervisions], [200, []]);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/calls/call_nope/supervisions')).status, 404);
});
