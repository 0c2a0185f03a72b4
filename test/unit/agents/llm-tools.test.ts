/**
 * agents/llm-tools.ts (`chatWithTools`) against fake-llm streaming `tool_calls`
 * deltas as OpenAI does (index, id, name, arguments in pieces), with a fake
 * `ctx.tool` that records its calls: the request's `tools` (zod and plain JSON
 * schemas), two calls asked at once run in parallel and both results reach
 * the model, errors go back as tool messages (unknown tool, bad JSON, a zod
 * failure, a throwing tool, a refusal), the per-turn limit, and the answer
 * spoken sentence by sentence through speakStream.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as z from 'zod/mini';
import { chatWithTools, LlmError, speakStream, streamChat, type ChatOptions } from '../../../agents/llm.ts';
import { ToolRefusedError, type Json, type SayResult } from '../../../agents/sdk.ts';
import { startFakeLlm, type FakeLlm, type FakeLlmMessage, type FakeLlmOptions } from '../../helpers/fake-llm.ts';

const open: FakeLlm[] = [];
after(async () => {
  for (const f of open) await f.close();
});

async function fake(opts: FakeLlmOptions): Promise<FakeLlm> {
  const f = await startFakeLlm(opts);
  open.push(f);
  return f;
}

const base = (f: FakeLlm): Omit<ChatOptions, 'tools' | 'toolChoice'> => ({ baseUrl: f.url, apiKey: f.apiKey, model: 'test-model', messages: [{ role: 'user', content: 'Book me Tuesday' }] });

/** A ctx.tool double: records calls, answers from `impl`, and tracks how many run at once. */
function toolCtx(impl: (name: string, args: Json) => Promise<Json>) {
  const calls: Array<[string, Json]> = [];
  let running = 0;
  let maxRunning = 0;
  return {
    calls,
    maxRunning: () => maxRunning,
    tool: async <R extends Json = Json>(name: string, args: Json): Promise<R> => {
      calls.push([name, args]);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        return (await impl(name, args)) as R;
      } finally {
        running -= 1;
      }
    },
  };
}

const toolMessages = (messages: FakeLlmMessage[]) => messages.filter((m) => m.role === 'tool');

async function text(it: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const t of it) out += t;
  return out;
}

const tools = {
  find_slot: { description: 'Finds a free appointment slot on a day', parameters: z.object({ day: z.string() }) },
  book_slot: {
    description: 'Books a slot',
    parameters: { type: 'object', properties: { slot: { type: 'string' } }, required: ['slot'] },
  },
};

describe('chatWithTools', () => {
  test('a model that asks for two tools at once gets both results, run in parallel, then its answer streams', async () => {
    const f = await fake({
      reply: (messages) =>
        toolMessages(messages).length === 0
          ? { toolCalls: [{ name: 'find_slot', arguments: { day: 'tuesday' } }, { name: 'book_slot', arguments: { slot: 'tue-10' } }] }
          : `Got ${toolMessages(messages).map((m) => m.content).join(' and ')}.`,
    });
    let release!: () => void;
    const bothStarted = new Promise<void>((r) => (release = r));
    const ctx = toolCtx(async (name): Promise<Json> => {
      if (ctx.calls.length === 2) release();
      await bothStarted; // neither finishes before the other has started
      return name === 'find_slot' ? { slot: 'tue-10' } : { booked: true };
    });
    const answer = await text(chatWithTools(ctx, { ...base(f), tools }));
    assert.equal(answer, 'Got {"slot":"tue-10"} and {"booked":true}.');
    assert.deepEqual(ctx.calls, [
      ['find_slot', { day: 'tuesday' }],
      ['book_slot', { slot: 'tue-10' }],
    ]);
    assert.equal(ctx.maxRunning(), 2);
    assert.equal(f.requests.length, 2);
    const first = f.requests[0]?.body as { tools: unknown; tool_choice: unknown };
    assert.equal(first.tool_choice, 'auto');
    assert.deepEqual(first.tools, [
      {
        type: 'function',
        function: {
          name: 'find_slot',
          description: 'Finds a free appointment slot on a day',
          parameters: { type: 'object', properties: { day: { type: 'string' } }, required: ['day'], additionalProperties: false },
        },
      },
      { type: 'function', function: { name: 'book_slot', description: 'Books a slot', parameters: tools.book_slot.parameters } },
    ]);
    // The second request carries the assistant's calls and one tool message per call, matched by id.
    const second = f.requests[1]?.messages ?? [];
    const asked = second.find((m) => m.role === 'assistant');
    assert.deepEqual(asked?.tool_calls?.map((c) => [c.name, JSON.parse(c.arguments)]), [
      ['find_slot', { day: 'tuesday' }],
      ['book_slot', { slot: 'tue-10' }],
    ]);
    assert.deepEqual(
      toolMessages(second).map((m) => m.tool_call_id),
      asked?.tool_calls?.map((c) => c.id),
    );
  });

  test('streamChat reassembles tool calls whose arguments arrive in pieces (index, id, name, arguments)', async () => {
    const args = { day: 'wednesday', note: 'after lunch, if possible' };
    const f = await fake({ reply: () => ({ content: 'One moment.', toolCalls: [{ name: 'find_slot', arguments: args, id: 'call_a' }, { name: 'book_slot', arguments: { slot: 'x' } }] }) });
    const stream = streamChat({ ...base(f), tools: [] });
    let content = '';
    let next = await stream.next();
    while (!next.done) {
      content += next.value;
      next = await stream.next();
    }
    assert.equal(content, 'One moment.');
    assert.equal(next.value.length, 2);
    assert.equal(next.value[0]?.id, 'call_a');
    assert.equal(next.value[0]?.function.name, 'find_slot');
    assert.deepEqual(JSON.parse(next.value[0]?.function.arguments ?? ''), args);
    assert.deepEqual(JSON.parse(next.value[1]?.function.arguments ?? ''), { slot: 'x' });
    // Non-streaming servers answer with message.tool_calls; they come back the same way.
  });

  test('errors go back to the model as tool messages; only valid calls reach ctx.tool', async () => {
    const f = await fake({
      reply: (messages) =>
        toolMessages(messages).length === 0
          ? {
              toolCalls: [
                { name: 'nope', arguments: {} },
                { name: 'find_slot', arguments: '{"day": tues' },
                { name: 'find_slot', arguments: { day: 3 } },
                { name: 'find_slot', arguments: { day: 'friday' } },
                { name: 'book_slot', arguments: { slot: 'fri-9' } },
              ],
            }
          : 'Sorry, I could not book that.',
    });
    const ctx = toolCtx(async (name) => {
      if (name === 'find_slot') throw new Error('calendar down');
      throw new ToolRefusedError('consent', null, 'tool book_slot needs consent');
    });
    const answer = await text(chatWithTools(ctx, { ...base(f), tools }));
    assert.equal(answer, 'Sorry, I could not book that.');
    assert.deepEqual(ctx.calls, [
      ['find_slot', { day: 'friday' }],
      ['book_slot', { slot: 'fri-9' }],
    ]);
    const results = toolMessages(f.requests[1]?.messages ?? []).map((m) => JSON.parse(m.content) as { error: string; refused?: string });
    assert.equal(results.length, 5);
    assert.match(results[0]?.error ?? '', /unknown tool "nope"/);
    assert.match(results[1]?.error ?? '', /not valid JSON/);
    assert.match(results[2]?.error ?? '', /invalid arguments: day: /);
    assert.deepEqual(results[3], { error: 'calendar down' });
    assert.deepEqual(results[4], { error: 'tool book_slot needs consent', refused: 'consent' });
  });

  test('past the per-turn limit calls are not run, the next round says tool_choice none; a model that insists fails', async () => {
    const f = await fake({
      reply: (messages) => (toolMessages(messages).length < 3 ? { toolCalls: [1, 2, 3].map((n) => ({ name: 'find_slot', arguments: { day: `d${n}` } })) } : 'Done.'),
    });
    const ctx = toolCtx(async (_name, args) => args);
    assert.equal(await text(chatWithTools(ctx, { ...base(f), tools, maxToolCalls: 2 })), 'Done.');
    assert.equal(ctx.calls.length, 2);
    const limited = toolMessages(f.requests[1]?.messages ?? [])[2];
    assert.match(JSON.parse(limited?.content ?? '{}').error, /at most 2 tool calls per turn/);
    assert.equal((f.requests[1]?.body as { tool_choice: unknown }).tool_choice, 'none');

    const stubborn = await fake({ reply: () => ({ toolCalls: [{ name: 'find_slot', arguments: { day: 'x' } }] }) });
    await assert.rejects(text(chatWithTools(toolCtx(async () => null), { ...base(stubborn), tools, maxToolCalls: 1 })), (err: unknown) => err instanceof LlmError && /after the limit of 1/.test(err.message));
    assert.equal(stubborn.requests.length, 2);
  });

  test('spoken through speakStream: what the model says before its calls, then the answer, sentence by sentence', async () => {
    const f = await fake({
      reply: (messages) =>
        toolMessages(messages).length === 0
          ? { content: 'Let me check', toolCalls: [{ name: 'find_slot', arguments: { day: 'monday' } }] }
          : 'Monday at nine is free. Shall I book it?',
    });
    const said: string[] = [];
    const ctx = {
      ...toolCtx(async () => ({ slot: 'mon-9' })),
      say: async (s: string): Promise<SayResult> => {
        said.push(s);
        return { durationMs: 1, heardMs: 1, interrupted: false };
      },
    };
    await speakStream(ctx, chatWithTools(ctx, { ...base(f), tools }));
    assert.deepEqual(said, ['Let me check.', 'Monday at nine is free.', 'Shall I book it?']);
  });

  test('a tool name an LLM cannot take is refused before anything is sent', async () => {
    const f = await fake({ reply: () => 'x' });
    await assert.rejects(text(chatWithTools(toolCtx(async () => null), { ...base(f), tools: { 'find slot': {} } })), /must match/);
    assert.equal(f.requests.length, 0);
  });
});
