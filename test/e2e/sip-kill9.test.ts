/**
 * kill -9 under a live SIP call: the restarted gateway (same SIP port, same
 * RTP range) re-binds the call's RTP port from the dialog state in the store,
 * the caller's DTMF after the restart still grants consent, the caller's audio
 * is recorded, and sipp's in-dialog BYE ends the call cleanly.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { runSipp } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15557770000';
let gw: GatewayProcess | null = null;
after(async () => {
  await gw?.stop();
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit('tenant_created', { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf<{ policy_id: string }>(
    await store.submit('consent_policy_created', { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 30_000, retries: 0 }, who),
  );
  resultOf(await store.submit('number_added', { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  store.close();
}

async function waitLog(g: GatewayProcess, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!g.logs.some((l) => l.includes(text))) {
    if (Date.now() > end) throw new Error(`no "${text}" in the gateway log:\n${g.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('kill -9 during a SIP call: RTP port re-bound, consent by DTMF after the restart, in-dialog BYE ends the call', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const dataDir = tmpDir('sb-sip-kill9-');
  await seed(dataDir);
  const env = { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}` };
  gw = await spawnGateway({ port, dataDir, env });
  const sipp = runSipp({ scenario: 'uac_long.xml', port: sipPort, service: NUMBER.slice(1), timeoutS: 80 });
  await waitLog(gw, 'SIP call answered', 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  await gw.kill9();
  gw = await spawnGateway({ port, dataDir, env });
  await waitLog(gw, 'SIP call resumed after restart', 10_000);
  const run = await sipp;
  assert.equal(run.code, 0, run.output);
  const bye = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*2 BYE/i.test(m.text));
  assert.equal(bye.length >= 1, true, 'the BYE after the restart got 200');
  await new Promise((r) => setTimeout(r, 500));
  await gw.stop();
  gw = null;

  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const calls = store.read('default').calls.find();
    assert.equal(calls.length, 1);
    const call = calls[0]!;
    assert.equal(call.state, 'ended');
    assert.equal(call.end_reason, 'sip:bye');
    assert.equal(call.media_epoch, 2, 'the first leg, then the resumed one');
    const legs = store.read('default').legs.find({ call_id: call.id });
    assert.equal(legs.length, 2);
    assert.equal((legs[0]!.resume as { rtpPort: number }).rtpPort, (legs[1]!.resume as { rtpPort: number }).rtpPort, 'the same RTP port re-bound');
    const consent = store.read('default').consents.get(call.consent_id!)!;
    assert.equal(consent.outcome, 'granted', 'DTMF 1 sent after the restart reached the resumed leg');
    const events = [...store.events()];
    assert.ok(events.some((e) => e.reducer === 'call_resume_requested' && e.outcome.ok));
    assert.ok(store.read('default').recordings.find({ call_id: call.id }).length >= 1, 'recorded after consent');
    assert.ok(store.verify().ok);
  } finally {
    store.close();
  }
});
