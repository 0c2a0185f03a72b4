/**
 * Telephone numbers through a SIP trunk (README "Outbound calls", ingress/sip/trunk-routes.ts): `POST /v1/calls` from
 * a SIP number with `to` an E.164 number or a `tel:` URI dials `sip:+E164@<trunk>`, the trunk being the number's
 * "sip" account in SWITCHBOARD_PROVIDER_ACCOUNTS, with the trunk host's SWITCHBOARD_SIP_OUTBOUND entry (digest
 * credentials) and the trunk's own transport. sipp is the trunk, in a private network namespace (fixed ports):
 *
 *  - `tel:+15551234567` → the Request-URI sipp receives is `sip:+15551234567@127.0.0.3:5093`; sipp's 401 is answered
 *    with the host's credentials (verifyauth), the call is answered and its row's `to` is the E.164 number;
 *  - `+15557654321` from a number whose trunk says TCP → `sip:+15557654321@127.0.0.3:5095;transport=tcp` over
 *    TCP; sipp answers busy: `sip:busy`;
 *  - a number without a trunk: 422 `no_sip_trunk`, nothing written, nothing sent;
 *  - caller ID: another tenant's SIP number is 404; our Twilio number's tel: call goes through Twilio (no account
 *    here: 422 `no_provider_account`), never out of the SIP trunk with that caller ID.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15554446000';
const TCP_NUMBER = '+15554446001';
const NO_TRUNK_NUMBER = '+15554446002';
const TWILIO_NUMBER = '+15554446003';
const OTHER_TENANT_NUMBER = '+15554446004';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

if (insidePrivateNetwork(import.meta.filename, 180_000)) {
  let gw: Gw;
  before(async () => {
    const dir = tmpDir('sb-outbound-trunk-');
    const outbound = path.join(dir, 'outbound.json');
    fs.writeFileSync(outbound, JSON.stringify({ '127.0.0.3': { username: 'agent7', password: 'right-password' } }));
    const accounts = path.join(dir, 'accounts.json');
    fs.writeFileSync(
      accounts,
      JSON.stringify({
        sip: {
          accounts: [
            { tenant: 'default', numbers: [NUMBER], credentials: { trunk: '127.0.0.3:5093' } },
            { tenant: 'default', numbers: [TCP_NUMBER], credentials: { trunk: '127.0.0.3:5095', transport: 'tcp' } },
          ],
        },
      }),
    );
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '33000-33099', SWITCHBOARD_SIP_OUTBOUND: outbound, SWITCHBOARD_PROVIDER_ACCOUNTS: accounts } });
    const who = { tenant: 'default', caller: 'test' };
    for (const number of [NUMBER, TCP_NUMBER, NO_TRUNK_NUMBER]) resultOf(await gw.store.submit(number_added, { number, agent: 'default', provider: 'sip' }, who));
    resultOf(await gw.store.submit(number_added, { number: TWILIO_NUMBER, agent: 'default', provider: 'twilio' }, who));
    resultOf(await gw.store.submit(tenant_created, { id: 'other', name: 'Other' }, { tenant: 'other', caller: 'test' }));
    resultOf(await gw.store.submit(number_added, { number: OTHER_TENANT_NUMBER, agent: 'default', provider: 'sip' }, { tenant: 'other', caller: 'test' }));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  const dial = (from: string, to: string) => api<{ call_id: string; error?: { code: string; message: string } }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from, to } });
  async function ended(callId: string) {
    const end = Date.now() + 30_000;
    for (;;) {
      const call = read().calls.get(callId);
      if (call?.state === 'ended') return call;
      assert.ok(Date.now() < end, `call ${callId} did not end (state ${call?.state})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('tel: on a SIP number: INVITE sip:+E164@trunk, the trunk host\'s digest credentials, answered; the row keeps the E.164 number', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_auth.xml', ip: '127.0.0.3', port: 5093 });
    const r = await dial(NUMBER, 'tel:+15551234567');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const invites = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.equal(invites.length, 2, 'the INVITE and its answer to the challenge');
    for (const invite of invites) assert.equal(invite.first, 'INVITE sip:+15551234567@127.0.0.3:5093 SIP/2.0');
    assert.match(invites[0]!.text, /^To: <sip:\+15551234567@127\.0\.0\.3:5093>/m);
    assert.match(invites[1]!.text, /^Authorization: Digest .*username="agent7"/m);
    const call = await ended(r.body.call_id);
    assert.equal(call.to_uri, '+15551234567');
    assert.equal(call.provider, 'sip');
    assert.ok(call.answered_at !== null, 'verifyauth accepted the trunk host\'s credentials');
    assert.equal(call.end_reason, 'sip:bye');
  });

  test('E.164 on a trunk that says TCP: sip:+E164@trunk;transport=tcp over TCP; busy ends sip:busy', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_busy.xml', ip: '127.0.0.3', port: 5095, transport: 't1' });
    const r = await dial(TCP_NUMBER, '+15557654321');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const invites = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.equal(invites.length, 1);
    assert.equal(invites[0]!.first, 'INVITE sip:+15557654321@127.0.0.3:5095;transport=tcp SIP/2.0');
    assert.match(invites[0]!.text, /^Via: SIP\/2\.0\/TCP /m);
    const call = await ended(r.body.call_id);
    assert.equal(call.to_uri, '+15557654321');
    assert.equal(call.end_reason, 'sip:busy');
  });

  test('a SIP number without a trunk: tel: is 422 no_sip_trunk, and nothing is written', async () => {
    const before = read().calls.find({}).length;
    const r = await dial(NO_TRUNK_NUMBER, 'tel:+15551234567');
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error?.code, 'no_sip_trunk');
    assert.match(r.body.error?.message ?? '', /no SIP trunk carries calls from \+15554446002/);
    assert.equal(read().calls.find({}).length, before);
  });

  test('caller ID: another tenant\'s number is 404; a Twilio number\'s tel: call never leaves through the SIP trunk (422)', async () => {
    const before = gw.store.read(null).calls.find({}).length;
    for (const [from, status, code] of [[OTHER_TENANT_NUMBER, 404, 'number_not_found'], [TWILIO_NUMBER, 422, 'no_provider_account']] as const) {
      const r = await dial(from, 'tel:+15551234567');
      assert.equal(r.status, status, `${from}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, code);
    }
    assert.equal(gw.store.read(null).calls.find({}).length, before, 'nothing written');
  });
}
