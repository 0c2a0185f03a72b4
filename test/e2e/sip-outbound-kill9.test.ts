/**
 * kill -9 under a live OUTBOUND SIP call (in a private network namespace, so
 * the restarted gateway can take the same fixed SIP port): the dialog the 2xx
 * created is in the store like an inbound one, so the restarted node re-binds
 * the RTP port, the callee's DTMF after the restart still grants consent, and
 * the callee's in-dialog BYE (To tag = our From tag) is answered by the new
 * process and ends the call. A call still ringing when the process dies lost
 * its INVITE transaction with it: the restarted node ends it `sip:interrupted`.
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15558880000';

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf<{ policy_id: string }>(
    await store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 30_000, retries: 0 }, who),
  );
  resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  store.close();
}

async function waitLog(g: GatewayProcess, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!g.logs.some((l) => l.includes(text))) {
    if (Date.now() > end) throw new Error(`no "${text}" in the gateway log:\n${g.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (insidePrivateNetwork(import.meta.filename, 150_000)) {
  let gw: GatewayProcess | null = null;
  after(async () => {
    await gw?.stop();
  });

  test('kill -9 during an outbound call: RTP port re-bound, consent by DTMF after the restart, the callee\'s BYE ends it', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const dataDir = tmpDir('sb-sip-out-kill9-');
    await seed(dataDir);
    const env = { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '32000-32099' };
    gw = await spawnGateway({ port, dataDir, env });
    const sipp = await startSippUas({ scenario: 'uas_answer_long.xml', ip: '127.0.0.1', port: 5070, timeoutS: 80 });
    const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { body: { from: NUMBER, to: 'sip:bob@127.0.0.1:5070' } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await waitLog(gw, 'outbound SIP call answered', 20_000);
    await new Promise((res) => setTimeout(res, 1500));
    await gw.kill9();
    gw = await spawnGateway({ port, dataDir, env });
    await waitLog(gw, 'SIP call resumed after restart', 10_000);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const byeOk = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 BYE/i.test(m.text));
    assert.ok(byeOk.length >= 1, 'the BYE after the restart got 200');
    await new Promise((res) => setTimeout(res, 500));
    await gw.stop();
    gw = null;

    const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
    try {
      const call = store.read('default').calls.get(r.body.call_id)!;
      assert.equal(call.direction, 'outbound');
      assert.equal(call.state, 'ended');
      assert.equal(call.end_reason, 'sip:bye');
      assert.equal(call.media_epoch, 2, 'the first leg, then the resumed one');
      const legs = store.read('default').legs.find({ call_id: call.id });
      assert.equal(legs.length, 2);
      const [first, second] = legs.map((l) => l.resume as { rtpPort: number; localTag: string; remoteTag: string; callId: string });
      assert.equal(first!.rtpPort, second!.rtpPort, 'the same RTP port re-bound');
      assert.equal(first!.callId, call.provider_call_id);
      assert.ok(first!.localTag && first!.remoteTag, 'both tags stored');
      assert.equal(store.read('default').consents.get(call.consent_id!)?.outcome, 'granted', 'the DTMF sent after the restart reached the resumed leg');
      assert.ok(store.verify().ok);
    } finally {
      store.close();
    }
  });

  test('kill -9 while an outbound call is still ringing: the restarted node ends it sip:interrupted', { timeout: 90_000 }, async () => {
    const port = await freePort();
    const dataDir = tmpDir('sb-sip-out-kill9-ring-');
    await seed(dataDir);
    const env = { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '32100-32199' };
    gw = await spawnGateway({ port, dataDir, env });
    const sipp = await startSippUas({ scenario: 'uas_ring_cancel.xml', ip: '127.0.0.1', port: 5071, timeoutS: 30 });
    try {
      const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { body: { from: NUMBER, to: 'sip:bob@127.0.0.1:5071' } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      await new Promise((res) => setTimeout(res, 1000));
      await gw.kill9();
      gw = await spawnGateway({ port, dataDir, env });
      await waitLog(gw, 'ended sip:interrupted', 10_000);
      const call = await api<{ call: { state: string; end_reason: string; answered_at: number | null } }>(gw.publicUrl, 'GET', `/v1/calls/${r.body.call_id}`);
      assert.equal(call.status, 200);
      assert.equal(call.body.call.state, 'ended');
      assert.equal(call.body.call.end_reason, 'sip:interrupted');
      assert.equal(call.body.call.answered_at, null);
    } finally {
      sipp.kill();
      await sipp.done;
      await gw?.stop();
      gw = null;
    }
  });
}
