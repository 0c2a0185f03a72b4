/**
 * No exception from a timer, socket or media callback reaches the event loop:
 * an RTP session handed a target no socket takes (what a corrupt stored dialog
 * or a parser slip would give it) reports one 'fault' and closes instead of
 * throwing out of dgram.send; a server transaction whose retransmission timer
 * throws is dropped and reported, and the process carries on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMessage, buildResponse } from '../../../ingress/sip/message.ts';
import { RtpPortPool, RtpSession } from '../../../ingress/sip/rtp.ts';
import type { NegotiatedMedia } from '../../../ingress/sip/sdp.ts';
import { TransactionTable } from '../../../ingress/sip/transaction.ts';
import { validateRequest } from '../../../ingress/sip/validate.ts';

const media = (remote: { address: unknown; port: unknown }): NegotiatedMedia =>
  ({ codec: 'PCMU', payloadType: 0, eventPayloadType: null, remote, direction: 'sendrecv', held: false }) as NegotiatedMedia;

test('RTP: a target no socket takes (a bare number, port 99999) is one fault and a closed session, never an exception', async (t) => {
  const pool = new RtpPortPool(41000, 41999, '127.0.0.1');
  for (const remote of [
    { address: 127, port: 4000 },
    { address: '127.0.0.1', port: 99999 },
    { address: 'media.example.com', port: 4000 },
  ]) {
    const sockets = await pool.bind();
    const rtp = new RtpSession(sockets, media(remote), 'test@127.0.0.1');
    t.after(() => rtp.close());
    const faults: string[] = [];
    rtp.on('fault', (reason) => faults.push(reason));
    assert.doesNotThrow(() => {
      rtp.send(new Int16Array(160));
      rtp.sendSilence(160);
      rtp.send(new Int16Array(160));
    }, JSON.stringify(remote));
    assert.equal(faults.length, 1, `${JSON.stringify(remote)}: one fault, reported once`);
    assert.match(faults[0]!, /RTP out: unusable UDP target/);
    assert.equal(rtp.stats.packetsOut, 1, 'nothing more is sent after the fault');
    pool.release(sockets.port);
  }
});

test('a server transaction whose retransmission timer throws is dropped and reported; nothing reaches the event loop', async () => {
  const p = parseMessage(
    Buffer.from(
      'INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfault\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\n' +
        'To: <sip:x@127.0.0.1>\r\nCall-ID: fault@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
    ),
  );
  assert.ok(p.ok && p.message.kind === 'request');
  const v = validateRequest(p.message, 'udp');
  assert.ok(v.ok);
  const faults: string[] = [];
  const table = new TransactionTable({ T1: 10, T2: 40, T4: 50 }, (err, key) => faults.push(`${key}: ${(err as Error).message}`));
  let sends = 0;
  const tx = table.create(v.value, false, () => {
    // 100 Trying and the 486 go out; Timer G's retransmission then fails the way a closed socket would.
    if (++sends > 2) throw new Error('socket is closed');
  });
  tx.respond(buildResponse(v.value.req, 486));
  const end = Date.now() + 10_000;
  while (faults.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(faults.length, 1);
  assert.match(faults[0]!, /socket is closed/);
  assert.equal(table.get(tx.key), undefined, 'the failed transaction is forgotten');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(faults.length, 1, 'its timers are stopped');
  table.dispose();
});
