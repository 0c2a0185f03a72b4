/**
 * A warm transfer whose time runs out while the human still rings (bridge/transfer-warm.ts, ingress/sip/uac.ts
 * `cancel`), in a private network namespace (sipp listens on a fixed port there): the human is a sipp UAS that rings
 * and never answers. The gateway sends CANCEL (RFC 3261 §9.1) for the human's INVITE, the 487 is ACKed (sipp's
 * scenario ends cleanly only then), the human's call ends `transfer:no_answer`, the caller is back with the agent
 * (`warm:failed:no_answer`) and the agent's `onTransferFailed` got `no_answer` (written to a file by the agent).
 *
 * Assertions are on what the peers receive and on rows, never on durations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557350001';
const HUMAN = 'sip:human@127.0.0.1:5075';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

function agentSource(work: string): string {
  return `
import fs from 'node:fs';
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'ringer',
  async onStart(ctx) {
    await ctx.transfer('${HUMAN}', { mode: 'warm', summary: 'A caller.', timeoutMs: 4000 });
  },
  async onTransferFailed(ctx, info) {
    fs.writeFileSync(${JSON.stringify(work)} + '/failed-' + ctx.callId + '.json', JSON.stringify(info));
  },
});`;
}

if (insidePrivateNetwork(import.meta.filename, 200_000)) {
  let gw: Gw;
  const work = tmpDir('sb-warm-cancel-');
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31800-31899' } });
    const file = path.join(work, 'ringer.ts');
    fs.writeFileSync(file, agentSource(work));
    const bundle = await bundleAgent(file);
    const res = await fetch(`${gw.publicUrl}/v1/agents/ringer/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(res.status, 201, await res.text());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'ringer', provider: 'sip', consent_policy_id: p.policy_id }, who));
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

  test('the human rings past timeoutMs: CANCEL, 487 ACKed, the caller back with the agent, onTransferFailed no_answer', { timeout: 120_000 }, async () => {
    const human = await startSippUas({ scenario: 'uas_ring_cancel.xml', ip: '127.0.0.1', port: 5075, timeoutS: 90 });
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: NUMBER.slice(1) });
    try {
      assert.equal((await ua.invite()).status, 200);
      const callId = (await waitFor(() => read().calls.findOne({ provider: 'sip', provider_call_id: ua.callId }), 10_000, 'the call row')).id;
      const run = await human.done;
      assert.equal(run.code, 0, `the human's scenario ran to its end (CANCEL, 487, ACK): ${run.output}`);
      const cancel = run.messages.find((m) => m.dir === 'received' && /^CANCEL /.test(m.first));
      assert.ok(cancel, 'the human received CANCEL');
      const invite = run.messages.find((m) => m.dir === 'received' && /^INVITE /.test(m.first))!;
      const cseq = (text: string) => /^CSeq:\s*(\d+)/im.exec(text)?.[1];
      assert.equal(cseq(cancel.text), cseq(invite.text), "the CANCEL carries the INVITE's CSeq number");
      assert.ok(run.messages.some((m) => m.dir === 'received' && /^ACK /.test(m.first)), 'the 487 was ACKed');

      const failed = path.join(work, `failed-${callId}.json`);
      await waitFor(() => fs.existsSync(failed) && fs.statSync(failed).size > 0, 30_000, 'onTransferFailed');
      assert.deepEqual(JSON.parse(fs.readFileSync(failed, 'utf8')), { reason: 'no_answer', target: HUMAN });
      const rows = read().call_matrices.find({ call_id: callId }).sort((a, b) => a.n - b.n);
      assert.deepEqual(rows.map((r) => r.reason), ['warm:hold', 'warm:failed:no_answer']);
      const humanCall = read().calls.find({ to_uri: HUMAN })[0]!;
      assert.deepEqual([humanCall.state, humanCall.end_reason, humanCall.answered_at], ['ended', 'transfer:no_answer', null]);
      assert.notEqual(read().calls.get(callId)!.state, 'ended', 'the caller is still in the call, with the agent');
      assert.equal(await ua.bye(), 200);
    } finally {
      ua.close();
      human.kill();
    }
  });
}
