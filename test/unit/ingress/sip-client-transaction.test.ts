/**
 * Client transactions (RFC 3261 §17.1) on a virtual clock: Timer A doubles
 * from T1 while Calling, a 1xx stops it, Timer B times out after 64·T1;
 * a non-2xx final is ACKed inside the transaction (and again when it is
 * retransmitted), a 2xx and its retransmissions go to the TU; Timer E caps at
 * T2, Timer F times out, Timer K ends Completed; nothing is resent over TCP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ClientTransactionTable,
  InviteClientState,
  InviteClientTransaction,
  NonInviteClientState,
  NonInviteClientTransaction,
  type Scheduler,
} from '../../../ingress/sip/client-transaction.ts';
import { Headers } from '../../../ingress/sip/headers.ts';
import type { SipRequest, SipResponse } from '../../../ingress/sip/message.ts';
import { DEFAULT_TIMERS } from '../../../ingress/sip/transaction.ts';

/** A virtual clock: `advance(ms)` fires due timers in order. */
class VirtualClock implements Scheduler {
  now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  set(ms: number, fn: () => void): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }
}

function request(method: string, branch = 'z9hG4bKabc'): SipRequest {
  const h = new Headers();
  h.add('via', `SIP/2.0/UDP 127.0.0.1:5060;branch=${branch};rport`);
  h.add('from', '<sip:+15550001111@127.0.0.1>;tag=ours');
  h.add('to', '<sip:bob@127.0.0.1:5070>');
  h.add('call-id', 'cid-1');
  h.add('cseq', `2 ${method}`);
  h.add('route', '<sip:proxy.example;lr>');
  return { kind: 'request', method, uri: 'sip:bob@127.0.0.1:5070', version: 'SIP/2.0', badStartLine: false, headers: h, body: Buffer.alloc(0) };
}

function response(req: SipRequest, status: number): SipResponse {
  const h = req.headers.clone();
  h.delete('route');
  if (status > 100) h.set('to', `${req.headers.get('to')};tag=theirs`);
  return { kind: 'response', status, reason: 'x', version: 'SIP/2.0', headers: h, body: Buffer.alloc(0) };
}

function harness(kind: 'INVITE' | 'BYE', reliable = false) {
  const clock = new VirtualClock();
  const sent: Array<{ at: number; req: SipRequest }> = [];
  const seen: number[] = [];
  let timedOut = 0;
  let terminated = 0;
  const req = request(kind);
  const host = { timers: DEFAULT_TIMERS, reliable, scheduler: clock, send: (r: SipRequest) => void sent.push({ at: clock.now, req: r }), terminated: () => void terminated++ };
  const user = { response: (r: SipResponse) => void seen.push(r.status), timeout: () => void timedOut++ };
  const tx = kind === 'INVITE' ? new InviteClientTransaction('k', req, host, user).start() : new NonInviteClientTransaction('k', req, host, user).start();
  return { clock, sent, seen, req, tx, timedOut: () => timedOut, terminated: () => terminated };
}

test('INVITE over UDP: Timer A resends at T1, 2·T1, 4·T1 … (no T2 cap) and Timer B gives up after 64·T1', () => {
  const h = harness('INVITE');
  h.clock.advance(40_000);
  assert.deepEqual(h.sent.map((s) => s.at), [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
  assert.ok(h.sent.every((s) => s.req.method === 'INVITE'));
  assert.equal(h.timedOut(), 1);
  assert.equal(h.tx.state, InviteClientState.Terminated);
  assert.equal(h.terminated(), 1);
  assert.equal(h.clock.pending, 0, 'no timer left');
});

test('INVITE: a 1xx stops Timer A and Timer B (Proceeding waits for the final); 1xx go to the TU', () => {
  const h = harness('INVITE');
  h.clock.advance(600);
  h.tx.receive(response(h.req, 100));
  h.tx.receive(response(h.req, 180));
  assert.equal(h.tx.state, InviteClientState.Proceeding);
  h.clock.advance(60_000);
  assert.equal(h.sent.length, 2, 'the INVITE and one Timer A retransmission');
  assert.equal(h.timedOut(), 0);
  assert.deepEqual(h.seen, [100, 180]);
});

test('INVITE: a non-2xx final is ACKed inside the transaction (same branch, response To tag), once more per retransmission, then Timer D', () => {
  const h = harness('INVITE');
  h.tx.receive(response(h.req, 180));
  const busy = response(h.req, 486);
  h.tx.receive(busy);
  assert.equal(h.tx.state, InviteClientState.Completed);
  assert.deepEqual(h.seen, [180, 486]);
  const ack = h.sent[1]!.req;
  assert.equal(ack.method, 'ACK');
  assert.equal(ack.uri, h.req.uri);
  assert.equal(ack.headers.get('via'), h.req.headers.get('via'));
  assert.equal(ack.headers.get('cseq'), '2 ACK');
  assert.match(ack.headers.get('to') ?? '', /;tag=theirs$/);
  assert.equal(ack.headers.get('route'), '<sip:proxy.example;lr>');
  h.tx.receive(busy); // retransmitted by the far end: our ACK was lost
  assert.equal(h.sent.filter((s) => s.req.method === 'ACK').length, 2);
  assert.deepEqual(h.seen, [180, 486], 'the TU hears of the final response once');
  h.clock.advance(31_999);
  assert.equal(h.tx.state, InviteClientState.Completed);
  h.clock.advance(1);
  assert.equal(h.tx.state, InviteClientState.Terminated);
});

test('INVITE: a 2xx goes to the TU and so does every retransmission (the dialog re-ACKs); Timer M ends it; no ACK from the transaction', () => {
  const h = harness('INVITE');
  h.tx.receive(response(h.req, 200));
  assert.equal(h.tx.state, InviteClientState.Accepted);
  h.clock.advance(500);
  h.tx.receive(response(h.req, 200));
  h.tx.receive(response(h.req, 200));
  assert.deepEqual(h.seen, [200, 200, 200]);
  assert.equal(h.sent.length, 1, 'only the INVITE: Timer A stopped, the ACK of a 2xx is the dialog\'s');
  h.clock.advance(64 * 500 - 500);
  assert.equal(h.tx.state, InviteClientState.Terminated);
  h.tx.receive(response(h.req, 200));
  assert.equal(h.seen.length, 3, 'nothing after Terminated');
});

test('INVITE over TCP: no retransmission, Timer B still applies; a non-2xx ends at once (Timer D = 0)', () => {
  const h = harness('INVITE', true);
  h.clock.advance(10_000);
  assert.equal(h.sent.length, 1);
  h.tx.receive(response(h.req, 503));
  assert.equal(h.sent[1]?.req.method, 'ACK');
  h.clock.advance(0);
  assert.equal(h.tx.state, InviteClientState.Terminated);
  const t = harness('INVITE', true);
  t.clock.advance(32_000);
  assert.equal(t.timedOut(), 1);
});

test('BYE over UDP: Timer E doubles up to T2 then stays at T2, Timer F gives up after 64·T1', () => {
  const h = harness('BYE');
  h.clock.advance(40_000);
  const at = h.sent.map((s) => s.at);
  assert.deepEqual(at.slice(0, 7), [0, 500, 1500, 3500, 7500, 11_500, 15_500]);
  for (let i = 4; i < at.length; i++) assert.equal(at[i]! - at[i - 1]!, 4000, `interval ${i} is T2`);
  assert.ok(at[at.length - 1]! < 32_000);
  assert.equal(h.timedOut(), 1);
  assert.equal(h.tx.state, NonInviteClientState.Terminated);
});

test('BYE: a 1xx moves to Proceeding (resends every T2); the final goes to the TU once, Timer K (T4) ends Completed', () => {
  const h = harness('BYE');
  h.clock.advance(600);
  h.tx.receive(response(h.req, 100));
  assert.equal(h.tx.state, NonInviteClientState.Proceeding);
  h.clock.advance(9000);
  const after = h.sent.filter((s) => s.at > 600).map((s) => s.at);
  assert.deepEqual(after, [1500, 5500, 9500], 'the pending Timer E fires, then every T2');
  h.tx.receive(response(h.req, 200));
  h.tx.receive(response(h.req, 200));
  assert.deepEqual(h.seen, [100, 200]);
  assert.equal(h.tx.state, NonInviteClientState.Completed);
  h.clock.advance(5000);
  assert.equal(h.tx.state, NonInviteClientState.Terminated);
  assert.equal(h.timedOut(), 0);
});

test('the table matches responses by top Via branch and CSeq method, and forgets terminated transactions', () => {
  const clock = new VirtualClock();
  const table = new ClientTransactionTable(DEFAULT_TIMERS, clock);
  const got: string[] = [];
  const invite = request('INVITE', 'z9hG4bKone');
  const cancel = request('CANCEL', 'z9hG4bKone');
  table.start(invite, false, () => undefined, { response: (r) => void got.push(`INVITE ${r.status}`), timeout: () => undefined });
  table.start(cancel, false, () => undefined, { response: (r) => void got.push(`CANCEL ${r.status}`), timeout: () => undefined });
  assert.equal(table.size, 2);
  assert.equal(table.match(response(cancel, 200)), true);
  assert.equal(table.match(response(invite, 487)), true);
  assert.equal(table.match(response(request('INVITE', 'z9hG4bKother'), 200)), false);
  assert.deepEqual(got, ['CANCEL 200', 'INVITE 487']);
  clock.advance(40_000);
  assert.equal(table.size, 0);
  assert.throws(() => {
    table.start(invite, false, () => undefined, { response: () => undefined, timeout: () => undefined });
    table.start(invite, false, () => undefined, { response: () => undefined, timeout: () => undefined });
  }, /exists/);
});
