/**
 * LLM tool calling across a crash: a deployed agent (a real esbuild bundle in
 * a real worker thread) answers with `chatWithTools` against fake-llm, whose
 * model asks for two tools at once; the bridge's real `turnActions` writes
 * each call as an `agent_actions` row in a real store. The worker dies
 * (`process.exit`) mid-turn, after both tools ran and while the answer
 * streams; the restarted worker retries the turn, the model asks for the same
 * calls again, and the stored results come back without running the tools a
 * second time (the tools count their executions in a file). The turn's
 * spans show it: the `llm` requests that finished, each tool once run and once replayed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { bundleAgent } from '../../agents/bundle.ts';
import { WorkerAgent } from '../../agents/host/worker-agent.ts';
import type { SayResult } from '../../agents/sdk.ts';
import { turnActions, type TurnHost } from '../../bridge/turn-actions.ts';
import type { TraceSpan } from '../../telemetry/tracing.ts';
import { call_answered, call_received } from '../../schema/reducers.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { startFakeLlm, type FakeLlmMessage } from '../helpers/fake-llm.ts';
import { openTestStore, resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const dir = tmpDir('sb-llm-tools-crash-');
const cleanup: Array<() => Promise<unknown> | void> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const toolResults = (messages: FakeLlmMessage[]) => messages.filter((m) => m.role === 'tool').map((m) => m.content);

test('a worker crash mid-turn replays the stored tool results: the model gets them again, the tools do not run twice', { timeout: 60_000 }, async () => {
  const llm = await startFakeLlm({
    reply: (messages) =>
      toolResults(messages).length === 0
        ? { toolCalls: [{ name: 'find_slot', arguments: { day: 'tuesday' } }, { name: 'book_slot', arguments: { day: 'tuesday', time: '10:30' } }] }
        : `Found ${toolResults(messages).join(' and ')}. See you then.`,
  });
  cleanup.push(() => llm.close());
  const executions = path.join(dir, 'executions');
  const crashed = path.join(dir, 'crashed');
  const src = path.join(dir, 'agent.ts');
  fs.writeFileSync(
    src,
    `import fs from 'node:fs';
import { defineAgent } from 'switchboard/agent';
import { chatWithTools, speakStream } from 'switchboard/llm';
const count = (name) => { fs.appendFileSync(${JSON.stringify(executions)}, name + '\\n'); };
const tools = {
  find_slot: { description: 'Free times on a day', parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'] },
    run: (args) => { count('find_slot'); return { free: ['10:30'], day: args.day }; } },
  book_slot: { description: 'Books a time', parameters: { type: 'object', properties: { day: { type: 'string' }, time: { type: 'string' } }, required: ['day', 'time'] },
    run: (args, ctx) => { count('book_slot'); return { booked: true, reference: 'B-' + fs.readFileSync(${JSON.stringify(executions)}, 'utf8').split('\\n').length }; } },
};
/** Passes the answer on, but kills the worker at its first token the first time (after the tools ran). */
async function* crashOnce(tokens) {
  for await (const t of tokens) {
    if (!fs.existsSync(${JSON.stringify(crashed)})) { fs.writeFileSync(${JSON.stringify(crashed)}, ''); process.exit(1); }
    yield t;
  }
}
export default defineAgent({
  name: 'booker',
  tools,
  async onUtterance(ctx, u) {
    const messages = [{ role: 'user', content: u.text ?? '' }];
    const said = await speakStream(ctx, crashOnce(chatWithTools(ctx, { baseUrl: ${JSON.stringify(llm.url)}, apiKey: 'test-key', model: 'fake', messages, tools })));
    ctx.state.set('said', said);
  },
});
`,
  );
  const bundlePath = path.join(dir, 'agent.mjs');
  fs.writeFileSync(bundlePath, (await bundleAgent(src)).code);
  const crashes: Error[] = [];
  const agent = await WorkerAgent.start({ name: 'booker', version: 'v1', bundlePath, onCrash: (err) => crashes.push(err) });
  cleanup.push(() => agent.close());

  const store = openTestStore({ dataDir: path.join(dir, 'store') });
  cleanup.push(() => store.close());
  const as = { tenant: 'acme', caller: 'system:test' };
  await ensureTenant(store, 'acme');
  const { call_id: callId } = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-llm-tools', from: '+15550001111', to: '+15550002222', agent: 'booker' }, as));
  resultOf(await store.submit(call_answered, { call_id: callId }, as));

  const said: string[] = [];
  // The turn's spans, recorded: the LLM requests the worker reported and the tool spans (run or replayed).
  const spans: Array<{ name: string; attrs: Record<string, unknown>; events: string[]; ended: boolean }> = [];
  const recording = (name: string, attrs: Record<string, unknown> = {}): TraceSpan => {
    const rec = { name, attrs: { ...attrs }, events: [] as string[], ended: false };
    spans.push(rec);
    return {
      traceId: 'test',
      child: (n, a) => recording(n, a),
      setAttributes: (a) => void Object.assign(rec.attrs, a),
      event: (e) => void rec.events.push(e),
      end: () => void (rec.ended = true),
    };
  };
  const host: TurnHost = {
    spans: { turn: recording('turn'), agent: recording('agent'), firstAudio: recording('first_audio') },
    store,
    callId,
    log: pino({ level: 'silent' }),
    who: () => as,
    playSamples: async (): Promise<SayResult> => ({ durationMs: 100, heardMs: 100, interrupted: false }),
    synthesize: async (text) => {
      said.push(text);
      return new Int16Array(8);
    },
    outputRate: 8000,
    clockMs: () => 0,
    agentTranscript: () => undefined,
    hangup: async () => undefined,
    gather: async () => ({ kind: 'timeout' }),
  };
  const out = await agent.runTurn(
    { hook: 'onUtterance', callId, turn: 1, call: { from: '+15550001111', to: '+15550002222' }, state: {}, utterance: { text: 'Tuesday please', durationMs: 900 } },
    turnActions(host, agent, 1, 'onUtterance'),
  );

  assert.equal(crashes.length, 1, 'the worker crashed once');
  assert.equal(agent.stats.restarts, 1);
  assert.deepEqual(fs.readFileSync(executions, 'utf8').trim().split('\n').sort(), ['book_slot', 'find_slot'], 'each tool ran once');
  // Four requests: tools + answer, twice; the retry's answer request carries the stored results, the same as the first.
  assert.equal(llm.requests.length, 4);
  const first = toolResults(llm.requests[1]?.messages ?? []);
  const [found, booking] = first.map((c) => JSON.parse(c) as Record<string, unknown>);
  assert.deepEqual(found, { free: ['10:30'], day: 'tuesday' });
  assert.equal(booking?.booked, true);
  // (the stored copy comes back with its keys in canonical order)
  assert.deepEqual(toolResults(llm.requests[3]?.messages ?? []).map((c) => JSON.parse(c) as unknown), [found, booking]);
  assert.match(String(out.state.said), /^Found \{"day":"tuesday","free":\["10:30"\]\} and \{"booked":true,"reference":"B-\d"\}\. See you then\.$/);
  const rows = store.read('acme').agent_actions.find({ call_id: callId }).filter((r) => r.kind === 'tool');
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => r.status === 'succeeded'));
  assert.ok(said.includes('See you then.'));
  const llmSpans = spans.filter((s) => s.name === 'llm');
  // The request the worker died in never reported: the tools round of each attempt and the retry's answer did.
  assert.equal(llmSpans.length, 3);
  assert.ok(llmSpans.every((s) => s.ended && s.events.includes('first_token') && s.attrs['gen_ai.request.model'] === 'fake'));
  assert.deepEqual(llmSpans.map((s) => s.attrs['switchboard.tool_calls']), [2, 2, 0]);
  const toolSpans = spans.filter((s) => s.name === 'tool').map((s) => `${String(s.attrs['switchboard.tool'])}:${String(s.attrs['switchboard.replayed'])}`);
  assert.deepEqual(toolSpans.sort(), ['book_slot:false', 'book_slot:true', 'find_slot:false', 'find_slot:true']);
});
