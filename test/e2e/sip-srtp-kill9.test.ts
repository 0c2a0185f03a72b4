/**
 * kill -9 during an SRTP call (SDES, AES_CM_128_HMAC_SHA1_80): the scripted caller (test/helpers/sip-ua.ts with
 * `srtp: true`, werift on its side too) starts its sequence numbers just below 65535, so its stream wraps and its
 * rollover counter becomes 1 before the kill. The restarted gateway unseals the keys from the store with the
 * recording master key, resumes the caller's ROC, and the media continues both ways: the caller decrypts the
 * gateway's packets after the restart (nothing fails to authenticate), and its DTMF "1" after the restart —
 * which the gateway can only read by decrypting with ROC 1 — grants consent. The keys are in neither the
 * gateway's log nor anywhere in its data directory in clear. Also re-INVITEs in an SRTP call: the same offer keeps our
 * key, a refresh without SDP repeats it, and a plain offer is refused (an encrypted call is never downgraded).
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, startTestGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557770000';
let gw: GatewayProcess | null = null;
let ua: SipUa | null = null;
after(async () => {
  ua?.close();
  await gw?.stop();
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 0 }, who));
  resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  store.close();
}

async function until(fn: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const waitLog = (g: GatewayProcess, text: string, ms: number): Promise<void> => until(() => g.logs.some((l) => l.includes(text)), ms, `"${text}" in the gateway log:\n${g.logs.slice(-20).join('\n')}`);

/** Every file under `dir`, as bytes. */
function filesUnder(dir: string): Buffer[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => fs.readFileSync(path.join(e.parentPath, e.name)));
}

test('kill -9 during an SRTP call: keys unsealed from the store, the caller ROC resumed, media decrypts both ways after the restart', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const dataDir = tmpDir('sb-sip-srtp-kill9-');
  await seed(dataDir);
  const env = { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_ENCRYPTION: 'allow/require' };
  gw = await spawnGateway({ port, dataDir, env });
  ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: sipPort }, to: NUMBER.slice(1), srtp: true });
  ua.media.seq = 65535 - 40; // wraps 0.8 s into the call
  const r = await ua.invite();
  assert.equal(r.status, 200);
  const answer = ua.responses.find((x) => x.status === 200)!.body.toString('utf8');
  assert.match(answer, /m=audio \d+ RTP\/SAVP /);
  const gatewayKey = /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:(\S+)/.exec(answer)?.[1];
  assert.ok(gatewayKey, answer);
  const media = ua.media;
  await until(() => media.silencePackets + media.received.length > 50, 10_000, 'the gateway’s SRTP decrypted by the caller');
  await waitLog(gw, 'SIP call answered', 5000);
  await until(() => media.seq > 10 && media.seq < 1000, 10_000, 'the caller’s sequence number wrapped');
  await new Promise((res) => setTimeout(res, 1000)); // the rollover is stored (call_media_updated)
  await gw.kill9();
  const before = media.silencePackets + media.received.length;
  gw = await spawnGateway({ port, dataDir, env });
  await waitLog(gw, 'SIP call resumed after restart', 10_000);
  await until(() => media.silencePackets + media.received.length > before + 50, 15_000, 'media from the restarted gateway, decrypted');
  assert.equal(media.srtpFailures, 0, 'every gateway packet authenticated, before and after the restart');
  assert.deepEqual(media.protocolErrors.filter((e) => !/^RTP from/.test(e)), []);
  assert.ok(media.sendDtmf('1'));
  await new Promise((res) => setTimeout(res, 2500));
  assert.equal(await ua.bye(), 200);
  await new Promise((res) => setTimeout(res, 500));
  const logs = gw.logs.join('\n');
  await gw.stop();
  gw = null;

  const callerKey = Buffer.concat([ua.srtpKey.key, ua.srtpKey.salt]);
  const gwKey = Buffer.from(gatewayKey, 'base64');
  for (const k of [callerKey, gwKey]) {
    assert.ok(!logs.includes(k.toString('base64').slice(0, 20)) && !logs.includes(k.toString('hex').slice(0, 20)), 'no SRTP key in the log');
    for (const f of filesUnder(dataDir)) {
      assert.equal(f.indexOf(k.subarray(0, 16)), -1, 'no raw SRTP key in the data directory');
      assert.equal(f.indexOf(Buffer.from(k.toString('base64').slice(0, 20))), -1, 'no base64 SRTP key in the data directory');
    }
  }

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const call = store.read('default').calls.find()[0]!;
    assert.equal(call.state, 'ended');
    assert.equal(call.end_reason, 'sip:bye');
    const legs = store.read('default').legs.find({ call_id: call.id });
    assert.equal(legs.length, 2, 'the first leg, then the resumed one');
    const resumed = legs[1]!.resume as { mediaEncryption?: string; srtp?: { suite: string; inbound?: Array<{ roc: number }> } };
    assert.equal(resumed.mediaEncryption, 'srtp');
    assert.equal(resumed.srtp?.suite, 'AES_CM_128_HMAC_SHA1_80');
    assert.equal(resumed.srtp?.inbound?.[0]?.roc, 1, 'the caller’s ROC as stored at its rollover, carried by the resumed leg');
    const updates = [...store.events()].filter((e) => e.reducer === 'call_media_updated' && e.outcome.ok);
    assert.ok(updates.length >= 1, 'the caller’s rollover was stored before the kill');
    const consent = store.read('default').consents.get(call.consent_id!)!;
    assert.equal(consent.outcome, 'granted', 'DTMF 1 sent after the restart (ROC 1) was decrypted by the resumed leg');
    assert.ok(store.verify().ok);
  } finally {
    store.close();
  }
});

test('re-INVITE in an SRTP call: the same offer keeps our key, a refresh without SDP repeats it, a plain offer is refused (no downgrade)', { timeout: 60_000 }, async () => {
  const g = await startTestGateway({ env: { SWITCHBOARD_SIP_ENCRYPTION: 'allow' } });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await g.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
  resultOf(await g.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const caller = await SipUa.open({ gateway: { address: '127.0.0.1', port: g.sip.port }, to: NUMBER.slice(1), srtp: true });
  try {
    assert.equal((await caller.invite()).status, 200);
    const ourKey = (sdp: string): string | undefined => /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:(\S+)/.exec(sdp)?.[1];
    const first = ourKey(caller.responses.find((x) => x.status === 200)!.body.toString('utf8'));
    assert.ok(first);
    await until(() => caller.media.silencePackets + caller.media.received.length > 10, 10_000, 'SRTP from the gateway');

    const same = await caller.transact(caller.build('INVITE', { body: caller.offer() }));
    assert.equal(same?.status, 200);
    caller.ack(same!);
    assert.equal(ourKey(same!.body.toString('utf8')), first, 'our key kept');

    const refresh = await caller.transact(caller.build('INVITE', {}));
    assert.equal(refresh?.status, 200);
    caller.ack(refresh!);
    assert.match(refresh!.body.toString('utf8'), /m=audio \d+ RTP\/SAVP /);
    assert.equal(ourKey(refresh!.body.toString('utf8')), first, 'a refresh answers with the same key');

    const plain = caller.offer().replace('RTP/SAVP', 'RTP/AVP').replace(/a=crypto:.*\r\n/, '');
    const refused = await caller.transact(caller.build('INVITE', { body: plain }));
    assert.equal(refused?.status, 488);
    assert.match(refused!.headers.get('warning') ?? '', /this call is SRTP/);
    const before = caller.media.silencePackets + caller.media.received.length;
    await until(() => caller.media.silencePackets + caller.media.received.length > before + 20, 10_000, 'SRTP goes on after the refused downgrade');
    assert.equal(caller.media.srtpFailures, 0);
    assert.equal(await caller.bye(), 200);
  } finally {
    caller.close();
    await g.stop();
  }
});
