/**
 * kill -9 during a bridged warm transfer (SIP caller, sipp human, in a private network namespace): the restarted
 * gateway resumes both SIP dialogs from the store, recognises the human's leg by the call's matrix row (it gets no
 * agent session of its own), mixes it back in with the caller's (the log says the bridge was rebuilt from the row),
 * and the human's speech after the restart reaches the caller's peer; the human's BYE then ends both calls.
 * Assertions are on what the caller receives, the log lines and the rows, never on durations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { muLawDecode } from '../../media/g711.ts';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { ADMIN_TOKEN, freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15557320001';

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'handover',
  async onStart(ctx) { await ctx.transfer('sip:human@127.0.0.1:5072', { mode: 'warm', summary: 'A refund question.', timeoutMs: 25000 }); },
});`;

const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((a, x) => a + x * x, 0) / pcm.length);
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
  return total === 0 ? 0 : (2 * (s1 * s1 + s2 * s2 - 2 * Math.cos(k) * s1 * s2)) / (pcm.length * total);
}

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: GatewayProcess | null = null;
  after(async () => {
    await gw?.stop();
  });
  async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}${gw ? `\n${gw.logs.slice(-15).join('\n')}` : ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test('kill -9 while bridged: the bridge comes back from the matrix row, the caller hears the human again', { timeout: 200_000 }, async () => {
    const port = await freePort();
    const dataDir = tmpDir('sb-warm-kill9-');
    const env = { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31400-31499' };
    gw = await spawnGateway({ port, dataDir, env });
    const base = `http://127.0.0.1:${port}`;
    const work = tmpDir('sb-warm-kill9-agent-');
    fs.writeFileSync(path.join(work, 'handover.ts'), AGENT);
    const bundle = await bundleAgent(path.join(work, 'handover.ts'));
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
    assert.equal((await fetch(`${base}/v1/agents/handover/deploy`, { method: 'POST', headers: { ...headers, 'content-type': 'application/javascript' }, body: bundle.code })).status, 201);
    const post = (p: string, body: unknown) => fetch(`${base}${p}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('/v1/consent-policies', { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' })).status, 201);
    assert.equal((await post('/v1/numbers', { number: NUMBER, agent: 'handover', consent_policy: 'short', provider: 'sip' })).status, 201);

    const human = await startSippUas({ scenario: 'uas_warm_kill.xml', ip: '127.0.0.1', port: 5072, timeoutS: 150 });
    const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: 5060 }, to: NUMBER.slice(1) });
    try {
      assert.equal((await ua.invite()).status, 200);
      await waitFor(() => gw!.logs.some((l) => l.includes('caller and human bridged')), 60_000, 'the bridge');
      await gw.kill9();
      gw = await spawnGateway({ port, dataDir, env });
      await waitFor(() => gw!.logs.some((l) => l.includes('bridge rebuilt from the call matrix row after a restart')), 30_000, 'the bridge rebuilt');
      const from = ua.media.received.length;
      await waitFor(() => ua.media.received.slice(from).map((b) => muLawDecode(b)).filter((f) => rms(f) > 300 && toneShare(f) < 0.5).length >= 50, 60_000, "the human's speech at the caller after the restart");
      const run = await human.done;
      assert.equal(run.code, 0, run.output);
      await new Promise((r) => setTimeout(r, 500));
      await gw.stop();
      gw = null;
    } finally {
      human.kill();
      ua.close();
    }
    const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
    try {
      const read = store.read('default');
      const caller = read.calls.find({ direction: 'inbound' })[0]!;
      const rows = read.call_matrices.find({ call_id: caller.id }).sort((a, b) => a.n - b.n);
      assert.deepEqual(rows.map((r) => r.reason), ['warm:hold', 'warm:brief', 'warm:bridged'], 'no new row: the restart rebuilt the matrix in force');
      const humanCall = read.calls.get(rows[2]!.peer_call_id!)!;
      assert.equal(humanCall.state, 'ended');
      assert.equal(read.calls.get(caller.id)!.state, 'ended');
      assert.equal(read.calls.get(caller.id)!.end_reason, 'transfer: the human hung up');
      assert.equal(read.agent_state.get(humanCall.id), undefined, 'no agent ran on the human');
    } finally {
      store.close();
    }
  });
}
