/**
 * The softphone's session token on `WS /v1/subscribe`: a scoped grant that
 * reads its own call's row, consent and transcript, nothing else — another
 * call's id in the filter is overridden, other tables are refused, the API
 * does not take it, and reading the transcript leaves an access-log row.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { SessionTokens } from '../../ingress/webrtc/session-token.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { api } from '../helpers/api.ts';
import { finishedCall } from '../helpers/call-fixture.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';

type Msg = { type: string; id?: string; code?: string; rows?: Array<Record<string, unknown>> };
const open: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

test('a session token reads exactly its own call over WS /v1/subscribe, audited; the API refuses it', { timeout: 30_000 }, async () => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_WEBRTC_DEMO: 'on' } });
  open.push(() => gw.stop());
  const blobs = new FsBlobStore(gw.dataDir);
  const master = loadOrCreateMasterKey(gw.dataDir);
  const mine = await finishedCall(gw.store, blobs, { tenant: 'default', master, transcript: [{ channel: 'caller', start_ms: 0, end_ms: 900, text: 'mine' }] });
  const theirs = await finishedCall(gw.store, blobs, { tenant: 'default', master, transcript: [{ channel: 'caller', start_ms: 0, end_ms: 900, text: 'not yours' }] });
  const callId = mine.callId;
  const otherId = theirs.callId;
  assert.ok(callId && otherId && callId !== otherId);
  const token = new SessionTokens(master.key).issue({ tenant: 'default', callId, session: 'wrtc_test' });

  const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe?token=${encodeURIComponent(token)}`);
  open.push(() => ws.close());
  const inbox: Msg[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d) => {
    inbox.push(JSON.parse(d.toString()) as Msg);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const reply = async (id: string): Promise<Msg> => {
    for (;;) {
      const m = inbox.find((x) => x.id === id);
      if (m) return m;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  ws.send(JSON.stringify({ type: 'subscribe', id: 't', table: 'transcript_segments', filter: { call_id: otherId } }));
  const t = await reply('t');
  assert.equal(t.type, 'snapshot');
  assert.deepEqual(t.rows?.map((r) => r.text), ['mine'], "the filter is forced to the token's call");
  ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls' }));
  const c = await reply('c');
  assert.deepEqual(c.rows?.map((r) => r.id), [callId]);
  for (const table of ['agent_actions', 'recordings', 'access_log', 'numbers', 'users']) {
    ws.send(JSON.stringify({ type: 'subscribe', id: table, table }));
    const m = await reply(table);
    assert.equal(m.type, 'error', table);
  }
  const logged = gw.store.read('default').access_log.find({ call_id: callId, action: 'transcript_accessed' });
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.user_id, 'webrtc:wrtc_test');
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/calls', { token })).status, 401, 'not an API token');
  // A forged one is refused at the upgrade.
  const status = await new Promise<number>((resolve) => {
    const bad = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe?token=${encodeURIComponent(token.slice(0, -3) + 'xyz')}`);
    bad.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    bad.on('open', () => resolve(101));
    bad.on('error', () => undefined);
  });
  assert.equal(status, 401);
});
