/**
 * A re-INVITE that changes the codec and the media address mid-call (a trunk
 * moving the call to another media server, RFC 3264 §8): the answer takes
 * the new codec, the gateway's RTP goes to the new address in it, and the
 * stored leg (what a restart resumes from) says so. An offer with nothing we
 * speak is refused with 488 and the call carries on as it was.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, test } from 'node:test';
import { EVENT_PT } from '../helpers/rtp-caller.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557020000';
const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function offer(address: string, port: number, formats: string[]): string {
  return [
    'v=0', `o=- 1 2 IN IP4 ${address}`, 's=moved', `c=IN IP4 ${address}`, 't=0 0',
    `m=audio ${port} RTP/AVP ${formats.join(' ')}`, ...formats.map((f) => (f === '8' ? 'a=rtpmap:8 PCMA/8000' : f === '18' ? 'a=rtpmap:18 G729/8000' : `a=rtpmap:${f} telephone-event/8000`)),
    'a=ptime:20', 'a=sendrecv', '',
  ].join('\r\n');
}

test('re-INVITE: PCMU → PCMA at a new media address mid-call; stored for a restart; an unusable offer gets 488 and changes nothing', { timeout: 60_000 }, async () => {
  const gw = await startTestGateway({});
  cleanup.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded. Thank you for calling.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'sip', consent_policy_id: p.policy_id }, who));

  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: NUMBER.slice(1) });
  cleanup.push(() => ua.close());
  const first = await ua.invite();
  assert.equal(first.status, 200);
  const call = () => gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: ua.callId });
  const leg = () => gw.store.read('default').legs.find({ call_id: call()?.id ?? '', state: 'connected' })[0];
  await waitFor(() => leg()?.codec === 'PCMU', 10_000, 'the PCMU leg');

  // The far end moves the media: a new socket, PCMA only.
  const moved = dgram.createSocket('udp4');
  cleanup.push(() => void moved.close());
  await new Promise<void>((r) => moved.bind(0, '127.0.0.1', () => r()));
  const pts: number[] = [];
  moved.on('message', (m) => pts.push(m[1]! & 0x7f));
  const res = await ua.transact(ua.build('INVITE', { body: offer('127.0.0.1', moved.address().port, ['8', String(EVENT_PT)]) }));
  assert.equal(res?.status, 200);
  ua.ack(res!);
  const answer = res!.body.toString('utf8');
  assert.match(answer, /^m=audio \d+ RTP\/AVP 8 101/m);
  assert.match(answer, /^a=rtpmap:8 PCMA\/8000/m);
  assert.match(answer, /^o=\S+ \d+ 2 /m, 'the answer is version 2 of our session');

  // The agent's audio (disclosure, greeting) now reaches the new address as PCMA.
  await waitFor(() => pts.filter((pt) => pt === 8).length >= 25, 15_000, 'PCMA RTP at the new address');
  assert.ok(pts.every((pt) => pt === 8 || pt === EVENT_PT), `only PCMA (and events) at the new address: ${[...new Set(pts)].join(',')}`);
  const stored = leg()!;
  assert.equal(stored.codec, 'PCMA');
  const resume = stored.resume as { remoteMedia: { port: number }; codec: string; sdpVersion: number };
  assert.deepEqual([resume.codec, resume.remoteMedia.port, resume.sdpVersion], ['PCMA', moved.address().port, 2], 'what a restart resumes from');

  // Nothing usable (G.729 only): 488, the call goes on with PCMA where it was.
  const refused = await ua.transact(ua.build('INVITE', { branch: 'g729only', body: offer('127.0.0.1', 4000, ['18']) }));
  assert.equal(refused?.status, 488);
  assert.match(refused!.headers.get('warning') ?? '', /^3\d\d /, 'a Warning says why');
  // The ACK of a non-2xx belongs to the INVITE's transaction: same branch and CSeq number.
  const cseq = Number(/^\s*(\d+)/.exec(refused!.headers.get('cseq') ?? '')?.[1]);
  ua.send(ua.build('ACK', { branch: 'g729only', cseq }));
  assert.equal(leg()?.codec, 'PCMA');
  const before = pts.length;
  await waitFor(() => pts.length > before + 5, 10_000, 'RTP still flowing to the moved address after the 488');

  assert.equal(await ua.bye(), 200);
  await waitFor(() => call()?.state === 'ended', 10_000, 'the call ended');
  assert.equal(call()?.end_reason, 'sip:bye');
  await waitFor(() => gw.calls.size === 0, 10_000, 'the media session closed');
  await gw.recordings.idle();
});
