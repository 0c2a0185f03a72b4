/**
 * The refresher's retries (refresh.ts, RFC 3261 §14.1 and RFC 4028 §7.4) against a scripted peer: a refresh answered
 * 491 is sent again after the injected delay (chosen for a Call-ID we do not own), one answered 422 is sent again
 * with the peer's Min-SE, and only a failed retry ends the call. The delay is injected: the test answers requests,
 * it never waits for a duration.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { ClientTxUser } from '../../../ingress/sip/client-transaction.ts';
import { Dialog, DialogState } from '../../../ingress/sip/dialog.ts';
import { Headers } from '../../../ingress/sip/headers.ts';
import type { SipRequest, SipResponse } from '../../../ingress/sip/message.ts';
import { retryDelayMs, SessionRefresher, weOwnCallId, type TimedCall } from '../../../ingress/sip/refresh.ts';
import type { SipUas } from '../../../ingress/sip/uas.ts';

/** A peer that hands each request the gateway sends to the test, which answers it. */
function peer() {
  const queue: Array<{ req: SipRequest; user: ClientTxUser }> = [];
  const waiting: Array<(r: { req: SipRequest; user: ClientTxUser }) => void> = [];
  const uas = {
    startClient(req: SipRequest, _dest: unknown, user: ClientTxUser) {
      const w = waiting.shift();
      if (w) w({ req, user });
      else queue.push({ req, user });
      return {};
    },
    transport: { sentBy: () => 'SIP/2.0/UDP 127.0.0.1:5060', sendRequest: () => undefined },
  } as unknown as SipUas;
  const next = (): Promise<{ req: SipRequest; user: ClientTxUser }> => {
    const q = queue.shift();
    if (q) return Promise.resolve(q);
    // The session timer's handle is unref'd: keep the loop alive until the request comes.
    const alive = setInterval(() => undefined, 1000);
    return new Promise((r) => waiting.push((x) => (clearInterval(alive), r(x))));
  };
  return { uas, next };
}

const response = (status: number, lines: Array<[string, string]> = []): SipResponse => {
  const headers = new Headers();
  for (const [k, v] of lines) headers.add(k, v);
  return { kind: 'response', status, reason: '', version: 'SIP/2.0', headers, body: Buffer.alloc(0) };
};

function call(callId: string): TimedCall {
  const dialog = new Dialog(
    {
      callId,
      localTag: 'ours',
      remoteTag: 'theirs',
      localUri: '<sip:desk@127.0.0.1>',
      remoteUri: '<sip:caller@127.0.0.1>',
      remoteTarget: 'sip:caller@127.0.0.1:5070',
      routeSet: [],
      localCseq: 10,
      remoteCseq: 1,
      transport: 'udp',
      peer: { address: '127.0.0.1', port: 5070 },
      rtpPort: 40000,
      remoteMedia: { address: '127.0.0.1', port: 40002 },
      codec: 'PCMU',
      payloadType: 0,
      eventPayloadType: null,
      sdpSession: 1,
      sdpVersion: 1,
      // A tiny interval, so the first refresh is due at once; everything after it is driven by the test.
      sessionTimer: { interval: 0.002, weRefresh: true },
      peerAllowsUpdate: true,
    },
    DialogState.Confirmed,
  );
  return { dialog, rtp: { port: 40000 }, held: false, ref: { callId: 'call-1' }, timer: null };
}

function refresher(uas: SipUas) {
  const ended: string[] = [];
  const delays: Array<{ own: boolean; ms: number }> = [];
  const r = new SessionRefresher<TimedCall>({
    uas: () => uas,
    log: pino({ level: 'silent' }),
    minSe: 2,
    localAddress: () => '127.0.0.1',
    contact: () => '<sip:switchboard@127.0.0.1:5060>',
    end: (_c, reason) => void ended.push(reason),
    detach: (p) => void p.catch(() => undefined),
    retryDelayMs: (own) => {
      const ms = own ? 3000 : 1000;
      delays.push({ own, ms });
      return ms;
    },
    wait: async () => undefined,
  });
  return { r, ended, delays };
}

const cseq = (req: SipRequest): number => Number(/^\d+/.exec(req.headers.get('cseq') ?? '')?.[0]);

test('refresh answered 491: sent again (a new CSeq) after the delay for a Call-ID we do not own; its 200 keeps the call', async () => {
  const p = peer();
  const { r, ended, delays } = refresher(p.uas);
  const c = call('abc@caller.example');
  r.start(c);
  const first = await p.next();
  assert.equal(first.req.method, 'UPDATE');
  first.user.response(response(491));
  const second = await p.next();
  assert.equal(second.req.method, 'UPDATE');
  assert.ok(cseq(second.req) > cseq(first.req));
  assert.deepEqual(delays, [{ own: false, ms: 1000 }]);
  second.user.response(response(200, [['Session-Expires', '600;refresher=uac']]));
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(ended, []);
  assert.deepEqual(c.dialog.snap.sessionTimer, { interval: 600, weRefresh: true });
  c.timer?.stop();
});

test('refresh answered 491 twice: the failed retry ends the call sip:session-expired', async () => {
  const p = peer();
  const { r, ended } = refresher(p.uas);
  const c = call('ours@switchboard');
  r.start(c);
  (await p.next()).user.response(response(491));
  (await p.next()).user.response(response(491));
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(ended, ['sip:session-expired']);
});

test('refresh answered 422 with Min-SE: sent again with Session-Expires and Min-SE raised to it', async () => {
  const p = peer();
  const { r, ended } = refresher(p.uas);
  const c = call('abc@caller.example');
  r.start(c);
  const first = await p.next();
  first.user.response(response(422, [['Min-SE', '120']]));
  const second = await p.next();
  assert.equal(second.req.headers.get('session-expires'), '120;refresher=uac');
  assert.equal(second.req.headers.get('min-se'), '120');
  second.user.response(response(200, [['Session-Expires', '120;refresher=uac']]));
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(ended, []);
  assert.equal(c.dialog.snap.sessionTimer?.interval, 120);
  c.timer?.stop();
});

test('refresh answered 481 or 408: no retry, the call ends at once', async () => {
  for (const status of [481, 408]) {
    const p = peer();
    const { r, ended, delays } = refresher(p.uas);
    r.start(call('abc@caller.example'));
    (await p.next()).user.response(response(status));
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(ended, ['sip:session-expired'], String(status));
    assert.deepEqual(delays, []);
  }
});

test('RFC 3261 §14.1 delays: 2.1–4 s when we own the Call-ID (ours end @switchboard), 0–2 s otherwise', () => {
  assert.equal(weOwnCallId('0123abcd@switchboard'), true);
  assert.equal(weOwnCallId('a84b4c76e66710@pc33.example.com'), false);
  for (let i = 0; i < 200; i++) {
    const own = retryDelayMs(true);
    const theirs = retryDelayMs(false);
    assert.ok(own >= 2100 && own <= 4000, String(own));
    assert.ok(theirs >= 0 && theirs <= 2000, String(theirs));
  }
});
