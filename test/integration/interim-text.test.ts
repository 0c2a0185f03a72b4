/**
 * `onUtterance` gets the recogniser's interim text (`final: false`) when the agent asks for it
 * (`turnTaking: { utterance: { interim: true } }`), then the final text (`final: true`); only the final is a transcript
 * segment. The recogniser is the real @deepgram/sdk client against fake-deepgram, which sends an interim result
 * (the first half of the words) and then the final one over the live socket. The caller's line is a MemoryLeg driven in
 * real time (a tone stands for the voice). A second call to an agent that did not ask gets the final only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { startFakeDeepgram, type FakeDeepgram } from '../helpers/fake-deepgram.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';

type TestGateway = Awaited<ReturnType<typeof startTestGateway>>;
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_answered, call_received, number_added } from '../../schema/reducers.ts';

const open: Array<() => unknown> = [];
after(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

const agent = (name: string, interim: boolean): string => `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: '${name}',
  ${interim ? 'turnTaking: { utterance: { interim: true } },' : ''}
  async onUtterance(ctx, u) { await ctx.note((u.final ? 'final: ' : 'interim: ') + String(u.text)); },
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

/** One call to `name`: the caller talks for 1.2 s from 1 s of audio; the recogniser reports at 2 s. Returns the notes. */
async function callOnce(gw: TestGateway, fake: FakeDeepgram, name: string, number: string, interim: boolean): Promise<{ notes: string[]; callId: string }> {
  const who = { tenant: 'default', caller: 'test' };
  const file = path.join(tmpDir('sb-interim-'), `${name}.ts`);
  fs.writeFileSync(file, agent(name, interim));
  await gw.agents.deploy('default', 'system:test', name, (await bundleAgent(file)).code, { rollout: 100, migrate: false });
  const num = resultOf<{ number_id: string }>(await gw.store.submit(number_added, { number, agent: name }, who));
  const call = resultOf<{ call_id: string }>(await gw.store.submit(call_received, { provider: 'webrtc', provider_call_id: `interim-${name}`, from: 'browser', to: number, number_id: num.number_id, agent: name }, who));
  resultOf(await gw.store.submit(call_answered, { call_id: call.call_id }, who));
  fake.script([{ afterMs: 2000, transcript: 'I would like to book a table for two', words: ['I', 'would', 'like', 'to', 'book', 'a', 'table', 'for', 'two'].map((w, i) => ({ word: w, start: 1 + i * 0.1, end: 1.1 + i * 0.1 })) }]);
  const leg = new MemoryLeg(false);
  open.push(() => leg.close('test over', true));
  let talkFrames = 0;
  const line = setInterval(() => {
    leg.speak(talkFrames > 0 ? 9000 : 0);
    if (talkFrames > 0) talkFrames--;
  }, 20);
  open.push(() => clearInterval(line));
  const listens = fake.requests.filter((r) => r.kind === 'listen').length;
  await gw.calls.attach({ tenant: 'default', callId: call.call_id }, leg);
  const listen = await until('the recogniser to connect', () => fake.requests.filter((r) => r.kind === 'listen')[listens]);
  await until('1 s of audio at the recogniser', () => listen.audioBytes >= 2 * 8000);
  talkFrames = 60;
  const notes = () =>
    gw.store
      .read('default')
      .agent_actions.find({ call_id: call.call_id })
      .filter((a) => a.kind === 'note')
      .map((a) => (a.args as { text: string }).text);
  await until('the final turn', () => notes().some((n) => n.startsWith('final: '))).catch((err: Error) => {
    throw new Error(`${err.message}; notes so far: ${JSON.stringify(notes())}`);
  });
  return { notes: notes(), callId: call.call_id };
}

test('onUtterance gets interim then final text from Deepgram; only the final is transcribed; agents that did not ask get finals only', { timeout: 120_000 }, async () => {
  const fake = await startFakeDeepgram();
  open.push(() => fake.close());
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: fake.apiKey, DEEPGRAM_URL: fake.url } });
  open.push(() => gw.stop());

  const wants = await callOnce(gw, fake, 'eager', '+15557060001', true);
  assert.deepEqual(wants.notes, ['interim: I would like to book', 'final: I would like to book a table for two']);
  const res = await fetch(`${gw.publicUrl}/v1/calls/${wants.callId}/transcript?format=json`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  const body = JSON.stringify(await res.json());
  assert.ok(body.includes('I would like to book a table for two'), `the final is a segment: ${body}`);
  const segments = gw.store.read('default').transcript_segments.find({ call_id: wants.callId });
  assert.deepEqual(segments.map((s) => s.text), ['I would like to book a table for two'], 'one segment: the interim text was not written');

  const plain = await callOnce(gw, fake, 'plain', '+15557060002', false);
  assert.deepEqual(plain.notes, ['final: I would like to book a table for two']);
});
