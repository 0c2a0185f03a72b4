/**
 * Vonage resumes a call only when its media is lost: a signed `disconnected`
 * event for the call's media leg while its socket still carries audio (a late
 * event about an earlier socket, or one that is not about this call's media)
 * is answered 204 with no NCCO and no token, writes nothing, and the live
 * socket keeps flowing. A real drop still resumes (the shared ingress suite).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, test } from 'node:test';
import { startTestGateway, VONAGE_SECRET } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { VonagePeer } from '../helpers/vonage-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553338888';
const open: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

test('a disconnected event while the media socket is live gets no resume, writes nothing, and the socket keeps flowing', { timeout: 60_000 }, async () => {
  const gw = await startTestGateway();
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'vonage', consent_policy_id: p.policy_id }, who));
  const peer = new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to: NUMBER, retryMs: 5000 });
  open.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = () => gw.store.read('default').calls.findOne({ provider: 'vonage', provider_call_id: peer.uuid })!;
  await peer.waitFor(() => call().state === 'active' && gw.calls.mediaLive(call().id), 15_000, 'live');
  const events = (r: string): number => [...gw.store.events()].filter((e) => e.reducer === r).length;
  const resumes = events('call_resume_requested');
  const res = await peer.postEvent({ uuid: randomUUID(), conversation_uuid: peer.conversationUuid, status: 'disconnected', direction: 'outbound' });
  assert.ok(!('error' in res));
  assert.equal(res.status, 204, `no NCCO: ${res.body}`);
  assert.equal(events('call_resume_requested'), resumes, 'no resume written');
  assert.equal(call().state, 'active');
  const heard = peer.receivedBytes;
  await peer.waitFor(() => peer.receivedBytes > heard + 16_000, 15_000, 'the agent keeps talking on the same socket');
  assert.equal(peer.streams, 1);
  await peer.hangup();
});
