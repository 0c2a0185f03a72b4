/**
 * SIP interop against sipp (a real SIP UAC), in-process gateway on free ports: late offer (the 200 offers, the ACK
 * answers; an ACK without an answer gets BYE), `Require: 100rel` with PRACK, UPDATE mid-call (hold, refresh,
 * unhold), and session timers (RFC 4028) with a short Session-Expires (6 s; SWITCHBOARD_SIP_MIN_SE=2 for the test):
 * the gateway refreshes as refresher with UPDATE or re-INVITE, hangs up `sip:session-expired` when the peer's
 * refresh never comes, and answers 422 below its Min-SE. No duration is asserted: each run waits for the message.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553340000';
const SERVICE = '15553340000';
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let sipPort: number;

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({
    env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 199}`, SWITCHBOARD_SIP_RING_MS: '300', SWITCHBOARD_SIP_MIN_SE: '2' },
  });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  await gw?.stop();
});

const read = () => gw.store.read('default');
const callBy = (sipCallId: string) => read().calls.findOne({ provider: 'sip', provider_call_id: sipCallId });
const sippCallId = (run: SippRun): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
const received = (run: SippRun, first: RegExp) => run.messages.filter((m) => m.dir === 'received' && first.test(m.first));

async function ended(run: SippRun) {
  const end = Date.now() + 10_000;
  for (;;) {
    const c = callBy(sippCallId(run));
    if (c?.state === 'ended') return c;
    if (Date.now() > end) throw new Error(`call ${sippCallId(run)} not ended (${c?.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sipp = (scenario: string) => runSipp({ scenario, port: sipPort, service: SERVICE, timeoutS: 45 });

test('late offer: an INVITE without SDP gets our offer in the 200 and its answer from the ACK; the call runs and ends by BYE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_late_offer.xml');
  assert.equal(run.code, 0, run.output);
  const ok = received(run, /^SIP\/2.0 200/).find((m) => /CSeq:\s*1 INVITE/i.test(m.text));
  assert.match(ok!.text, /a=rtpmap:0 PCMU\/8000/);
  const call = await ended(run);
  assert.equal(call.end_reason, 'sip:bye');
  assert.ok(call.answered_at !== null);
  assert.equal(read().legs.find({ call_id: call.id })[0]?.codec, 'PCMU');
});

test('late offer with no answer in the ACK: the gateway hangs up with BYE (Reason) and the call ends sip:bad-answer', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_late_offer_no_answer.xml');
  assert.equal(run.code, 0, run.output);
  const bye = received(run, /^BYE /)[0];
  assert.match(bye!.text, /Reason:.*sip:bad-answer/i);
  assert.equal((await ended(run)).end_reason, 'sip:bad-answer');
});

test('Require: 100rel: a reliable 180 (Require: 100rel, RSeq), PRACK answered 200, then the 200 to the INVITE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_100rel.xml');
  assert.equal(run.code, 0, run.output);
  const got = run.messages.filter((m) => m.dir === 'received').map((m) => `${m.first.split(' ')[1]} ${/CSeq:\s*\d+ (\w+)/i.exec(m.text)?.[1]}`);
  assert.ok(got.indexOf('200 PRACK') >= 0 && got.indexOf('200 PRACK') < got.indexOf('200 INVITE'), got.join(','));
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('UPDATE mid-call: an offer a=sendonly holds (answer recvonly), no body refreshes, a=sendrecv unholds', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_update.xml');
  assert.equal(run.code, 0, run.output);
  const call = await ended(run);
  assert.equal(call.end_reason, 'sip:bye');
  const mine = [...gw.store.events()].filter((e) => (e.args as { call_id?: string }).call_id === call.id).map((e) => e.reducer);
  assert.ok(mine.indexOf('call_held') > 0 && mine.indexOf('call_unheld') > mine.indexOf('call_held'), mine.join(','));
});

test('session timer, the gateway is refresher and the peer allows UPDATE: it refreshes with UPDATE (Session-Expires, refresher=uac)', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_update.xml');
  assert.equal(run.code, 0, run.output);
  const updates = received(run, /^UPDATE /);
  assert.equal(updates.length, 2);
  for (const u of updates) {
    assert.match(u.text, /Session-Expires:\s*6;refresher=uac/i);
    assert.match(u.text, /Supported:.*timer/i);
  }
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('session timer, the gateway is refresher and the peer does not allow UPDATE: it refreshes with a re-INVITE and ACKs its 200', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_reinvite.xml');
  assert.equal(run.code, 0, run.output);
  const reinvite = received(run, /^INVITE /)[0];
  assert.match(reinvite!.text, /Session-Expires:\s*6;refresher=uac/i);
  assert.match(reinvite!.text, /m=audio \d+ RTP\/AVP/);
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('session timer, the peer is refresher and never refreshes: BYE before expiry, the call ends sip:session-expired', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_expire.xml');
  assert.equal(run.code, 0, run.output);
  assert.match(received(run, /^BYE /)[0]!.text, /Reason:.*sip:session-expired/i);
  assert.equal((await ended(run)).end_reason, 'sip:session-expired');
});

test('Session-Expires below the Min-SE: 422 with Min-SE', { timeout: 60_000 }, async () => {
  const run = await sipp('uac_timer_too_small.xml');
  assert.equal(run.code, 0, run.output);
  assert.match(received(run, /^SIP\/2.0 422/)[0]!.text, /Min-SE:\s*2/i);
});
