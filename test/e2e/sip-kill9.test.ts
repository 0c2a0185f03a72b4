/**
 * kill -9 under a live SIP call: the restarted gateway (same SIP port, same
 * RTP range) re-binds the call's RTP port from the dialog state in the store,
 * the caller's DTMF after the restart still grants consent, the caller's audio
 * is recorded, and sipp's in-dialog BYE ends the call cleanly. A call put on
 * hold by re-INVITE before the kill is still on hold after it (the media as
 * last agreed is in the store), and unholds in the same dialog.
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { runSipp } from '../helpers/sipp.ts';
import { api } from '../helpers/api.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557770000';
const NOTIFY_NUMBER = '+15557770001';
let gw: GatewayProcess | null = null;
after(async () => {
  await gw?.stop();
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf<{ policy_id: string }>(
    await store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 30_000, retries: 0 }, who),
  );
  resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const n = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await store.submit(number_added, { number: NOTIFY_NUMBER, agent: 'default', consent_policy_id: n.policy_id }, who));
  store.close();
}

async function waitLog(g: GatewayProcess, text: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!g.logs.some((l) => l.includes(text))) {
    if (Date.now() > end) throw new Error(`no "${text}" in the gateway log:\n${g.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the gateway's one call is `held` (its API), within a generous bound. */
async function heldVia(url: string, boundMs: number): Promise<void> {
  const end = Date.now() + boundMs;
  for (;;) {
    const r = await api<{ calls: Array<{ state: string }> }>(url, 'GET', '/v1/calls').catch(() => null);
    if (r?.body.calls?.[0]?.state === 'held') return;
    if (Date.now() > end) throw new Error(`the call was not held within ${boundMs} ms: ${JSON.stringify(r?.body)}`);
    await new Promise((res) => setTimeout(res, 100));
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

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
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

test('kill -9 while a SIP call is on hold: the re-INVITE state survives (still held after the restart), unhold and BYE in the same dialog', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const dataDir = tmpDir('sb-sip-kill9-hold-');
  await seed(dataDir);
  const env = { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}` };
  gw = await spawnGateway({ port, dataDir, env });
  const sipp = runSipp({ scenario: 'uac_hold_kill.xml', port: sipPort, service: NOTIFY_NUMBER.slice(1), timeoutS: 80 });
  await waitLog(gw, 'SIP call answered', 20_000);
  // The hold re-INVITE goes 6 s after the ACK (once the disclosure is over): kill once the call is held.
  await heldVia(gw.publicUrl, 30_000);
  await gw.kill9();
  gw = await spawnGateway({ port, dataDir, env });
  await waitLog(gw, 'SIP call resumed after restart', 10_000);
  const run = await sipp;
  assert.equal(run.code, 0, run.output);
  const ok = (cseq: string) => run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && new RegExp(`CSeq:\\s*${cseq}`, 'i').test(m.text));
  const holdAnswer = ok('2 INVITE')[0]?.text ?? '';
  const unholdAnswer = ok('3 INVITE')[0]?.text ?? '';
  assert.match(holdAnswer, /a=recvonly/, 'hold answered recvonly');
  assert.match(unholdAnswer, /a=sendrecv/, 'unhold (after the restart) answered sendrecv');
  const version = (sdp: string) => Number(/o=\S+ \d+ (\d+) /.exec(sdp)?.[1]);
  assert.equal(version(unholdAnswer), version(holdAnswer) + 1, 'the restarted node continues the SDP version (RFC 3264 §8)');
  assert.ok(ok('4 BYE').length >= 1, 'the BYE after the restart got 200');
  await new Promise((r) => setTimeout(r, 500));
  await gw.stop();
  gw = null;

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const call = store.read('default').calls.find()[0]!;
    assert.equal(call.state, 'ended');
    assert.equal(call.end_reason, 'sip:bye');
    const legs = store.read('default').legs.find({ call_id: call.id });
    assert.equal(legs.length, 2);
    const resumed = legs[1]!.resume as { direction?: string; sdpVersion: number; remoteCseq: number };
    assert.equal(resumed.direction, 'sendrecv', 'the unhold was stored on the resumed leg');
    assert.equal(resumed.remoteCseq, 3);
    const mine = [...store.events()].filter((e) => e.outcome.ok && ['call_held', 'call_unheld', 'call_media_updated', 'call_resume_requested'].includes(e.reducer)).map((e) => e.reducer);
    // held before the kill; the restarted node knew it was held, so the unhold is a state change it records.
    assert.deepEqual(mine, ['call_media_updated', 'call_held', 'call_resume_requested', 'call_media_updated', 'call_unheld']);
    assert.ok(store.verify().ok);
  } finally {
    store.close();
  }
});
