/**
 * A wire string that names an Object.prototype member (`constructor`,
 * `__proto__`, `toString`, …) is an unknown name like any other, on every
 * socket the outside world opens: the Twilio and Vonage media sockets (before
 * the stream token is checked and during a live call) and the API subscription
 * socket. Each such message is refused or ignored, the socket that sent it is
 * the only one affected, and the gateway keeps serving calls.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import twilio from 'twilio';
import WebSocket from 'ws';
import type { TwilioLeg } from '../../ingress/twilio/leg.ts';
import type { VonageLeg } from '../../ingress/vonage/leg.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN, VONAGE_SECRET } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { vonageJwt, VonagePeer } from '../helpers/vonage-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const TWILIO_NUMBER = '+15553330001';
const VONAGE_NUMBER = '+15553330002';
const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable'];

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

let shared: Gw | null = null;
async function gateway(): Promise<Gw> {
  if (shared) return shared;
  const gw = await startTestGateway();
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: TWILIO_NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: p.policy_id }, who));
  resultOf(await gw.store.submit(number_added, { number: VONAGE_NUMBER, agent: 'default', provider: 'vonage', consent_policy_id: p.policy_id }, who));
  shared = gw;
  return gw;
}

async function healthy(gw: Gw): Promise<void> {
  const res = await fetch(`${gw.publicUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, 'the gateway still answers /healthz');
}

/** Opens a socket, sends `messages` in order, resolves with the close code (null if still open after `ms`). */
function converse(url: string, headers: Record<string, string>, messages: string[], ms = 8000): Promise<{ code: number | null; received: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const received: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ code: null, received });
    }, ms);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('error', () => undefined);
    ws.on('message', (d) => received.push(String(d)));
    ws.on('open', () => {
      for (const m of messages) ws.send(m);
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, received });
    });
  });
}

const poison = (field: string): string[] => PROTO_NAMES.map((name) => JSON.stringify({ [field]: name }));

test('Twilio media socket: events named after Object.prototype members are ignored before start; the stream token is still checked', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const url = `${gw.publicUrl.replace('http', 'ws')}/twilio/media`;
  const signature = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, {});
  const start = JSON.stringify({
    event: 'start', sequenceNumber: '1', streamSid: 'MZ1',
    start: { streamSid: 'MZ1', callSid: `CA${'b'.repeat(32)}`, customParameters: { token: 'forged' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
  });
  const r = await converse(url, { 'x-twilio-signature': signature }, [...poison('event'), start]);
  assert.equal(r.code, 1008, 'the socket read on past the odd events and refused the forged token');
  await healthy(gw);
});

test('Twilio live call: events named after Object.prototype members are dropped as unknown; the call goes on and a new call works', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: TWILIO_NUMBER, redirectRetryMs: 5000 });
  open.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: peer.callSid })!;
  await peer.waitFor(() => gw.calls.has(call.id), 10_000, 'media attached');
  for (const m of poison('event')) assert.ok(peer.sendRaw(m));
  const leg = gw.calls.get(call.id)!.leg as TwilioLeg;
  await peer.waitFor(() => leg.stats.dropped.unknown >= PROTO_NAMES.length, 10_000, 'every odd event counted as unknown');
  const heard = peer.receivedAudio().length;
  await peer.waitFor(() => peer.receivedAudio().length > heard + 4000, 15_000, 'the agent keeps talking on the same stream');
  assert.equal(peer.streams, 1, 'the stream was never dropped');
  await healthy(gw);
  await peer.hangup();

  const next = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: TWILIO_NUMBER, redirectRetryMs: 5000 });
  open.push(() => next.close());
  assert.equal((await next.dial()).kind, 'streaming');
  await next.waitFor(() => next.receivedAudio().length > 4000, 15_000, 'a new call is answered and hears the agent');
  await next.hangup();
});

test('Vonage media socket: events named after Object.prototype members are ignored before websocket:connected; the token is still checked', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const url = `${gw.publicUrl.replace('http', 'ws')}/vonage/media`;
  const connected = JSON.stringify({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=16000', token: 'forged' });
  const r = await converse(url, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, null)}` }, [...poison('event'), connected]);
  assert.equal(r.code, 1008, 'the socket read on past the odd events and refused the forged token');
  await healthy(gw);
});

test('Vonage live call: events named after Object.prototype members are dropped as unknown; the call goes on', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const peer = new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to: VONAGE_NUMBER, retryMs: 5000 });
  open.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = gw.store.read('default').calls.findOne({ provider: 'vonage', provider_call_id: peer.uuid })!;
  await peer.waitFor(() => gw.calls.has(call.id), 10_000, 'media attached');
  for (const m of poison('event')) assert.ok(peer.sendRaw(m));
  const leg = gw.calls.get(call.id)!.leg as VonageLeg;
  await peer.waitFor(() => leg.stats.dropped.unknown >= PROTO_NAMES.length, 10_000, 'every odd event counted as unknown');
  const heard = peer.receivedBytes;
  await peer.waitFor(() => peer.receivedBytes > heard + 16000, 15_000, 'the agent keeps talking on the same socket');
  assert.equal(peer.streams, 1, 'the socket was never dropped');
  await healthy(gw);
  await peer.hangup();
});

test('API subscription socket: a table named after an Object.prototype member is an unknown table', { timeout: 30_000 }, async () => {
  const gw = await gateway();
  const url = `${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`;
  const messages = PROTO_NAMES.map((table, i) => JSON.stringify({ type: 'subscribe', id: `s${i}`, table }));
  messages.push(JSON.stringify({ type: 'ping' }));
  const r = await new Promise<string[]>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const got: string[] = [];
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on('open', () => messages.forEach((m) => ws.send(m)));
    ws.on('message', (d) => {
      got.push(String(d));
      if (got.length === messages.length) (ws.close(), resolve(got));
    });
    ws.on('close', () => resolve(got));
  });
  const replies = r.map((s) => JSON.parse(s) as { type: string; id?: string; code?: string });
  assert.equal(replies.length, messages.length, 'one answer per message: the socket stayed open');
  for (let i = 0; i < PROTO_NAMES.length; i++) {
    const reply = replies.find((x) => x.id === `s${i}`);
    assert.deepEqual({ type: reply?.type, code: reply?.code }, { type: 'error', code: 'unknown_table' }, `table ${PROTO_NAMES[i]}`);
  }
  assert.ok(replies.some((x) => x.type === 'pong'));
  await healthy(gw);
});
