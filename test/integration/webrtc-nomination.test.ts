/**
 * The gateway's media follows the browser's latest nomination, and only an
 * authentic one (ingress/webrtc/nomination.ts). A werift caller connects to a
 * gateway peer (WebrtcPeer.answer, ICE-lite) over 127.0.0.1; then a second
 * socket sends the gateway's candidate a Binding request with USE-CANDIDATE:
 * unsigned, signed with a wrong password, naming another ufrag — the media
 * path stays; signed with the gateway's ICE password and naming its ufrag (what
 * the browser sends when it switches pairs) — the media path moves there and
 * our packets arrive on that socket. Loopback only: no namespace needed.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, test } from 'node:test';
import { Message, RTCPeerConnection, RTCRtpCodecParameters, classes, methods, parseMessage, useOPUS, type Connection } from 'werift';
import { loadConfig } from '../../cli/config/index.ts';
import { WebrtcPeer } from '../../ingress/webrtc/peer.ts';
import { waitFor } from '../helpers/softphone.ts';

const open: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

async function connectedPair(): Promise<{ conn: Connection }> {
  const client = new RTCPeerConnection({
    iceServers: [],
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1 })], video: [] },
  });
  open.push(() => client.close());
  client.addTransceiver('audio', { direction: 'sendrecv' });
  client.createDataChannel('switchboard');
  await client.setLocalDescription(await client.createOffer());
  await waitFor(() => client.iceGatheringState === 'complete', 10_000, 'client candidates');
  const { peer, answer } = await WebrtcPeer.answer(client.localDescription!.sdp, loadConfig({ SWITCHBOARD_WEBRTC_HOST_ADDRESSES: '127.0.0.1' }).webrtc);
  open.push(() => peer.close());
  await client.setRemoteDescription({ type: 'answer', sdp: answer });
  assert.equal(await peer.connected(20_000), true, 'connected');
  const conn = peer.pc.iceTransports[0]!.connection as Connection;
  assert.ok(conn.nominated, 'a nominated pair');
  return { conn };
}

function check(conn: Connection, opts: { password?: string; ufrag?: string }): Buffer {
  const req = new Message(methods.BINDING, classes.REQUEST)
    .setAttribute('USERNAME', `${opts.ufrag ?? conn.localUsername}:${conn.remoteUsername}`)
    .setAttribute('PRIORITY', 1853817087)
    .setAttribute('ICE-CONTROLLING', 42n)
    .setAttribute('USE-CANDIDATE', null);
  if (opts.password !== undefined) req.addMessageIntegrity(Buffer.from(opts.password, 'utf8'));
  return req.addFingerprint().bytes;
}

test('a signed USE-CANDIDATE from another address moves the media path there; unsigned or mis-signed ones do not', { timeout: 60_000 }, async () => {
  const { conn } = await connectedPair();
  const first = conn.nominated!;
  const target = first.localCandidate;
  const sock = dgram.createSocket('udp4');
  open.push(() => new Promise<void>((r) => sock.close(() => r())));
  let stunAnswers = 0;
  let media = 0;
  sock.on('message', (data) => {
    if (parseMessage(data)?.messageClass === classes.RESPONSE) stunAnswers++;
    else media++;
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, target.port, target.host, () => r()));

  const forged = [check(conn, {}), check(conn, { password: 'not-the-ice-password-0123' }), check(conn, { password: conn.localPassword, ufrag: 'zzzz' })];
  for (const [i, b] of forged.entries()) {
    await send(b);
    await waitFor(() => stunAnswers >= i + 1, 5_000, `werift answers forged check ${i}`);
  }
  assert.equal(conn.nominated, first, 'no forged nomination moved the media path');
  assert.equal(media, 0, 'nothing of the call was sent to the forger');

  await send(check(conn, { password: conn.localPassword }));
  await waitFor(() => conn.nominated !== first, 5_000, 'the signed nomination is followed');
  assert.deepEqual(conn.nominated!.remoteAddr, ['127.0.0.1', port]);
  // Our packets (DTLS/SCTP, RTCP) now leave towards the nominated address.
  await conn.send(Buffer.from([0x80, 0xc8, 0, 1, 0, 0, 0, 1]));
  await waitFor(() => media >= 1, 5_000, 'media on the newly nominated pair');
});
