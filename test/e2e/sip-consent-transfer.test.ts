/**
 * Consent `on_decline: transfer` on a SIP call (bridge/consent-manager.ts, bridge/transfer-dial.ts), in a private
 * network namespace (sipp listens on a fixed port there). The SIP route has no REFER `transfer`, so the gateway dials
 * the policy's target itself and bridges it: the caller (the scripted UA) declines with RFC 4733 `2`, hears hold,
 * then the desk (a sipp UAS that talks); the rows show `blind:hold` ─► `blind:bridged` naming the desk's call, the
 * consent is `declined`, and nothing is recorded. An agent's own blind `ctx.transfer(target)` on such a route takes the
 * same path: `blind:hold` ─► `blind:bridged`, its transfer action succeeded.
 *
 * Assertions are on what the peers receive and on rows, never on durations.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { bundleAgent } from '../../agents/bundle.ts';
import { muLawDecode } from '../../media/g711.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557340001';
const DESK = 'sip:desk@127.0.0.1:5074';
const BLIND = '+15557340002';
const DESK2 = 'sip:desk@127.0.0.1:5079';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((a, x) => a + x * x, 0) / pcm.length);

if (insidePrivateNetwork(import.meta.filename, 200_000)) {
  let gw: Gw;
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31700-31799' } });
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'optin', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', on_decline: 'transfer', transfer_target: DESK }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'sip', consent_policy_id: p.policy_id }, who));
    const file = path.join(tmpDir('sb-blind-'), 'blind.ts');
    fs.writeFileSync(file, `import { defineAgent } from 'switchboard/agent';\nexport default defineAgent({ name: 'blind', async onStart(ctx) { await ctx.transfer('${DESK2}'); } });`);
    const res = await fetch(`${gw.publicUrl}/v1/agents/blind/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: (await bundleAgent(file)).code });
    assert.equal(res.status, 201, await res.text());
    const n = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    resultOf(await gw.store.submit(number_added, { number: BLIND, agent: 'blind', provider: 'sip', consent_policy_id: n.policy_id }, who));
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

  test('the caller declines with 2: the desk is dialled and bridged, each step is a row, nothing is recorded', { timeout: 150_000 }, async () => {
    const desk = await startSippUas({ scenario: 'uas_desk_talk.xml', ip: '127.0.0.1', port: 5074, timeoutS: 120 });
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: NUMBER.slice(1) });
    try {
      assert.equal((await ua.invite()).status, 200);
      const callId = (await waitFor(() => read().calls.findOne({ provider: 'sip', provider_call_id: ua.callId }), 10_000, 'the call row')).id;
      await waitFor(() => read().calls.get(callId)?.state === 'consenting', 20_000, 'consent asked');
      await waitFor(() => ua.media.sendDtmf('2'), 5_000, 'DTMF sent');
      await waitFor(() => reasons(callId).includes('blind:bridged'), 60_000, 'blind:bridged');
      const atBridge = ua.media.received.length;
      assert.deepEqual(reasons(callId), ['blind:hold', 'blind:bridged']);
      const bridged = read().call_matrices.find({ call_id: callId }).find((r) => r.reason === 'blind:bridged')!;
      assert.deepEqual(bridged.hears, { caller: ['human-1'], 'human-1': ['caller'] });
      const deskCall = read().calls.get(bridged.peer_call_id!)!;
      assert.deepEqual([deskCall.direction, deskCall.provider, deskCall.to_uri, deskCall.from_uri], ['outbound', 'sip', DESK, NUMBER]);
      assert.ok(deskCall.answered_at !== null);
      assert.equal(read().consents.find({ call_id: callId })[0]?.outcome, 'declined');
      // The desk talks: its speech reaches the caller.
      await waitFor(() => ua.media.received.slice(atBridge).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300).length >= 50, 30_000, "the desk's speech at the caller");
      assert.equal(await ua.bye(), 200);
      await waitFor(() => read().calls.get(callId)?.state === 'ended', 10_000, "the caller's call ended");
      await waitFor(() => read().calls.get(deskCall.id)?.state === 'ended', 10_000, "the desk's call ended with it");
      assert.equal(read().recordings.find({ call_id: callId }).length, 0, 'nothing recorded');
      const run = await desk.done;
      assert.equal(run.code, 0, run.output);
      assert.ok(run.messages.some((m) => m.dir === 'received' && /^INVITE /.test(m.first)), 'the desk received the INVITE');
    } finally {
      ua.close();
      desk.kill();
    }
  });

  test("an agent's blind transfer on a SIP route without REFER: dialled and bridged, the action succeeded", { timeout: 120_000 }, async () => {
    const desk = await startSippUas({ scenario: 'uas_desk_talk.xml', ip: '127.0.0.1', port: 5079, timeoutS: 90 });
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: BLIND.slice(1) });
    try {
      assert.equal((await ua.invite()).status, 200);
      const callId = (await waitFor(() => read().calls.findOne({ provider: 'sip', provider_call_id: ua.callId }), 10_000, 'the call row')).id;
      await waitFor(() => reasons(callId).includes('blind:bridged'), 60_000, 'blind:bridged');
      assert.deepEqual(reasons(callId), ['blind:hold', 'blind:bridged']);
      await waitFor(() => read().agent_actions.find({ call_id: callId }).find((a) => a.kind === 'transfer' && a.status === 'succeeded'), 10_000, 'the transfer action succeeded');
      assert.equal(await ua.bye(), 200);
      const run = await desk.done;
      assert.equal(run.code, 0, run.output);
    } finally {
      ua.close();
      desk.kill();
    }
  });
}
