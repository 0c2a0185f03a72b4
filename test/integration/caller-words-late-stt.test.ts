/**
 * A slow recogniser does not shift the caller's words onto the wrong turn. The recogniser here is the real
 * @deepgram/sdk client against fake-deepgram (a test double of Deepgram's cloud API, scripted: it does not recognise
 * speech), told to report the first sentence ~4 s after the caller stopped — later than the 1.5 s a turn used to wait.
 * The agent writes what each turn heard as a note. Before: the first turn heard nothing, and the second turn was
 * handed the FIRST sentence (the agent answered the previous request; the real one was never delivered).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { startFakeDeepgram } from '../helpers/fake-deepgram.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_answered, call_received, number_added } from '../../schema/reducers.ts';

const open: Array<() => unknown> = [];
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

const ECHO = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'echo',
  async onUtterance(ctx, u) { await ctx.note('heard: ' + String(u.text)); },
});
`;

async function until<T>(what: string, probe: () => T | undefined | null | false, boundMs = 60_000): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('each turn gets its own sentence when the recogniser is seconds late', { timeout: 120_000 }, async () => {
  const fake = await startFakeDeepgram();
  open.push(() => fake.close());
  // Positions are seconds of caller audio the recogniser received. The caller speaks at ~0.0–1.2 s (the VAD
  // releases ~1.6 s) and at ~9.0–10.2 s; the first sentence is reported only at 6 s of audio, the second promptly.
  fake.script([
    { afterMs: 6000, transcript: 'I need an appointment', words: [{ word: 'I', start: 0.05, end: 0.3 }, { word: 'need', start: 0.3, end: 0.6 }, { word: 'an', start: 0.6, end: 0.8 }, { word: 'appointment', start: 0.8, end: 2.2 }] },
    { afterMs: 11_000, transcript: 'on Tuesday please', words: [{ word: 'on', start: 9.0, end: 9.3 }, { word: 'Tuesday', start: 9.3, end: 9.8 }, { word: 'please', start: 9.8, end: 10.6 }] },
  ]);
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: fake.apiKey, DEEPGRAM_URL: fake.url } });
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const dir = tmpDir('sb-echo-');
  const file = path.join(dir, 'echo.ts');
  fs.writeFileSync(file, ECHO);
  await gw.agents.deploy('default', 'system:test', 'echo', (await bundleAgent(file)).code, { rollout: 100, migrate: false });
  const num = resultOf<{ number_id: string }>(await gw.store.submit(number_added, { number: '+15557040000', agent: 'echo' }, who));
  const call = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'webrtc', provider_call_id: 'late-stt-1', from: 'browser', to: '+15557040000', number_id: num.number_id, agent: 'echo' }, who),
  );
  resultOf(await gw.store.submit(call_answered, { call_id: call.call_id }, who));

  const leg = new MemoryLeg(false);
  open.push(() => leg.close('test over', true));
  // The caller's line in real time: silence until told to talk.
  let talkFrames = 0;
  const line = setInterval(() => {
    leg.speak(talkFrames > 0 ? 9000 : 0);
    if (talkFrames > 0) talkFrames--;
  }, 20);
  open.push(() => clearInterval(line));
  await gw.calls.attach({ tenant: 'default', callId: call.call_id }, leg);
  const listen = await until('the recogniser to connect', () => fake.requests.find((r) => r.kind === 'listen'));
  const receivedS = () => listen.audioBytes / (2 * 8000);
  talkFrames = 60; // 1.2 s of voice
  await until('9 s of audio at the recogniser', () => receivedS() >= 9.0);
  talkFrames = 60;

  const notes = () =>
    gw.store
      .read('default')
      .agent_actions.find({ call_id: call.call_id })
      .filter((a) => a.kind === 'note')
      .map((a) => (a.args as { text: string }).text);
  const heard = await until('two turns', () => (notes().length >= 2 ? notes() : null)).catch((err: Error) => {
    throw new Error(`${err.message}; notes so far: ${JSON.stringify(notes())}`);
  });
  assert.deepEqual(heard.slice(0, 2), ['heard: I need an appointment', 'heard: on Tuesday please']);
});
