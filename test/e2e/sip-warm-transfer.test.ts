/**
 * Warm transfer from a SIP caller to a SIP human (issue 16), in a private network namespace (sipp listens on fixed
 * ports there). The caller is the scripted SIP UA (its RTP received is what its peer heard); the human is a sipp UAS.
 * A deployed agent warm-transfers on start (`ctx.transfer(target, { mode: 'warm', summary })`):
 *
 *  - the human presses 1: the caller's peer receives the hold tone after `warm:hold`, then the human's speech after
 *    `warm:bridged`; the call_matrices rows show hold → brief → bridged, naming the human's call, which is an
 *    outbound call row of its own (dialled, answered);
 *  - the human presses 2: the rows end `warm:failed:declined`, the human's call is ended by us (BYE), the caller is
 *    back with the agent (its call goes on), and the agent's `onTransferFailed` got `declined` (the agent writes what it
 *    was given to a file: its own callback, not a store column).
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
import { startSippUas } from '../helpers/sipp-uas.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

/** Calls to ACCEPT go to the human on 5070 (presses 1), to DECLINE to the human on 5071 (presses 2). */
const ACCEPT = '+15557310001';
const DECLINE = '+15557310002';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

function agentSource(work: string): string {
  return `
import fs from 'node:fs';
import { defineAgent } from 'switchboard/agent';
const HUMANS = { '${ACCEPT}': 'sip:human@127.0.0.1:5070', '${DECLINE}': 'sip:human@127.0.0.1:5071' };
export default defineAgent({
  name: 'handover',
  async onStart(ctx) {
    await ctx.transfer(HUMANS[ctx.call.to], { mode: 'warm', summary: 'A caller needs help with a refund.', timeoutMs: 25000 });
  },
  async onTransferFailed(ctx, info) {
    fs.writeFileSync(${JSON.stringify(work)} + '/failed-' + ctx.callId + '.json', JSON.stringify(info));
    await ctx.say('Sorry, nobody could take your call right now.');
  },
});`;
}

/** Share of a frame's energy at 440 Hz (Goertzel): near 1 for the hold tone, low for speech. */
function toneShare(pcm: Int16Array): number {
  const k = (2 * Math.PI * 440) / 8000;
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (const x of pcm) {
    const s = x + 2 * Math.cos(k) * s1 - s2;
    s2 = s1;
    s1 = s;
    total += x * x;
  }
  const power = s1 * s1 + s2 * s2 - 2 * Math.cos(k) * s1 * s2;
  return total === 0 ? 0 : (2 * power) / (pcm.length * total);
}
const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((a, x) => a + x * x, 0) / pcm.length);

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: Gw;
  const work = tmpDir('sb-warm-');
  before(async () => {
    gw = await startTestGateway({ ...(process.env.WARM_DEBUG ? { logLevel: 'debug' } : {}), env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31200-31399' } });
    const file = path.join(work, 'handover.ts');
    fs.writeFileSync(file, agentSource(work));
    const bundle = await bundleAgent(file);
    const res = await fetch(`${gw.publicUrl}/v1/agents/handover/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(res.status, 201, await res.text());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    for (const n of [ACCEPT, DECLINE]) resultOf(await gw.store.submit(number_added, { number: n, agent: 'handover', provider: 'sip', consent_policy_id: p.policy_id }, who));
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

  async function call(to: string): Promise<{ ua: SipUa; callId: string }> {
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: to.slice(1) });
    const r = await ua.invite();
    assert.equal(r.status, 200);
    const row = await waitFor(() => read().calls.findOne({ provider: 'sip', provider_call_id: ua.callId }), 10_000, 'the call row');
    return { ua, callId: row.id };
  }

  test('the human presses 1: the caller hears hold, then the human; each step is a row', { timeout: 120_000 }, async () => {
    const human = await startSippUas({ scenario: 'uas_warm_accept.xml', ip: '127.0.0.1', port: 5070, timeoutS: 90 });
    const { ua, callId } = await call(ACCEPT);
    try {
      await waitFor(() => reasons(callId).includes('warm:hold'), 60_000, 'warm:hold');
      const atHold = ua.media.received.length;
      await waitFor(() => reasons(callId).includes('warm:bridged'), 60_000, 'warm:bridged');
      const atBridge = ua.media.received.length;
      // The human talks after pressing 1: wait for a second of its speech to reach the caller.
      const speech = (from: number) => ua.media.received.slice(from).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300 && toneShare(f) < 0.5).length;
      await waitFor(() => speech(atBridge) >= 50, 30_000, "the human's speech at the caller");
      const held = ua.media.received.slice(atHold, atBridge).map((b) => muLawDecode(b));
      assert.ok(held.filter((f) => rms(f) > 300 && toneShare(f) > 0.8).length >= 10, 'the caller heard the hold tone while the human was dialled and briefed');
      assert.equal(held.filter((f) => rms(f) > 300 && toneShare(f) < 0.5).length, 0, 'nothing but the hold tone (and its pauses) while on hold');

      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:bridged']);
      const rows = read().call_matrices.find({ call_id: callId });
      const humanCallId = rows.find((r) => r.reason === 'warm:bridged')!.peer_call_id!;
      assert.ok(humanCallId);
      const humanCall = read().calls.get(humanCallId)!;
      assert.deepEqual([humanCall.direction, humanCall.provider, humanCall.to_uri, humanCall.from_uri], ['outbound', 'sip', 'sip:human@127.0.0.1:5070', ACCEPT]);
      assert.ok(humanCall.answered_at !== null);
      assert.deepEqual(rows.find((r) => r.reason === 'warm:bridged')!.hears, { caller: ['human-1'], 'human-1': ['caller'] });
      assert.deepEqual(rows.find((r) => r.reason === 'warm:brief')!.hears, { agent: ['caller'], caller: ['hold'], 'human-1': ['agent'] });

      // The human hangs up: the bridged call ends with it.
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      await waitFor(() => read().calls.get(callId)?.state === 'ended', 20_000, 'the caller’s call ended');
      assert.equal(read().calls.get(callId)!.end_reason, 'transfer: the human hung up');
      assert.equal(read().calls.get(humanCallId)!.state, 'ended');
      assert.equal(fs.existsSync(path.join(work, `failed-${callId}.json`)), false, 'onTransferFailed did not run');
    } finally {
      human.kill();
      ua.close();
    }
  });

  test('the human presses 2: the caller is back with the agent, and onTransferFailed got declined', { timeout: 120_000 }, async () => {
    const human = await startSippUas({ scenario: 'uas_warm_decline.xml', ip: '127.0.0.1', port: 5071, timeoutS: 90 });
    const { ua, callId } = await call(DECLINE);
    try {
      const failed = path.join(work, `failed-${callId}.json`);
      await waitFor(() => fs.existsSync(failed) && fs.statSync(failed).size > 0, 60_000, 'onTransferFailed');
      assert.deepEqual(JSON.parse(fs.readFileSync(failed, 'utf8')), { reason: 'declined', target: 'sip:human@127.0.0.1:5071' });
      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:failed:declined']);
      const last = read().call_matrices.find({ call_id: callId }).find((r) => r.reason === 'warm:failed:declined')!;
      assert.deepEqual(last.hears, { agent: ['caller'], caller: ['agent'] }, 'back to caller ⇄ agent');
      const run = await human.done;
      assert.equal(run.code, 0, `the human got our BYE: ${run.output}`);
      const humanCall = read().calls.get(last.peer_call_id!)!;
      assert.equal(humanCall.state, 'ended');
      assert.equal(humanCall.end_reason, 'transfer:declined');
      // The caller is with the agent again: its apology reaches the caller's peer, and the call goes on.
      const before = ua.media.received.length;
      await waitFor(() => ua.media.received.slice(before).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300 && toneShare(f) < 0.5).length >= 25, 30_000, "the agent's words at the caller");
      assert.notEqual(read().calls.get(callId)!.state, 'ended');
    } finally {
      human.kill();
      if (process.env.WARM_DEBUG) console.log('SIPP', (await human.done).output);
      ua.close();
    }
  });
}
