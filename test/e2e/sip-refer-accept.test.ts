/**
 * SIP REFER from the far end, accepted (RFC 3515; ingress/sip/refer-accept.ts), in a private network namespace (sipp
 * listens on fixed ports there). A SIP caller (the scripted UA) is warm-transferred by its agent to a sipp "human",
 * who presses 1 and then hands the call onward with REFER on a route SWITCHBOARD_SIP_REFER says `accept`:
 *
 *  - the desk answers: the human gets 202, a NOTIFY sipfrag `100 Trying` (subscription active) and a NOTIFY
 *    `200 OK` (terminated), then our BYE (`sip:referred`); the desk (a sipp UAS) received the INVITE; the caller's
 *    matrix rows end `refer:bridged` naming the desk's call, and the desk's speech reaches the caller;
 *  - the desk is busy: the final NOTIFY says 486, the caller stays bridged to the human until the human hangs up;
 *  - the human hangs up as soon as its REFER is accepted (a blind transferor, RFC 5589 §6): the caller is held
 *    (`refer:hold`) instead of the call ending, then bridged to the desk when it answers (`refer:bridged`);
 *  - a Refer-To that is not a sip:/sips:/tel: URI gets 400; a REFER from a caller talking to the agent gets 403 (the
 *    agent is never transferred); on a route without `accept` it is 403 as before (test/e2e/sip-refer.test.ts).
 *
 * Assertions are on what the peers receive and on rows, never on durations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { muLawDecode } from '../../media/g711.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const ONWARD = '+15557330001';
const ONWARD_BUSY = '+15557330002';
const MALFORMED = '+15557330003';
const AGENT = '+15557330004';
const ONWARD_BLIND = '+15557330005';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

function agentSource(): string {
  return `
import { defineAgent } from 'switchboard/agent';
const HUMANS = { '${ONWARD}': 'sip:human@127.0.0.1:5070', '${ONWARD_BUSY}': 'sip:human@127.0.0.1:5071', '${ONWARD_BLIND}': 'sip:human@127.0.0.1:5078' };
export default defineAgent({
  name: 'onward',
  async onStart(ctx) {
    const human = HUMANS[ctx.call.to];
    if (!human) return void (await ctx.say('Hello there.'));
    await ctx.transfer(human, { mode: 'warm', summary: 'A caller needs the front desk.', timeoutMs: 25000 });
  },
});`;
}

const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((a, x) => a + x * x, 0) / pcm.length);

if (insidePrivateNetwork(import.meta.filename, 300_000)) {
  let gw: Gw;
  const work = tmpDir('sb-refer-in-');
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31500-31699', SWITCHBOARD_SIP_REFER: [ONWARD, ONWARD_BUSY, MALFORMED, AGENT, ONWARD_BLIND].map((n) => `${n}=accept`).join(', ') } });
    const file = path.join(work, 'onward.ts');
    fs.writeFileSync(file, agentSource());
    const bundle = await bundleAgent(file);
    const res = await fetch(`${gw.publicUrl}/v1/agents/onward/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(res.status, 201, await res.text());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    for (const n of [ONWARD, ONWARD_BUSY, MALFORMED, AGENT, ONWARD_BLIND]) resultOf(await gw.store.submit(number_added, { number: n, agent: 'onward', provider: 'sip', consent_policy_id: p.policy_id }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const reasons = (callId: string): string[] => read().call_matrices.find({ call_id: callId }).sort((a, b) => a.n - b.n).map((r) => r.reason);
  const received = (run: SippRun, first: RegExp) => run.messages.filter((m) => m.dir === 'received' && first.test(m.first));
  const notifies = (run: SippRun) => received(run, /^NOTIFY /);

  async function call(to: string): Promise<{ ua: SipUa; callId: string }> {
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: to.slice(1) });
    const r = await ua.invite();
    assert.equal(r.status, 200);
    const row = await waitFor(() => read().calls.findOne({ provider: 'sip', provider_call_id: ua.callId }), 10_000, 'the call row');
    return { ua, callId: row.id };
  }

  test('the bridged human REFERs the call to a desk that answers: 202, NOTIFY 100 then 200, BYE sip:referred, the caller bridged to the desk', { timeout: 150_000 }, async () => {
    const desk = await startSippUas({ scenario: 'uas_desk_talk.xml', ip: '127.0.0.1', port: 5072, timeoutS: 120 });
    const human = await startSippUas({ scenario: 'uas_refer_onward.xml', ip: '127.0.0.1', port: 5070, timeoutS: 120 });
    const { ua, callId } = await call(ONWARD);
    try {
      await waitFor(() => reasons(callId).includes('refer:bridged'), 90_000, 'refer:bridged');
      const atRefer = ua.media.received.length;
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      const [accepted] = received(run, /^SIP\/2\.0 202/);
      assert.ok(accepted, 'the REFER was answered 202');
      assert.match(accepted.text, /^CSeq:\s*1 REFER/im);
      const [trying, final] = notifies(run);
      assert.ok(trying && final, 'two NOTIFYs');
      assert.match(trying.text, /^Event:\s*refer/im);
      assert.match(trying.text, /^Content-Type:\s*message\/sipfrag/im);
      assert.match(trying.text, /^Subscription-State:\s*active/im);
      assert.match(trying.text, /^SIP\/2\.0 100 Trying/m);
      assert.match(final.text, /^Subscription-State:\s*terminated/im);
      assert.match(final.text, /^SIP\/2\.0 200 OK/m);
      const bye = received(run, /^BYE /)[0];
      assert.ok(bye, 'the gateway ended the referring dialog');
      assert.match(bye.text, /^Reason:.*sip:referred/im);

      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:bridged', 'refer:bridged']);
      const rows = read().call_matrices.find({ call_id: callId });
      const humanCallId = rows.find((r) => r.reason === 'warm:bridged')!.peer_call_id!;
      const deskCallId = rows.find((r) => r.reason === 'refer:bridged')!.peer_call_id!;
      assert.notEqual(deskCallId, humanCallId);
      const deskCall = read().calls.get(deskCallId)!;
      assert.deepEqual([deskCall.direction, deskCall.to_uri, deskCall.from_uri], ['outbound', 'sip:desk@127.0.0.1:5072', ONWARD]);
      assert.ok(deskCall.answered_at !== null, 'the desk answered');
      await waitFor(() => read().calls.get(humanCallId)?.state === 'ended', 10_000, "the human's call ended");
      assert.equal(read().calls.get(humanCallId)!.end_reason, 'sip:referred');
      assert.notEqual(read().calls.get(callId)!.state, 'ended', 'the caller’s call goes on');
      // The desk talks: its speech reaches the caller.
      await waitFor(() => ua.media.received.slice(atRefer).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300).length >= 50, 30_000, "the desk's speech at the caller");
      assert.equal(await ua.bye(), 200);
    } finally {
      ua.close();
      human.kill();
    }
    // The caller hangs up: the desk's call ends with it (our BYE), and the desk's sipp ends cleanly.
    const deskRun = await desk.done;
    assert.equal(deskRun.code, 0, deskRun.output);
    assert.equal(received(deskRun, /^INVITE /).length >= 1, true, 'the desk received the INVITE');
  });

  test('the desk is busy: the final NOTIFY says 486, and the caller stays with the human', { timeout: 150_000 }, async () => {
    const desk = await startSippUas({ scenario: 'uas_busy.xml', ip: '127.0.0.1', port: 5073, timeoutS: 120 });
    const human = await startSippUas({ scenario: 'uas_refer_onward_busy.xml', ip: '127.0.0.1', port: 5071, timeoutS: 120 });
    const { ua, callId } = await call(ONWARD_BUSY);
    try {
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      assert.ok(received(run, /^SIP\/2\.0 202/)[0], 'the REFER was answered 202');
      const [trying, final] = notifies(run);
      assert.match(trying!.text, /^SIP\/2\.0 100 Trying/m);
      assert.match(final!.text, /^SIP\/2\.0 486 Busy Here/m);
      assert.match(final!.text, /^Subscription-State:\s*terminated/im);
      assert.equal(received(run, /^BYE /).length, 0, 'the gateway did not end the human’s dialog');
      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:bridged']);
      // The human hung up after the failed REFER: the bridged call ends with it.
      await waitFor(() => read().calls.get(callId)?.state === 'ended', 20_000, 'the caller’s call ended');
      assert.equal(read().calls.get(callId)!.end_reason, 'transfer: the human hung up');
      const busy = read().calls.find({ to_uri: 'sip:desk@127.0.0.1:5073' });
      assert.equal(busy.length, 1);
      assert.equal(busy[0]!.end_reason, 'sip:busy');
      const deskRun = await desk.done;
      assert.equal(deskRun.code, 0, deskRun.output);
    } finally {
      ua.close();
      human.kill();
      desk.kill();
    }
  });

  test('the human hangs up right after 202: the caller is held, then bridged to the desk when it answers', { timeout: 150_000 }, async () => {
    const desk = await startSippUas({ scenario: 'uas_desk_ring_talk.xml', ip: '127.0.0.1', port: 5077, timeoutS: 120 });
    const human = await startSippUas({ scenario: 'uas_refer_onward_blind.xml', ip: '127.0.0.1', port: 5078, timeoutS: 120 });
    const { ua, callId } = await call(ONWARD_BLIND);
    try {
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      assert.ok(received(run, /^SIP\/2\.0 202/)[0], 'the REFER was answered 202');
      await waitFor(() => reasons(callId).includes('refer:bridged'), 60_000, 'refer:bridged');
      const atRefer = ua.media.received.length;
      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:bridged', 'refer:hold', 'refer:bridged']);
      const rows = read().call_matrices.find({ call_id: callId });
      const humanCall = read().calls.get(rows.find((r) => r.reason === 'warm:bridged')!.peer_call_id!)!;
      assert.equal(humanCall.end_reason, 'sip:bye', 'the human hung up itself');
      assert.equal(read().calls.get(rows.find((r) => r.reason === 'refer:bridged')!.peer_call_id!)!.to_uri, 'sip:desk@127.0.0.1:5077');
      assert.notEqual(read().calls.get(callId)!.state, 'ended', 'the caller’s call goes on');
      await waitFor(() => ua.media.received.slice(atRefer).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300).length >= 50, 30_000, "the desk's speech at the caller");
      assert.equal(await ua.bye(), 200);
      const deskRun = await desk.done;
      assert.equal(deskRun.code, 0, deskRun.output);
    } finally {
      ua.close();
      human.kill();
      desk.kill();
    }
  });

  test('a Refer-To that is not a sip:, sips: or tel: URI is answered 400, and the call goes on', { timeout: 90_000 }, async () => {
    const run = await runSipp({ scenario: 'uac_refer_malformed.xml', port: 5060, service: MALFORMED.slice(1) });
    assert.equal(run.code, 0, run.output);
    const [refusal] = received(run, /^SIP\/2\.0 400/);
    assert.ok(refusal, 'the REFER was answered 400');
    assert.match(refusal.first, /Refer-To must be a sip:, sips: or tel: URI/);
    assert.equal(notifies(run).length, 0);
  });

  test('a REFER from a caller talking to the agent is answered 403 with the reason, and the call goes on', { timeout: 90_000 }, async () => {
    const run = await runSipp({ scenario: 'uac_refer_agent.xml', port: 5060, service: AGENT.slice(1) });
    assert.equal(run.code, 0, run.output);
    const [refusal] = received(run, /^SIP\/2\.0 403/);
    assert.ok(refusal, 'the REFER was answered 403');
    assert.match(refusal.first, /the agent cannot be transferred/);
    assert.match(refusal.text, /^Warning:\s*399 \S+ "this call is not a person bridged into another call/im);
    const callId = /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
    const call = await waitFor(() => { const c = read().calls.findOne({ provider: 'sip', provider_call_id: callId }); return c?.state === 'ended' && c; }, 10_000, 'the call ended');
    assert.equal(call.end_reason, 'sip:bye');
  });
}
