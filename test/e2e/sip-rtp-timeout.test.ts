/**
 * RTP inactivity (ingress/sip/rtp-timeout.ts) seen from scripted UAs: with SWITCHBOARD_SIP_RTP_TIMEOUT_MS=3000, a
 * caller whose RTP stops without a BYE (a phone gone, its BYE lost) gets the gateway's BYE with
 * `Reason: SIP;cause=408;text="RTP timeout"` and the call ends `sip:rtp-timeout`; a second caller on the same
 * gateway that keeps sending RTP is not cut meanwhile. And the stall of a campaign after a kill -9: a caller that
 * went away while the gateway was down (its BYE lost) is hung up by the restarted node's resumed leg, which re-bound
 * the call's RTP port and heard nothing on it. Bounds are generous (a busy box), and nothing is measured.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { openStore } from '../helpers/content.ts';
import { freePort, spawnGateway, startTestGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557030000';
const open: Array<() => unknown> = [];
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a caller whose RTP stops without BYE is hung up (BYE, Reason 408) and the call ends sip:rtp-timeout; one still sending is not', { timeout: 90_000 }, async () => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_SIP_RTP_TIMEOUT_MS: '3000' } });
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'sip', consent_policy_id: policy.policy_id }, who));

  const talking = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: NUMBER });
  open.push(() => talking.close());
  const gone = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: NUMBER });
  open.push(() => gone.close());
  assert.equal((await talking.invite()).status, 200);
  assert.equal((await gone.invite()).status, 200);
  // Both send RTP for a while (the gateway has seen packets), then one goes silent on the wire: no BYE, no RTP.
  await until('the gateway answers with RTP', () => gone.media.received.length > 10 && talking.media.received.length > 10, 30_000);
  gone.media.stop();

  await until('the gateway hangs up the silent caller', () => gone.remoteBye, 30_000);
  const bye = gone.requests.find((r) => r.method === 'BYE');
  assert.ok(bye);
  assert.equal(bye.headers.get('reason'), 'SIP;cause=408;text="RTP timeout"');

  const calls = () => gw.store.read('default').calls.find();
  const goneCall = () => calls().find((c) => c.provider_call_id === gone.callId);
  await until('the call is ended', () => goneCall()?.state === 'ended', 10_000);
  assert.equal(goneCall()!.end_reason, 'sip:rtp-timeout');

  // The caller that kept sending is still up, a timeout's length and more after the other was cut.
  await new Promise((r) => setTimeout(r, 4000));
  assert.equal(talking.remoteBye, false, 'a caller sending RTP is not hung up');
  assert.equal(calls().find((c) => c.provider_call_id === talking.callId)?.state, 'active');
  assert.equal(await talking.bye(), 200);
  await until('the talking call ends by its BYE', () => calls().find((c) => c.provider_call_id === talking.callId)?.end_reason === 'sip:bye', 10_000);
});

test('kill -9, the caller goes away meanwhile (no BYE reaches us): the resumed call is hung up sip:rtp-timeout', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const dataDir = tmpDir('sb-sip-rtp-timeout-');
  const seed = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await seed.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const policy = resultOf<{ policy_id: string }>(await seed.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await seed.submit(number_added, { number: NUMBER, agent: 'default', provider: 'sip', consent_policy_id: policy.policy_id }, who));
  seed.close();

  const env = { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_RTP_TIMEOUT_MS: '3000' };
  let gw: GatewayProcess | null = await spawnGateway({ port, dataDir, env });
  open.push(() => gw?.stop());
  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: sipPort }, to: NUMBER });
  open.push(() => ua.close());
  assert.equal((await ua.invite()).status, 200);
  await until('the gateway answers with RTP', () => ua.media.received.length > 10, 30_000);
  await gw.kill9();
  ua.media.stop(); // the phone is gone; its BYE went to a dead node
  gw = await spawnGateway({ port, dataDir, env });
  await until('the call is resumed after the restart', () => gw!.logs.some((l) => l.includes('SIP call resumed after restart')), 20_000);
  await until('the resumed leg hangs up the silent caller', () => ua.remoteBye, 30_000);
  assert.equal(ua.requests.find((r) => r.method === 'BYE')?.headers.get('reason'), 'SIP;cause=408;text="RTP timeout"');
  await new Promise((r) => setTimeout(r, 500));
  await gw.stop();
  gw = null;

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const calls = store.read('default').calls.find();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.state, 'ended');
    assert.equal(calls[0]!.end_reason, 'sip:rtp-timeout');
    assert.equal(store.read('default').legs.find({ call_id: calls[0]!.id }).length, 2, 'ended by the resumed leg');
  } finally {
    store.close();
  }
});
