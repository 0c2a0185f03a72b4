/**
 * A live call to supervise (the supervisor e2e tests): a gateway with the local speech engines, an agent `desk`
 * deployed as a real bundle (it greets, answers each utterance, notes each whisper `whisper: TEXT` and each resume
 * `resume: REASON TRANSCRIPT-JSON`, and after a hand-back says "I am back with you now."), a notify-consent number,
 * and a Twilio-peer caller whose call the agent has greeted. Readers for the rows the tests wait on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleAgent } from '../../agents/bundle.ts';
import { api } from './api.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from './gateway.ts';
import { tmpDir } from './tmp.ts';
import { TwilioPeer } from './twilio-peer.ts';

const NUMBER = '+15550131600';
export const GREETING = 'Hello, this is the billing desk.';
export const ANSWER = 'Thank you, I have noted that.';
export const BACK = 'I am back with you now.';

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'desk',
  async onStart(ctx) { await ctx.say(${JSON.stringify(GREETING)}); },
  async onUtterance(ctx) { await ctx.say(${JSON.stringify(ANSWER)}); },
  async onWhisper(ctx, text) { await ctx.note('whisper: ' + text); },
  async onResume(ctx, info) {
    await ctx.note('resume: ' + info.reason + ' ' + JSON.stringify(info.transcript));
    if (info.reason === 'handback') await ctx.say(${JSON.stringify(BACK)});
  },
});`;

export async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function supervisedCall(open: Array<() => Promise<unknown>>) {
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push(() => gw.stop());
  const base = gw.publicUrl;
  const ok = (r: { status: number; body: unknown }, status = 201) => {
    if (r.status !== status) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
  };
  ok(await api(base, 'POST', '/v1/consent-policies', { body: { name: 'notice', mode: 'notify', disclosure_text: 'This call is recorded.' } }));
  ok(await api(base, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'desk', consent_policy: 'notice', provider: 'twilio' } }));
  const work = tmpDir('sb-sup-');
  fs.writeFileSync(path.join(work, 'desk.ts'), AGENT);
  const bundle = await bundleAgent(path.join(work, 'desk.ts'));
  const dep = await fetch(`${base}/v1/agents/desk/deploy?rollout=100`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
  if (dep.status !== 201) throw new Error(`deploy: ${dep.status} ${await dep.text()}`);

  const caller = new TwilioPeer({ publicUrl: base, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444' });
  open.push(() => caller.close());
  await caller.dial();
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider: 'twilio', provider_call_id: caller.callSid })!;
  const actions = () => read().agent_actions.find({ call_id: call().id });
  const said = (status = 'succeeded') => actions().filter((a) => a.kind === 'say' && a.status === status).map((a) => (a.args as { text: string }).text);
  const notes = () => actions().filter((a) => a.kind === 'note').map((a) => String((a.args as { text?: unknown }).text ?? ''));
  const turns = () => [...gw.store.events()].filter((e) => e.reducer === 'agent_turn_started' && (e.args as { call_id: string }).call_id === call().id).length;
  const matrixReason = () => read().call_matrices.find({ call_id: call().id }).sort((a, b) => b.n - a.n)[0]?.reason;
  await waitUntil(() => said().includes(GREETING), 30_000, 'the agent greeted');
  return { gw, base, caller, callId: call().id, read, call, said, notes, turns, matrixReason };
}
