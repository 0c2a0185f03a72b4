/**
 * A media connection that closes while its call session is still attaching
 * (the attach awaits the store's durable commit and the agent registry) must
 * close that session: before, the 'closed' event fired before the session
 * listened, the session never learnt, ran the consent stage and started a
 * speech recogniser that nobody ever closed (a pocketsphinx process that kept
 * the test process, or a gateway's memory, alive forever).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startTestGateway } from '../helpers/gateway.ts';
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { resultOf } from '../helpers/store.ts';
import { call_answered, call_received, consent_policy_created, number_added } from '../../schema/reducers.ts';

const open: Array<() => unknown> = [];
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

test('a leg closed during attach closes its session: no consent stage, no media stream left, media_lost recorded', { timeout: 30_000 }, async () => {
  const gw = await startTestGateway();
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'p', mode: 'opt-in', disclosure_text: 'We record calls.' }, who));
  const num = resultOf<{ number_id: string }>(await gw.store.submit(number_added, { number: '+15557030000', agent: 'default', consent_policy_id: policy.policy_id }, who));
  const call = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'webrtc', provider_call_id: 'race-1', from: 'browser', to: '+15557030000', number_id: num.number_id }, who),
  );
  resultOf(await gw.store.submit(call_answered, { call_id: call.call_id }, who));

  const leg = new MemoryLeg(false);
  const attaching = gw.calls.attach({ tenant: 'default', callId: call.call_id }, leg);
  leg.close('socket dropped while attaching', false); // before the attach's store commit is durable
  const session = await attaching;
  assert.equal(session.isClosed, true, 'the session knows its media is gone');
  await session.settled();
  await new Promise((r) => setTimeout(r, 500)); // long enough for a wrongly started consent stage to show
  assert.equal(gw.calls.size, 0);
  assert.equal(gw.clock.size, 0, 'no outbound stream left on the media clock');
  const reducers = [...gw.store.events()].filter((e) => (e.args as { call_id?: string }).call_id === call.call_id).map((e) => e.reducer);
  assert.ok(reducers.includes('call_media_lost'), `media loss recorded (${reducers.join(', ')})`);
  assert.ok(!reducers.includes('consent_started'), 'no consent stage for a closed leg');
});
