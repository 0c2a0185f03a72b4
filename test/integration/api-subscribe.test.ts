/**
 * `WS /v1/subscribe` on a real gateway: a snapshot then the deltas of live
 * calls, confined to the session's tenant; permissions per table; malformed
 * messages answered with an error while the socket keeps serving; a revoked
 * token closes the socket; an invalid token is refused at the upgrade, and a
 * socket opened without one serves nothing until its first message
 * authenticates (test/integration/api-cross-site.test.ts covers that form).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { api, userToken } from '../helpers/api.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { MAX_AWAITING_AUTH } from '../../api/subscribe.ts';
import { resultOf } from '../helpers/store.ts';
import { call_answered, call_ended, call_received } from '../../schema/reducers.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
  await ensureTenant(gw.store, 'other');
});
after(async () => {
  await gw?.stop();
});

type Msg = Record<string, unknown> & { type: string; id?: string };

/** A subscriber socket with a queue of received messages. */
async function connect(token: string | null, via: 'header' | 'query' = 'header'): Promise<{ ws: WebSocket; next: (pred?: (m: Msg) => boolean) => Promise<Msg>; closed: Promise<number> }> {
  const url = `${gw.publicUrl.replace('http', 'ws')}/v1/subscribe${via === 'query' && token ? `?token=${token}` : ''}`;
  const ws = new WebSocket(url, { headers: via === 'header' && token ? { authorization: `Bearer ${token}` } : {} });
  const queue: Msg[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d) => {
    queue.push(JSON.parse(d.toString()) as Msg);
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (pred: (m: Msg) => boolean = () => true): Promise<Msg> => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = queue.findIndex(pred);
      if (i >= 0) return queue.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no matching message; queue: ${JSON.stringify(queue).slice(0, 500)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { ws, next, closed };
}

test('a snapshot then the deltas of live calls, in commit order, only of the session\'s tenant', async () => {
  const sub = await connect(ADMIN_TOKEN);
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'live', table: 'calls', filter: { state: ['ringing', 'answered', 'active'] } }));
  const snap = await sub.next((m) => m.type === 'snapshot');
  assert.equal(snap.id, 'live');
  assert.ok(Array.isArray(snap.rows));
  const as = { tenant: 'default', caller: 'system:test' };
  const { call_id } = resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAsub1', from: '+15550100', to: '+15550200' }, as));
  resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAsub2', from: '+1', to: '+2' }, { tenant: 'other', caller: 'system:test' }));
  resultOf(await gw.store.submit(call_answered, { call_id }, as));
  resultOf(await gw.store.submit(call_ended, { call_id, reason: 'caller_hangup' }, as));
  const inserted = await sub.next((m) => m.type === 'delta');
  assert.equal(inserted.op, 'insert');
  assert.equal((inserted.new as { id: string }).id, call_id);
  assert.equal((inserted.new as Record<string, unknown>).tenant, undefined, 'the tenant column is not sent');
  const answered = await sub.next((m) => m.type === 'delta');
  assert.equal(answered.op, 'update');
  assert.equal((answered.new as { state: string }).state, 'answered');
  assert.ok((answered.seq as number) > (inserted.seq as number));
  const ended = await sub.next((m) => m.type === 'delta');
  assert.equal(ended.op, 'delete', 'leaving the filter is a delete');
  sub.ws.send(JSON.stringify({ type: 'ping' }));
  assert.equal((await sub.next()).type, 'pong', 'no delta of the other tenant\'s call ever arrived');
  sub.ws.close();
});

test('tables by permission: a developer may watch calls but not transcripts; identities are never offered; the tenant cannot be chosen', async () => {
  const dev = await userToken(gw.publicUrl, 'developer');
  const sub = await connect(dev.token, 'query');
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'a', table: 'calls' }));
  assert.equal((await sub.next()).type, 'snapshot');
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'b', table: 'transcript_segments' }));
  assert.deepEqual(await sub.next(), { type: 'error', id: 'b', code: 'forbidden', message: 'role developer may not read transcript_segments' });
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'api_tokens' }));
  assert.equal((await sub.next()).code, 'unknown_table');
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'd', table: 'calls', filter: { tenant: 'other' } }));
  assert.equal((await sub.next()).code, 'invalid_filter');
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'e', table: 'calls', filter: { colour: 'red' } }));
  assert.equal((await sub.next()).code, 'invalid_filter');
  sub.ws.send('not json');
  assert.equal((await sub.next()).code, 'invalid_message');
  sub.ws.send(JSON.stringify({ type: 'launch', id: 'x' }));
  assert.equal((await sub.next()).code, 'invalid_message');
  sub.ws.send(JSON.stringify({ type: 'ping' }));
  assert.equal((await sub.next()).type, 'pong', 'the socket keeps serving after bad messages');
  sub.ws.close();
});

test('revoking the session\'s token closes its socket (4401); an upgrade with an invalid token is refused with 401; without one, the first message must authenticate', async () => {
  const user = await userToken(gw.publicUrl, 'auditor');
  const sub = await connect(user.token);
  const tokens = await api<{ tokens: Array<{ id: string }> }>(gw.publicUrl, 'GET', '/v1/tokens', { token: user.token });
  const del = await api(gw.publicUrl, 'DELETE', `/v1/tokens/${tokens.body.tokens[0]!.id}`, { token: user.token });
  assert.equal(del.status, 200);
  assert.equal(await sub.closed, 4401);
  await assert.rejects(connect(user.token), /401/);
  const anonymous = await connect(null);
  anonymous.ws.send(JSON.stringify({ type: 'subscribe', id: 'a', table: 'calls' }));
  assert.equal(await anonymous.closed, 4401, 'a socket opened without credentials serves nothing before {type:"auth"}');
});

test('at most MAX_AWAITING_AUTH sockets wait for their first-message auth: the next is refused 503 until one authenticates; a header-authenticated socket is never refused', async () => {
  const idle = await Promise.all(Array.from({ length: MAX_AWAITING_AUTH }, () => connect(null)));
  try {
    await assert.rejects(connect(null), /503/, 'one more socket without credentials is refused while the others wait');
    const withHeader = await connect(ADMIN_TOKEN);
    withHeader.ws.send(JSON.stringify({ type: 'ping' }));
    assert.equal((await withHeader.next((m) => m.type === 'pong')).type, 'pong', 'a socket authenticated on its upgrade is served');
    withHeader.ws.close();
    // One waiting socket authenticates: a place frees up.
    idle[0]!.ws.send(JSON.stringify({ type: 'auth', token: ADMIN_TOKEN }));
    await idle[0]!.next((m) => m.type === 'authenticated');
    const late = await connect(null);
    late.ws.send(JSON.stringify({ type: 'auth', token: ADMIN_TOKEN }));
    assert.equal((await late.next((m) => m.type === 'authenticated')).type, 'authenticated');
    late.ws.close();
    // And a closed one frees its place too.
    idle[1]!.ws.close();
    await idle[1]!.closed;
    const another = await (async () => {
      for (let i = 0; i < 50; i++) {
        try {
          return await connect(null);
        } catch (err) {
          if (!/503/.test(String(err))) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error('no place freed after a waiting socket closed');
    })();
    another.ws.close();
  } finally {
    for (const s of idle) s.ws.close();
  }
});

test('/metrics is Prometheus text from prom-client: commands and commit latency histogram move with commits; calls, frames, subscribers and process metrics are there', async () => {
  const scrape = async () => (await fetch(`${gw.publicUrl}/metrics`)).text();
  const value = (text: string, name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  const before = await scrape();
  const as = { tenant: 'default', caller: 'system:test' };
  for (let i = 0; i < 5; i++) resultOf(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: `CAmetrics${i}`, from: '+1', to: '+2' }, as));
  const after = await scrape();
  assert.ok(value(after, 'switchboard_store_commands_total') >= value(before, 'switchboard_store_commands_total') + 5);
  assert.ok(value(after, 'switchboard_store_commit_seconds_count') > value(before, 'switchboard_store_commit_seconds_count'));
  assert.match(after, /^switchboard_store_commit_seconds_bucket\{le="0\.005"\} \d+$/m);
  for (const name of ['switchboard_calls_active', 'switchboard_media_frames_late_total', 'switchboard_store_subscribers', 'switchboard_store_head_seq', 'process_resident_memory_bytes']) {
    assert.ok(Number.isFinite(value(after, name)), `${name} present`);
  }
  assert.match(after, /# TYPE switchboard_store_commit_seconds histogram/);
});
