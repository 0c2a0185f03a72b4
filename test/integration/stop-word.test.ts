/**
 * A stop word over the agent interrupts it at once, before `bargeIn.minSpeechMs` (bridge/stop-words.ts). The
 * recogniser is the real @deepgram/sdk client against fake-deepgram, which sends "stop" as an interim result while
 * the caller speaks over the agent's long greeting (then the final, once the caller is done). The caller's voice is
 * 240 ms of tone on a MemoryLeg — far under the 600 ms that would interrupt by voice, so only the word can. Read back:
 * the `turn_decisions` row (metadata: interrupted, by `stop_word`), the say's result through the API, and the turn
 * the caller's "stop" then gets.
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
  name: 'reader',
  async onStart(ctx) {
    const r = await ctx.say('Thank you for calling. Let me read you the details of your booking, which is for two people on Friday evening at the harbour restaurant, with a table by the window and a birthday cake for dessert.');
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

test('"stop" heard as interim text over the agent interrupts it before minSpeechMs; the word is then an utterance', { timeout: 120_000 }, async () => {
  const fake = await startFakeDeepgram();
  open.push(() => fake.close());
  // Seconds of caller audio at the recogniser: the caller speaks at ~4.0–4.24 s; "stop" comes as interim text at
  // 4.15 s, its final at 5 s.
  fake.script([
    { afterMs: 4150, transcript: 'stop', emit: 'interim', words: [{ word: 'stop', start: 4.0, end: 4.15 }] },
    { afterMs: 5000, transcript: 'Stop.', words: [{ word: 'stop', start: 4.0, end: 4.24 }] },
  ]);
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: fake.apiKey, DEEPGRAM_URL: fake.url } });
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const file = path.join(tmpDir('sb-stop-'), 'reader.ts');
  fs.writeFileSync(file, AGENT);
  await gw.agents.deploy('default', 'system:test', 'reader', (await bundleAgent(file)).code, { rollout: 100, migrate: false });
  const num = resultOf<{ number_id: string }>(await gw.store.submit(number_added, { number: '+15557080000', agent: 'reader' }, who));
  const call = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'webrtc', provider_call_id: 'stop-word-1', from: 'browser', to: '+15557080000', number_id: num.number_id, agent: 'reader' }, who),
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
  const listen = await until('the recogniser to connect', () => fake.requests.find((r) => r.kind === 'listen'));
  await until('4 s of audio at the recogniser', () => listen.audioBytes >= 2 * 8000 * 4.0);
  assert.equal(gw.calls.get(call.call_id)?.pipeline.agentSpeaking, true, 'the agent is speaking when the caller starts');
  talkFrames = 12; // 240 ms of voice

  const decisions = () => gw.store.read('default').turn_decisions.find({ call_id: call.call_id });
  const decision = await until('the decision', () => decisions()[0]);
  assert.equal(decision.decision, 'interrupted');
  assert.equal(decision.by, 'stop_word');
  assert.ok(decision.voiced_ms < 600, `decided on the word, ${decision.voiced_ms} ms into the voice`);
  const actions = () => gw.store.read('default').agent_actions.find({ call_id: call.call_id });
  const notes = () => actions().filter((a) => a.kind === 'note').map((a) => (a.args as { text: string }).text);
  await until('the greeting note and the turn for "stop"', () => notes().length >= 2).catch((err: Error) => {
    throw new Error(`${err.message}; notes: ${JSON.stringify(notes())}`);
  });
  assert.deepEqual(notes(), ['greeting interrupted', 'heard: Stop.']);
  const say = actions().find((a) => a.kind === 'say');
  const detail = (await (await fetch(`${gw.publicUrl}/v1/calls/${call.call_id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { agent_actions: Array<{ id: string; result: { interrupted: boolean } | null }> };
  assert.equal(detail.agent_actions.find((a) => a.id === say?.id)?.result?.interrupted, true);
  assert.equal(decisions().length, 1, 'one decision: the stop word; the voice never became a backchannel');
});
