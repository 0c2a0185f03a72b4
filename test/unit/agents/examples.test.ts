/**
 * The example agents (agents/examples/): each bundles with `bundleAgent`, and
 * the source definitions run under `LocalAgent` against recording
 * `TurnActions` whose `tool` executes through `agent.runTool` with the
 * bridge's request id, turn after turn with the state carried over.
 * - receptionist: name → reason → ticket → goodbye + hangup; speech misses →
 *   keypad menu via gather; the HTTP tool (from RECEPTIONIST_TOOL_URL, here
 *   checked on the bundle) receiving `Idempotency-Key`; resume; silence.
 * - assistant against fake-llm: the reply said sentence by sentence, the
 *   history growing in state and bounded, a slot looked up and booked
 *   through its tools, an LLM 500 → apology + note.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { bundleAgent } from '../../../agents/bundle.ts';
import assistant, { APOLOGY, GREETING, HISTORY_LIMIT, SYSTEM_PROMPT } from '../../../agents/examples/assistant.ts';
import receptionist, { makeReceptionist } from '../../../agents/examples/receptionist.ts';
import { LocalAgent } from '../../../agents/local.ts';
import type { AgentDefinition, GatherOptions, GatherResult, Hook, Json, SayResult } from '../../../agents/sdk.ts';
import { toolRequestId } from '../../../agents/tools.ts';
import type { TurnActions, TurnInput } from '../../../agents/types.ts';
import { startFakeLlm, type FakeLlm } from '../../helpers/fake-llm.ts';

const EXAMPLES = path.join(import.meta.dirname, '../../../agents/examples');
const work = mkdtempSync(path.join(tmpdir(), 'sb-examples-'));
after(() => rmSync(work, { recursive: true, force: true }));

type Call = { kind: 'say' | 'play' | 'gather' | 'transfer' | 'hangup' | 'tool' | 'note' | 'filler' | 'pause' | 'resume'; arg: Json };

/** Runs turns of one call like the bridge does: in order, state carried over, tools through runTool. */
function callOf(def: AgentDefinition, opts: { gather?: GatherResult[] } = {}) {
  const agent = new LocalAgent(def, 'test-1');
  const callId = 'call-1';
  let turn = 0;
  let state: Record<string, Json> = {};
  const gathers = [...(opts.gather ?? [])];
  const all: Call[] = [];
  const said: SayResult = { durationMs: 100, heardMs: 100, interrupted: false };

  async function run(hook: Hook, extra: Partial<TurnInput> = {}): Promise<Call[]> {
    turn += 1;
    const calls: Call[] = [];
    const rec = (kind: Call['kind'], arg: Json): void => {
      calls.push({ kind, arg });
      all.push({ kind, arg });
    };
    const actions: TurnActions = {
      say: async (text) => (rec('say', text), said),
      play: async (wav) => (rec('play', wav.byteLength), said),
      gather: async (o: GatherOptions) => (rec('gather', o as Json), gathers.shift() ?? { kind: 'timeout' }),
      transfer: async (target) => rec('transfer', target),
      hangup: async (reason) => rec('hangup', reason),
      tool: async (name, args) => {
        rec('tool', { name, args });
        return agent.runTool(name, args, { callId, turn, requestId: toolRequestId(callId, turn, name, args) });
      },
      note: async (text) => rec('note', text),
      filler: async (reason) => rec('filler', reason),
      pauseRecording: async (reason) => rec('pause', reason),
      resumeRecording: async () => rec('resume', null),
    };
    const out = await agent.runTurn({ hook, callId, turn, call: { from: '+15550001111', to: '+15550002222' }, state, ...extra }, actions);
    state = out.state;
    return calls;
  }
  return { run, state: () => state, all, turn: () => turn };
}

const says = (calls: Call[]): string[] => calls.filter((c) => c.kind === 'say').map((c) => String(c.arg));
const utter = (text: string | null): Partial<TurnInput> => ({ utterance: { text, durationMs: 900 } });
const ticketOf = (def: AgentDefinition, args: Json): Json => {
  const tool = def.tools?.file_request;
  assert.ok(tool && 'run' in tool);
  return tool.run(args, { callId: 'x', turn: 1, requestId: 'r' }) as Json;
};

describe('bundles', () => {
  test('each example bundles; the receptionist bundle takes its HTTP tool from RECEPTIONIST_TOOL_URL', async () => {
    for (const name of ['receptionist', 'assistant']) {
      const bundle = await bundleAgent(path.join(EXAMPLES, `${name}.ts`));
      assert.match(bundle.sha256, /^[0-9a-f]{64}$/);
      assert.doesNotMatch(bundle.code, /from ["']switchboard\/agent["']/);
      const file = path.join(work, `${name}.mjs`);
      writeFileSync(file, bundle.code);
      const saved = process.env.RECEPTIONIST_TOOL_URL;
      process.env.RECEPTIONIST_TOOL_URL = 'http://127.0.0.1:9/file';
      try {
        const mod = (await import(pathToFileURL(file).href)) as { default: AgentDefinition };
        assert.equal(mod.default.name, name);
        if (name === 'receptionist') assert.deepEqual(mod.default.tools?.file_request, { description: 'Files a caller request; returns { ticket }', http: { url: 'http://127.0.0.1:9/file', timeoutMs: 5000 } });
      } finally {
        if (saved === undefined) delete process.env.RECEPTIONIST_TOOL_URL;
        else process.env.RECEPTIONIST_TOOL_URL = saved;
      }
    }
  });
});

describe('receptionist', () => {
  test('start → name → reason → ticket → goodbye and hangup, with state carried between turns', async () => {
    const call = callOf(receptionist);
    assert.deepEqual(says(await call.run('onStart')), ['Hello, thank you for calling. May I have your name, please?']);
    assert.equal(call.state().step, 'name');
    assert.deepEqual(says(await call.run('onUtterance', utter('My name is Ada Lovelace.'))), ['Thank you, Ada Lovelace. What are you calling about?']);
    assert.equal(call.state().name, 'Ada Lovelace');
    const last = await call.run('onUtterance', utter('I would like to move my appointment.'));
    const args = { name: 'Ada Lovelace', reason: 'I would like to move my appointment.', from: '+15550001111' };
    const ticket = ticketOf(receptionist, args) as { ticket: string };
    assert.match(ticket.ticket, /^T-\d{6}$/);
    assert.deepEqual(last, [
      { kind: 'tool', arg: { name: 'file_request', args } },
      { kind: 'say', arg: `Thank you, Ada Lovelace. Your request is filed under ticket number ${ticket.ticket.slice(2).split('').join(' ')}. Someone will be in touch soon.` },
      { kind: 'say', arg: 'Goodbye, and have a nice day.' },
      { kind: 'hangup', arg: 'request filed' },
    ]);
    assert.deepEqual(call.state(), { step: 'done', name: 'Ada Lovelace', reason: args.reason, silences: 0, misses: 0, ticket: ticket.ticket });
    assert.deepEqual(ticketOf(receptionist, args), ticket, 'the ticket is derived from the args');
  });

  test('no speech-to-text: says it did not catch that, then after two misses offers the keypad', async () => {
    const call = callOf(receptionist, { gather: [{ kind: 'dtmf', digits: '2' }] });
    await call.run('onStart');
    assert.deepEqual(says(await call.run('onUtterance', utter(null))), ['Sorry, I did not catch that. May I have your name, please?']);
    const turn = await call.run('onUtterance', utter(null));
    const gather = turn[0];
    assert.equal(gather?.kind, 'gather');
    assert.deepEqual(gather?.arg, { prompt: "Let's use the keypad instead. Please press 1 for an appointment, or 2 for billing.", dtmf: { maxDigits: 1 }, timeoutMs: 8000 });
    assert.deepEqual(turn[1], { kind: 'tool', arg: { name: 'file_request', args: { name: 'unknown caller', reason: 'billing', from: '+15550001111' } } });
    assert.match(says(turn)[0] ?? '', /^Thank you, caller\. Your request is filed under ticket number \d \d \d \d \d \d\./);
    assert.deepEqual(turn.at(-1), { kind: 'hangup', arg: 'request filed' });
  });

  test('a keypad timeout files a callback request and notes why', async () => {
    const call = callOf(receptionist);
    await call.run('onStart');
    await call.run('onUtterance', utter('Grace'));
    await call.run('onUtterance', utter(''));
    const turn = await call.run('onUtterance', utter(null));
    assert.deepEqual(
      turn.filter((c) => c.kind === 'note' || c.kind === 'tool'),
      [
        { kind: 'note', arg: 'keypad menu: timeout; filing a callback' },
        { kind: 'tool', arg: { name: 'file_request', args: { name: 'Grace', reason: 'callback', from: '+15550001111' } } },
      ],
    );
  });

  test('resume re-asks the current question; silence re-prompts once, then hangs up', async () => {
    const call = callOf(receptionist);
    await call.run('onStart');
    await call.run('onUtterance', utter("It's Alan."));
    assert.deepEqual(says(await call.run('onResume')), ['Sorry, we were cut off. What are you calling about, Alan?']);
    assert.deepEqual(says(await call.run('onSilence', { silentMs: 8000 })), ['Are you still there? What are you calling about, Alan?']);
    const bye = await call.run('onSilence', { silentMs: 8000 });
    assert.deepEqual(bye, [
      { kind: 'say', arg: 'I will let you go now. Please call again any time. Goodbye.' },
      { kind: 'hangup', arg: 'caller silent' },
    ]);
  });

  test('the HTTP tool variant posts to the URL with the idempotency key of the request', async () => {
    const received: Array<{ key: string | undefined; body: unknown }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) as unknown });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ticket: 'T-123456' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tickets`;
      const call = callOf(makeReceptionist(url));
      await call.run('onStart');
      await call.run('onUtterance', utter('Marie'));
      const turn = await call.run('onUtterance', utter('Billing question.'));
      const args = { name: 'Marie', reason: 'Billing question.', from: '+15550001111' };
      assert.deepEqual(received, [{ key: toolRequestId('call-1', 3, 'file_request', args), body: { args, call_id: 'call-1', turn: 3 } }]);
      assert.equal(says(turn)[0], 'Thank you, Marie. Your request is filed under ticket number 1 2 3 4 5 6. Someone will be in touch soon.');
      assert.equal(call.state().ticket, 'T-123456');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('assistant', () => {
  let llm: FakeLlm;
  let broken: FakeLlm;
  const saved = { url: process.env.OPENAI_BASE_URL, key: process.env.OPENAI_API_KEY, model: process.env.OPENAI_MODEL };
  before(async () => {
    llm = await startFakeLlm({ reply: (m) => `You said ${m.at(-1)?.content.replace(/[.?!]$/, '')}. Dr. Who can help with that! Anything else?`, delayMs: 2 });
    broken = await startFakeLlm({ status: 500 });
    process.env.OPENAI_API_KEY = llm.apiKey;
    process.env.OPENAI_MODEL = 'tiny-model';
  });
  after(async () => {
    await llm.close();
    await broken.close();
    for (const [k, v] of [['OPENAI_BASE_URL', saved.url], ['OPENAI_API_KEY', saved.key], ['OPENAI_MODEL', saved.model]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('says the reply sentence by sentence and keeps a bounded history in state', async () => {
    process.env.OPENAI_BASE_URL = llm.url;
    const call = callOf(assistant);
    assert.deepEqual(says(await call.run('onStart')), [GREETING]);
    const turn = await call.run('onUtterance', utter('What is the time?'));
    assert.deepEqual(says(turn), ['You said What is the time.', 'Dr. Who can help with that!', 'Anything else?']);
    const req = llm.requests.at(-1);
    assert.equal(req?.model, 'tiny-model');
    assert.equal(req?.stream, true);
    assert.deepEqual(req?.messages, [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'assistant', content: GREETING },
      { role: 'user', content: 'What is the time?' },
    ]);
    assert.deepEqual(call.state().history, [
      { role: 'assistant', content: GREETING },
      { role: 'user', content: 'What is the time?' },
      { role: 'assistant', content: 'You said What is the time. Dr. Who can help with that! Anything else?' },
    ]);
    for (let i = 2; i <= 8; i++) await call.run('onUtterance', utter(`Question ${i}`));
    const history = call.state().history as Array<{ role: string; content: string }>;
    assert.equal(history.length, HISTORY_LIMIT);
    assert.deepEqual(history.at(-2), { role: 'user', content: 'Question 8' });
    assert.match(history.at(-1)?.content ?? '', /^You said Question 8\./);
    assert.equal(llm.requests.at(-1)?.messages.length, 1 + HISTORY_LIMIT, 'system prompt + the bounded history');
  });

  test('looks up a slot and books it through its tools; the model gets both results', async () => {
    const booking = await startFakeLlm({
      reply: (m) => {
        const results = m.filter((x) => x.role === 'tool').map((x) => JSON.parse(x.content) as Record<string, Json>);
        const asked = m.filter((x) => x.role === 'user').length;
        if (asked === 1 && results.length === 0) return { content: 'Let me look.', toolCalls: [{ name: 'find_slot', arguments: { day: 'tuesday' } }] };
        if (asked === 1) return `Tuesday has ${(results[0]?.free as string[]).join(', ')}. Which time suits you?`;
        if (results.length === 0) return { toolCalls: [{ name: 'book_slot', arguments: { day: 'tuesday', time: '10:30' } }] };
        return `Booked, your reference is ${String(results[0]?.reference)}.`;
      },
    });
    try {
      process.env.OPENAI_BASE_URL = booking.url;
      const call = callOf(assistant);
      await call.run('onStart');
      const first = await call.run('onUtterance', utter('Can I come in on Tuesday?'));
      assert.deepEqual(says(first), ['Let me look.', 'Tuesday has 09:00, 10:30, 14:00, 16:30.', 'Which time suits you?']);
      assert.deepEqual(first.filter((c) => c.kind === 'tool').map((c) => c.arg), [{ name: 'find_slot', args: { day: 'tuesday' } }]);
      const second = await call.run('onUtterance', utter('Half past ten, please.'));
      assert.deepEqual(second.filter((c) => c.kind === 'tool').map((c) => c.arg), [{ name: 'book_slot', args: { day: 'tuesday', time: '10:30' } }]);
      assert.match(says(second).join(' '), /^Booked, your reference is B-\d+\.$/);
      const sent = booking.requests[0]?.body as { tools: Array<{ function: { name: string } }> };
      assert.deepEqual(sent.tools.map((t) => t.function.name), ['find_slot', 'book_slot']);
      assert.match(String((call.state().history as Array<{ content: string }>).at(-1)?.content), /^Booked/);
    } finally {
      await booking.close();
    }
  });

  test('an LLM 500 gives a short apology and a note with the error', async () => {
    process.env.OPENAI_BASE_URL = broken.url;
    const call = callOf(assistant);
    await call.run('onStart');
    const turn = await call.run('onUtterance', utter('Hello?'));
    assert.equal(turn.length, 2);
    assert.equal(turn[0]?.kind, 'note');
    assert.match(String(turn[0]?.arg), /^LLM error: .*HTTP 500: The server had an error/);
    assert.deepEqual(turn[1], { kind: 'say', arg: APOLOGY });
    assert.deepEqual(call.state().history, [
      { role: 'assistant', content: GREETING },
      { role: 'user', content: 'Hello?' },
    ]);
  });
});
