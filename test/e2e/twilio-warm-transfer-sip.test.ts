/**
 * Issue 16's first "must be shown": a Twilio-peer caller warm-transferred to a sipp UAS "human" that presses 1, in a
 * private network namespace (sipp listens on a fixed port there; the Twilio peer speaks HTTP and WebSocket to the
 * gateway). The number has no provider, so the dial router places the human's call with the SIP dialer (a sip:
 * target). The agent warm-transfers on start with a summary:
 *
 *  - the caller's peer receives the hold tone, then the human's speech (sipp's A-law recording);
 *  - the summary is for the human only: the `warm:brief` row has the human hearing the agent and the caller hearing
 *    hold (sipp keeps no record of the audio it receives, so the human's side is shown by the row, not by audio);
 *  - the recording (consent `notify`: recorded) holds the bridged conversation: its second channel — what the caller
 *    heard — has the hold tone and then the human's speech;
 *  - events show each step: `warm:hold`, `warm:brief`, `warm:bridged` rows, the human's own call (dialled, answered).
 *
 * Assertions are on what the peers receive, the recording's audio and rows, never on durations.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { muLawDecode } from '../../media/g711.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557360001';
const HUMAN = 'sip:human@127.0.0.1:5076';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'handover',
  async onStart(ctx) {
    await ctx.transfer('${HUMAN}', { mode: 'warm', summary: 'A caller needs help with a refund.', timeoutMs: 25000 });
  },
});`;

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
const isTone = (f: Int16Array): boolean => rms(f) > 300 && toneShare(f) > 0.8;
const isSpeech = (f: Int16Array): boolean => rms(f) > 300 && toneShare(f) < 0.5;

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: Gw;
  const work = tmpDir('sb-twilio-warm-');
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31900-31999', SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
    const file = path.join(work, 'handover.ts');
    fs.writeFileSync(file, AGENT);
    const bundle = await bundleAgent(file);
    const res = await fetch(`${gw.publicUrl}/v1/agents/handover/deploy`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(res.status, 201, await res.text());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded.' }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'handover', consent_policy_id: p.policy_id }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  const reasons = (callId: string): string[] => read().call_matrices.find({ call_id: callId }).sort((a, b) => a.n - b.n).map((r) => r.reason);

  test('a Twilio caller warm-transferred to a SIP human who presses 1: hold, then the human; recorded; each step a row', { timeout: 180_000 }, async () => {
    const human = await startSippUas({ scenario: 'uas_warm_accept.xml', ip: '127.0.0.1', port: 5076, timeoutS: 120 });
    const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444', redirectRetryMs: 5000 });
    try {
      assert.equal((await peer.dial()).kind, 'streaming');
      const call = () => read().calls.findOne({ provider: 'twilio', provider_call_id: peer.callSid })!;
      await peer.waitFor(() => reasons(call().id).includes('warm:hold'), 60_000, 'warm:hold');
      const atHold = peer.received.length;
      await peer.waitFor(() => reasons(call().id).includes('warm:bridged'), 60_000, 'warm:bridged');
      const atBridge = peer.received.length;
      const frames = (from: number, to?: number) => peer.received.slice(from, to).map((b) => muLawDecode(b));
      await peer.waitFor(() => frames(atBridge).filter(isSpeech).length >= 50, 30_000, "the human's speech at the caller");
      assert.ok(frames(atHold, atBridge).filter(isTone).length >= 10, 'the caller heard the hold tone while the human was dialled and briefed');
      assert.equal(frames(atHold, atBridge).filter(isSpeech).length, 0, 'nothing but hold while on hold');

      const callId = call().id;
      assert.deepEqual(reasons(callId), ['warm:hold', 'warm:brief', 'warm:bridged']);
      const rows = read().call_matrices.find({ call_id: callId });
      assert.deepEqual(rows.find((r) => r.reason === 'warm:brief')!.hears, { agent: ['caller'], caller: ['hold'], 'human-1': ['agent'] }, 'the human alone hears the summary');
      const humanCall = read().calls.get(rows.find((r) => r.reason === 'warm:bridged')!.peer_call_id!)!;
      assert.deepEqual([humanCall.direction, humanCall.provider, humanCall.to_uri], ['outbound', 'sip', HUMAN]);
      assert.ok(humanCall.answered_at !== null);
      const transfer = read().agent_actions.find({ call_id: callId }).find((a) => a.kind === 'transfer');
      assert.ok(transfer, 'the transfer is an agent action row');

      // The human hangs up (its scenario's BYE): the bridged call ends, and its recording settles.
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      await peer.waitFor(() => call().state === 'ended', 20_000, 'the call ended');
      assert.equal(call().end_reason, 'transfer: the human hung up');
      await peer.waitFor(() => read().recordings.find({ call_id: callId }).every((r) => r.status === 'finalized' || r.status === 'failed'), 60_000, 'recording settled');
      await gw.recordings.idle();
      const res = await fetch(`${gw.publicUrl}/v1/calls/${callId}/recording?format=wav`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-switchboard-purpose': 'test' } });
      assert.equal(res.status, 200, await res.clone().text());
      const file = path.join(work, 'rec.wav');
      fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
      const heard: Int16Array[] = []; // the second channel (what the caller heard), 20 ms at a time
      for (let off = 0; off + 640 <= pcm.length; off += 640) {
        const f = new Int16Array(160);
        for (let i = 0; i < 160; i++) f[i] = pcm.readInt16LE(off + i * 4 + 2);
        heard.push(f);
      }
      const firstTone = heard.findIndex(isTone);
      assert.ok(firstTone >= 0, 'the recording has the hold tone');
      const speechAfter = heard.slice(firstTone).filter(isSpeech).length;
      assert.ok(speechAfter >= 50, `the recording has the human's speech after the hold (${speechAfter} frames)`);
    } finally {
      human.kill();
      await peer.close();
    }
  });
}
