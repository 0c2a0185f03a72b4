/**
 * A backchannel starts no agent turn; a sentence does (bridge/turn-taking.ts, bridge/turn-manager.ts). The caller's
 * line is a MemoryLeg driven in real time (a tone stands for the voice); the recogniser is the real @deepgram/sdk
 * client against fake-deepgram with nothing scripted, so no words come (which words count as acknowledgements is
 * unit-tested in test/unit/media/barge-in.test.ts). The agent (which declares its own `turnTaking`) speaks a long sentence at start and notes every
 * utterance it is given. The caller says "uh huh" (240 ms of voice) over the agent — a backchannel row, the say is
 * not interrupted, and no turn — then, once the agent is quiet, a sentence, which is a turn. Only action kinds and
 * statuses are read from the store (metadata); the say's result comes through the API.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { startFakeDeepgram } from '../helpers/fake-deepgram.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_answered, call_received, number_added } from '../../schema/reducers.ts';

const open: Array<() => unknown> = [];
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'listener',
  turnTaking: { bargeIn: { minSpeechMs: 700 }, endOfTurn: { trailingMs: 1500 } },
  async onStart(ctx) {
    const r = await ctx.say('Thank you for calling. Let me read you the details of your booking, which is for two people on Friday evening at the harbour restaurant.');
    await ctx.note('greeting ' + (r.interrupted ? 'interrupted' : 'finished'));
  },
  async onUtterance(ctx, u) { await ctx.note('heard: ' + String(u.text)); },
});
`;

async function until<T>(what: string, probe: () => T | undefined | null | false, boundMs = 60_000): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('"uh huh" over the agent is a backchannel that starts no turn; a sentence afterwards is a turn', { timeout: 120_000 }, async () => {
  const fake = await startFakeDeepgram();
  open.push(() => fake.close());
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: fake.apiKey, DEEPGRAM_URL: fake.url } });
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const file = path.join(tmpDir('sb-listener-'), 'listener.ts');
  fs.writeFileSync(file, AGENT);
  await gw.agents.deploy('default', 'system:test', 'listener', (await bundleAgent(file)).code, { rollout: 100, migrate: false });
  const num = resultOf<{ number_id: string }>(await gw.store.submit(number_added, { number: '+15557050000', agent: 'listener' }, who));
  const call = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'webrtc', provider_call_id: 'backchannel-1', from: 'browser', to: '+15557050000', number_id: num.number_id, agent: 'listener' }, who),
  );
  resultOf(await gw.store.submit(call_answered, { call_id: call.call_id }, who));

  const leg = new MemoryLeg(false);
  open.push(() => leg.close('test over', true));
  let talkFrames = 0;
  const line = setInterval(() => {
    leg.speak(talkFrames > 0 ? 9000 : 0);
    if (talkFrames > 0) talkFrames--;
  }, 20);
  open.push(() => clearInterval(line));
  await gw.calls.attach({ tenant: 'default', callId: call.call_id }, leg);
  await until('the recogniser to connect', () => fake.requests.find((r) => r.kind === 'listen'));
  const actions = () => gw.store.read('default').agent_actions.find({ call_id: call.call_id });
  const say = await until('the agent speaking', () => actions().find((a) => a.kind === 'say'));
  await until('agent audio flowing', () => gw.calls.get(call.call_id)?.pipeline.agentSpeaking === true);
  // The agent's options crossed from its worker thread as declared (merged over the defaults where used).
  assert.deepEqual(gw.calls.get(call.call_id)?.currentAgent.turnTaking, { bargeIn: { minSpeechMs: 700 }, endOfTurn: { trailingMs: 1500 } });
  const sent = leg.sentFrames.length;
  await until('half a second of it', () => leg.sentFrames.length > sent + 25);

  talkFrames = 12; // "uh huh": 240 ms of voice
  await until('the backchannel decided', () => gw.store.read('default').turn_decisions.find({ call_id: call.call_id }).length > 0);
  const decisions = () => gw.store.read('default').turn_decisions.find({ call_id: call.call_id }).map((d) => d.decision);
  assert.deepEqual(decisions(), ['backchannel']);
  await until('the greeting finished', () => actions().find((a) => a.id === say.id && a.status === 'succeeded'));
  // The say's result through the API (GET /v1/calls/:id opens sealed content for a permitted reader).
  const detail = (await (await fetch(`${gw.publicUrl}/v1/calls/${call.call_id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { agent_actions: Array<{ id: string; result: { interrupted: boolean } | null }> };
  assert.equal(detail.agent_actions.find((a) => a.id === say.id)?.result?.interrupted, false, 'the agent was not interrupted');

  // A sentence, once the agent is quiet: 1.2 s of voice.
  talkFrames = 60;
  await until('the sentence answered', () => actions().filter((a) => a.kind === 'note').length >= 2);
  const kinds = actions().map((a) => a.kind);
  assert.deepEqual(kinds.filter((k) => k === 'note').length, 2, `one note for the greeting, one for the sentence (the backchannel made none): ${kinds.join(', ')}`);
  assert.deepEqual(decisions(), ['backchannel'], 'the sentence came when the agent was quiet: no decision');
});
