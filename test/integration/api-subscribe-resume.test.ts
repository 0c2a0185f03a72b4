/**
 * `WS /v1/subscribe` with `since` on a real gateway: a client that left resumes with the deltas of its tenant it
 * missed, then `resumed`, then live deltas; a bad `since` is answered with `invalid_since` and the socket keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { call_answered, call_received } from '../../schema/reducers.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
  await ensureTenant(gw.store, 'other');
});
after(async () => {
  await gw?.stop();
});

type Msg = Record<string, unknown> & { type: string; id?: string };

async function connect(): Promise<{ ws: WebSocket; next: (pred?: (m: Msg) => boolean) => Promise<Msg>; all: Msg[] }> {
  const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const queue: Msg[] = [];
  const all: Msg[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Msg;
    queue.push(m);
    all.push(m);
    waiters.splice(0).forEach((w) => w());
  });
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
  return { ws, next, all };
}

test('a client that left resumes with exactly the deltas of its tenant it missed, then live ones', async () => {
  const first = await connect();
  first.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls' }));
  const snap = await first.next((m) => m.type === 'snapshot');
  first.ws.close();
  const as = { tenant: 'default', caller: 'system:test' };
  const { call_id } = resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAres1', from: '+15550100', to: '+15550200' }, as));
  resultOf(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAres2', from: '+1', to: '+2' }, { tenant: 'other', caller: 'system:test' }));
  resultOf(await gw.store.submit(call_answered, { call_id }, as));

  const again = await connect();
  again.ws.send(JSON.stringify({ type: 'subscribe', id: 'c', table: 'calls', since: snap.seq }));
  const resumed = await again.next((m) => m.type === 'resumed');
  const deltas = again.all.filter((m) => m.type === 'delta');
  assert.deepEqual(deltas.map((d) => d.op), ['insert', 'update'], 'only the default tenant\'s call, inserted then answered');
  assert.ok(deltas.every((d) => (d.new as { id: string }).id === call_id));
  assert.ok(again.all.indexOf(resumed) > again.all.indexOf(deltas[1]!), 'resumed follows the replayed deltas');
  assert.equal(resumed.since, snap.seq);
  assert.equal(resumed.deltas, 2);
  assert.ok((resumed.seq as number) >= (deltas[1]!.seq as number));
  assert.equal(again.all.some((m) => m.type === 'snapshot'), false, 'no snapshot: the client keeps its rows');
  const { call_id: live } = resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAres3', from: '+1', to: '+2' }, as));
  const liveDelta = await again.next((m) => m.type === 'delta' && (m.new as { id?: string } | null)?.id === live);
  assert.ok((liveDelta.seq as number) > (resumed.seq as number));
  again.ws.close();
});

test('a bad since is answered invalid_since with the subscription id, and the socket keeps serving', async () => {
  const sub = await connect();
  const head = (await (async () => {
    sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'h', table: 'numbers' }));
    return sub.next((m) => m.type === 'snapshot');
  })()).seq as number;
  for (const [i, since] of [-1, 1.5, '3', null, head + 1000].entries()) {
    sub.ws.send(JSON.stringify({ type: 'subscribe', id: `bad${i}`, table: 'calls', since }));
    const err = await sub.next((m) => m.type === 'error' && m.id === `bad${i}`);
    assert.equal(err.code, 'invalid_since', JSON.stringify(since));
    assert.match(String(err.message), /since/);
  }
  sub.ws.send(JSON.stringify({ type: 'ping' }));
  await sub.next((m) => m.type === 'pong');
  sub.ws.send(JSON.stringify({ type: 'subscribe', id: 'ok', table: 'calls', since: head }));
  await sub.next((m) => m.type === 'resumed' && m.id === 'ok');
  sub.ws.close();
});
