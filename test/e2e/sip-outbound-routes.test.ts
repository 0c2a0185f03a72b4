/**
 * Outbound calls (README "Outbound calls"): the end reasons `sip:timeout` and `sip:auth-required`, and a
 * SWITCHBOARD_SIP_OUTBOUND entry's `proxy` and `from_domain` in real calls — in a private network namespace, where
 * the fixed ports of the callees are safe:
 *
 *  - a callee that never answers (this test's own UDP socket, which only listens): the INVITE is retransmitted
 *    (Timer A, one branch) and the call ends `sip:timeout` once 64·T1 passed, unanswered, without a CANCEL;
 *  - a 407 challenge (sipp) for a host with no credentials configured: ACKed, no second INVITE, `sip:auth-required`;
 *  - `sip:bob@pbx.example.com` through `proxy` (sipp at 127.0.0.1:5090 answers, then hangs up): the INVITE goes to
 *    the proxy with the Request-URI still the target and a `Route` naming the proxy, our From URI's host is
 *    `from_domain`, and the call is answered and ends `sip:bye`.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554445555';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: Gw;
  before(async () => {
    const creds = path.join(tmpDir('sb-outbound-routes-'), 'outbound.json');
    // Only pbx.example.com (and hosts under it) has an entry: 127.0.0.1 has no credentials.
    fs.writeFileSync(creds, JSON.stringify({ 'pbx.example.com': { username: 'agent9', password: 'proxy-password', proxy: '127.0.0.1:5090', from_domain: 'example.net' } }));
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '32000-32099', SWITCHBOARD_SIP_OUTBOUND: creds } });
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default' }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  const dial = async (to: string): Promise<string> => {
    const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from: NUMBER, to } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.call_id;
  };
  async function ended(callId: string, ms: number) {
    const end = Date.now() + ms;
    for (;;) {
      const call = read().calls.get(callId);
      if (call?.state === 'ended') return call;
      assert.ok(Date.now() < end, `call ${callId} did not end (state ${call?.state})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a callee that never answers: the INVITE is retransmitted and the call ends sip:timeout after 64·T1, unanswered, no CANCEL', { timeout: 90_000 }, async (t) => {
    const silent = dgram.createSocket('udp4');
    const got: string[] = [];
    silent.on('message', (m) => got.push(m.toString('latin1')));
    await new Promise<void>((r) => silent.bind(5092, '127.0.0.1', () => r()));
    t.after(() => silent.close());
    const callId = await dial('sip:dora@127.0.0.1:5092');
    const call = await ended(callId, 70_000);
    assert.equal(call.end_reason, 'sip:timeout');
    assert.equal(call.answered_at, null);
    const invites = got.filter((m) => m.startsWith('INVITE '));
    assert.ok(invites.length >= 2, `Timer A retransmitted the INVITE (${invites.length} received)`);
    const branch = (m: string) => /^Via:.*;branch=([^;\s]+)/im.exec(m)?.[1];
    assert.equal(new Set(invites.map(branch)).size, 1, 'retransmissions, not new transactions');
    assert.equal(got.filter((m) => m.startsWith('CANCEL ')).length, 0, 'nothing to cancel: no provisional response came');
  });

  test('a 407 challenge for a host without credentials: ACKed, not retried, the call ends sip:auth-required', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_proxy_auth.xml', ip: '127.0.0.1', port: 5091 });
    const callId = await dial('sip:carl@127.0.0.1:5091');
    const call = await ended(callId, 30_000);
    assert.equal(call.end_reason, 'sip:auth-required');
    assert.equal(call.answered_at, null);
    const run = await sipp.done;
    assert.equal(run.code, 0, `sipp saw only the INVITE and its ACK: ${run.output}`);
    const received = run.messages.filter((m) => m.dir === 'received').map((m) => m.first.split(' ')[0]);
    assert.deepEqual(received, ['INVITE', 'ACK']);
    assert.doesNotMatch(run.messages[0]!.text, /^(Proxy-)?Authorization:/im);
  });

  test('proxy and from_domain: the INVITE for sip:bob@pbx.example.com goes to the proxy with a Route, From is @example.net; answered, ended sip:bye', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_answer_short.xml', ip: '127.0.0.1', port: 5090 });
    const callId = await dial('sip:bob@pbx.example.com');
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(callId, 30_000);
    assert.equal(call.end_reason, 'sip:bye');
    assert.ok(call.answered_at !== null, 'answered through the proxy');
    const invite = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.ok(invite, 'the proxy received the INVITE');
    assert.equal(invite.first, 'INVITE sip:bob@pbx.example.com SIP/2.0', 'the Request-URI stays the target');
    assert.match(invite.text, /^Route: <sip:127\.0\.0\.1:5090;lr>\r?$/m);
    assert.match(invite.text, /^From: <sip:\+15554445555@example\.net>;tag=\w+\r?$/m);
    assert.match(invite.text, /^To: <sip:bob@pbx\.example\.com>\r?$/m);
    assert.match(invite.text, /^Contact: <sip:switchboard@127\.0\.0\.1:5060>/m, 'our Contact keeps our own address');
  });
}
