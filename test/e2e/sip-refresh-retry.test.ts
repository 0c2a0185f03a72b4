/**
 * Session refresh retries against sipp (a real SIP UAC), in-process gateway on free ports: the gateway is the
 * refresher (Session-Expires 6 s, SWITCHBOARD_SIP_MIN_SE=2 for the test) and refreshes with UPDATE. A refresh answered
 * 491 is sent again after RFC 3261 §14.1's random delay (0–2 s: the caller owns the Call-ID) and the call carries
 * on; one answered 422 with Min-SE: 10 is sent again with Session-Expires: 10 (RFC 4028 §7.4). No duration is
 * asserted: sipp waits for the retried UPDATE, the test for the call's end.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553340100';
const SERVICE = '15553340100';
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let sipPort: number;

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_MIN_SE: '2' } });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 60_000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  await gw?.stop();
});

const callBy = (sipCallId: string) => gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: sipCallId });
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
const cseqOf = (text: string): number => Number(/CSeq:\s*(\d+)/i.exec(text)?.[1]);

test('refresh answered 491: the gateway sends the UPDATE again (a new CSeq) after the RFC 3261 §14.1 delay; the 200 keeps the call up', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_491.xml');
  assert.equal(run.code, 0, run.output);
  const updates = received(run, /^UPDATE /);
  assert.equal(updates.length, 2);
  assert.ok(cseqOf(updates[1]!.text) > cseqOf(updates[0]!.text), 'the retry is a new transaction');
  for (const u of updates) assert.match(u.text, /Session-Expires:\s*6;refresher=uac/i);
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});

test('refresh answered 422 with Min-SE: 10: the retry carries Session-Expires: 10 and Min-SE: 10; the 200 keeps the call up', { timeout: 90_000 }, async () => {
  const run = await sipp('uac_timer_422.xml');
  assert.equal(run.code, 0, run.output);
  const updates = received(run, /^UPDATE /);
  assert.equal(updates.length, 2);
  assert.match(updates[0]!.text, /Session-Expires:\s*6;refresher=uac/i);
  assert.match(updates[1]!.text, /Session-Expires:\s*10;refresher=uac/i);
  assert.match(updates[1]!.text, /Min-SE:\s*10\b/i);
  assert.equal((await ended(run)).end_reason, 'sip:bye');
});
