/**
 * SIP REFER (RFC 3515) end to end against sipp, in a private network namespace (the gateway on 5060 there). A deployed
 * agent makes a blind transfer on start (`ctx.transfer(target)`) on the routes SWITCHBOARD_SIP_REFER says `transfer`:
 *
 *  - sipp (the carrier) receives REFER with `Refer-To: <target>`, answers 202 and NOTIFYs `100 Trying` then `200 OK`
 *    sipfrag: the gateway hangs up (BYE) and the call ends `sip:transferred` with its transfer target;
 *  - sipp NOTIFYs `486 Busy Here`: the transfer fails with that reason (the agent's own catch writes it to a file),
 *    the call goes on until sipp hangs up (`sip:bye`);
 *  - on a route that does not accept REFER, sipp's REFER gets 403 with a Warning and the call goes on (`sip:bye`).
 *
 * Assertions are on what sipp receives and on call rows, never on durations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const TRANSFER = '+15557320001';
const BUSY = '+15557320002';
const REFUSED = '+15557320003';
const TARGET = 'sip:desk@127.0.0.1:5099';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

function agentSource(work: string): string {
  return `
import fs from 'node:fs';
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'referrer',
  async onStart(ctx) {
    if (ctx.call.to === '${REFUSED}') return void (await ctx.say('Hello there.'));
    try {
      await ctx.transfer('${TARGET}');
    } catch (err) {
      fs.writeFileSync(${JSON.stringify(work)} + '/failed-' + ctx.callId + '.txt', String(err && err.message));
      await ctx.say('Sorry, the transfer did not work.');
    }
  },
});`;
}

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: Gw;
  const work = tmpDir('sb-refer-');
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31400-31499', SWITCHBOARD_SIP_REFER: `${TRANSFER}=transfer, ${BUSY}=transfer` } });
    const file = path.join(work, 'referrer.ts');
    fs.writeFileSync(file, agentSource(work));
    const bundle = await bundleAgent(file);
    const res = await fetch(`${gw.publicUrl}/v1/agents/referrer/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(res.status, 201, await res.text());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    for (const n of [TRANSFER, BUSY, REFUSED]) resultOf(await gw.store.submit(number_added, { number: n, agent: 'referrer', provider: 'sip', consent_policy_id: p.policy_id }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  const sippCallId = (run: SippRun): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
  const callOf = (run: SippRun) => read().calls.findOne({ provider: 'sip', provider_call_id: sippCallId(run) });
  async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const received = (run: SippRun, first: RegExp) => run.messages.filter((m) => m.dir === 'received' && first.test(m.first));

  test('blind transfer by REFER: Refer-To is the target, 202 + NOTIFY 200 sipfrag → BYE, the call ends sip:transferred', { timeout: 90_000 }, async () => {
    const run = await runSipp({ scenario: 'uac_refer_transfer.xml', port: 5060, service: TRANSFER.slice(1) });
    assert.equal(run.code, 0, run.output);
    const [refer] = received(run, /^REFER /);
    assert.ok(refer, 'sipp received a REFER');
    assert.match(refer.text, new RegExp(`^Refer-To:\\s*<${TARGET}>`, 'im'));
    assert.match(refer.text, /^CSeq:\s*\d+ REFER/im);
    const notifyAnswers = received(run, /^SIP\/2\.0 200/).filter((m) => /^CSeq:\s*\d+ NOTIFY/im.test(m.text));
    assert.equal(notifyAnswers.length, 2, 'each NOTIFY answered 200');
    const bye = received(run, /^BYE /)[0];
    assert.ok(bye, 'the gateway hung up after the transfer');
    assert.match(bye.text, /^Reason:.*sip:transferred/im);
    const call = await waitFor(() => callOf(run)?.state === 'ended' && callOf(run), 10_000, 'the call ended');
    assert.equal(call.end_reason, 'sip:transferred');
    assert.equal(call.transfer_target, TARGET);
  });

  test('a REFER whose NOTIFY says 486: the transfer fails with that reason and the call goes on until the caller hangs up', { timeout: 90_000 }, async () => {
    const run = await runSipp({ scenario: 'uac_refer_transfer_busy.xml', port: 5060, service: BUSY.slice(1) });
    assert.equal(run.code, 0, run.output);
    assert.equal(received(run, /^BYE /).length, 0, 'the gateway did not hang up');
    const call = await waitFor(() => callOf(run)?.state === 'ended' && callOf(run), 10_000, 'the call ended');
    assert.equal(call.end_reason, 'sip:bye');
    assert.equal(call.transfer_target, null);
    const failed = path.join(work, `failed-${call.id}.txt`);
    await waitFor(() => fs.existsSync(failed), 10_000, "the agent's catch");
    assert.match(fs.readFileSync(failed, 'utf8'), /transfer to sip:desk@127\.0\.0\.1:5099 failed: .*486/);
  });

  test('REFER from the far end on a route that does not accept it: 403 with a Warning, and the call goes on', { timeout: 90_000 }, async () => {
    const run = await runSipp({ scenario: 'uac_refer_refused.xml', port: 5060, service: REFUSED.slice(1) });
    assert.equal(run.code, 0, run.output);
    const [refusal] = received(run, /^SIP\/2\.0 403/);
    assert.ok(refusal, 'the REFER was answered 403');
    assert.match(refusal.first, /REFER is not accepted on this route/);
    assert.match(refusal.text, /^Warning:\s*399 \S+ "REFER is not accepted on this route"/im);
    const call = await waitFor(() => callOf(run)?.state === 'ended' && callOf(run), 10_000, 'the call ended');
    assert.equal(call.end_reason, 'sip:bye');
  });
}
