/**
 * A warm transfer whose time runs out while the human still rings (bridge/transfer-warm.ts, ingress/sip/uac.ts
 * `cancel`), in a private network namespace (sipp listens on a fixed port there): the human is a sipp UAS that rings
 * and never answers. The gateway sends CANCEL (RFC 3261 §9.1) for the human's INVITE, the 487 is ACKed (sipp's
 * scenario ends cleanly only then), the human's call ends `transfer:no_answer`, the caller is back with the agent
 * (`warm:failed:no_answer`) and the agent's `onTransferFailed` got `no_answer` (written to a file by the agent).
 * Meanwhile the caller heard the number's hold WAV (SWITCHBOARD_HOLD_AUDIO: a 1 kHz clip), not the 440 Hz tone.
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

const NUMBER = '+15557350001';

/** A WAV of 16-bit PCM, mono, 8 kHz: one second of 1 kHz. */
function holdWav(): Buffer {
  const n = 8000;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Share of a frame's energy at `hz` (Goertzel). */
function share(pcm: Int16Array, hz: number): number {
  const k = (2 * Math.PI * hz) / 8000;
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
    const wav = path.join(work, 'hold.wav');
    fs.writeFileSync(wav, holdWav());
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31800-31899', SWITCHBOARD_HOLD_AUDIO: `${NUMBER}=${wav}, *=tone` } });
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
      const frames = ua.media.received.map((b) => muLawDecode(b)).filter((f) => Math.sqrt(f.reduce((a, x) => a + x * x, 0) / f.length) > 300);
      assert.ok(frames.filter((f) => share(f, 1000) > 0.8).length >= 25, "the caller's peer received the hold WAV (1 kHz)");
      assert.equal(frames.filter((f) => share(f, 440) > 0.8).length, 0, 'and not the tone');
      assert.equal(await ua.bye(), 200);
    } finally {
      ua.close();
      human.kill();
    }
  });
}
