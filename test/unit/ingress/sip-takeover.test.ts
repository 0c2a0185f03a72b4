/**
 * The pure parts of the SIP takeover (ingress/sip/takeover.ts): the CSeq of the new node's first request in a
 * dialog another node ran (above anything the dead node can have sent since its last stored snapshot), and where
 * the re-INVITE goes (the proxy of the route set, else the remote target; over TCP/TLS never the dead node's
 * connection's source port).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DialogSnapshot } from '../../../ingress/sip/dialog.ts';
import { routeDestination, takeoverCseq } from '../../../ingress/sip/takeover.ts';

const snap = (o: Partial<DialogSnapshot>): DialogSnapshot => ({
  callId: 'c@x',
  localTag: 'l',
  remoteTag: 'r',
  localUri: '<sip:+1555@10.0.0.1>',
  remoteUri: '<sip:caller@10.0.0.9>',
  remoteTarget: 'sip:caller@10.0.0.9:5070',
  routeSet: [],
  localCseq: 10,
  remoteCseq: 1,
  transport: 'udp',
  peer: { address: '10.0.0.9', port: 5070 },
  rtpPort: 30000,
  remoteMedia: { address: '10.0.0.9', port: 40000 },
  codec: 'PCMU',
  payloadType: 0,
  eventPayloadType: 101,
  sdpSession: 1,
  sdpVersion: 1,
  ...o,
});

test('takeoverCseq: above the stored CSeq by a margin that grows with the time the dead node may have refreshed in', () => {
  assert.equal(takeoverCseq(10, 0), 26);
  // An hour of 90 s session timers refreshed at half the interval, each retried once: 2 per 45 s.
  assert.ok(takeoverCseq(10, 3_600_000) >= 10 + 2 * 80);
  assert.ok(takeoverCseq(10, 3_600_000) > takeoverCseq(10, 60_000));
  assert.equal(takeoverCseq(2 ** 31 - 5, 10_000_000), 2 ** 31 - 1, 'never past the CSeq limit');
  assert.equal(takeoverCseq(10, -5), 26, 'a clock step back adds nothing');
});

test('routeDestination: the first route (a loose-routing proxy) with its transport', () => {
  const fallback = { transport: 'udp' as const, address: '10.0.0.9', port: 5070 };
  assert.deepEqual(routeDestination(snap({ routeSet: ['<sip:192.0.2.1:5080;lr;ftag=r>'] }), fallback), { transport: 'udp', address: '192.0.2.1', port: 5080 });
  assert.deepEqual(routeDestination(snap({ routeSet: ['<sip:192.0.2.1;lr;transport=tcp>', '<sip:192.0.2.2;lr>'] }), fallback), { transport: 'tcp', address: '192.0.2.1', port: 5060 });
  // A TLS dialog stays TLS; the default port is 5061.
  assert.deepEqual(routeDestination(snap({ transport: 'tls', routeSet: ['<sip:192.0.2.1;lr>'] }), fallback), { transport: 'tls', address: '192.0.2.1', port: 5061 });
});

test('routeDestination: no route set — the remote target (a new connection for a stream), a host name — the fallback', () => {
  const fallback = { transport: 'tcp' as const, address: '10.0.0.9', port: 41234 };
  assert.deepEqual(routeDestination(snap({ transport: 'tcp', remoteTarget: 'sip:caller@10.0.0.9:5070;transport=tcp' }), fallback), { transport: 'tcp', address: '10.0.0.9', port: 5070 });
  assert.deepEqual(routeDestination(snap({ transport: 'tcp', remoteTarget: 'sip:caller@phone.example;transport=tcp' }), fallback), fallback);
});
