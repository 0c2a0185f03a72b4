/**
 * WorkerAgent against real worker threads running real esbuild bundles: agent
 * sources written to a tmp dir import `switchboard/agent`, are bundled with
 * bundleAgent and started from the .mjs file. A fake TurnActions records what
 * the bridge would do. Covered: actions in order with their results, tools
 * both ways (and an HTTP tool), state in/out, has(), the start failures (init throws, hangs, no
 * default export), a throwing hook, and recovery — process.exit, an endless
 * loop, running out of memory — by restart, filler and one retry, with turns
 * of two calls in flight; and close().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { bundleAgent } from '../../../agents/bundle.ts';
import { WorkerAgent, type WorkerAgentOptions } from '../../../agents/host/worker-agent.ts';
import type { GatherOptions, GatherResult, Json, SayResult } from '../../../agents/sdk.ts';
import type { TurnActions, TurnInput } from '../../../agents/types.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const dir = tmpDir('sb-worker-host-');
const running: WorkerAgent[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

let n = 0;
/** Writes `body` (the object passed to defineAgent) as an agent module, bundles it, returns the .mjs path. */
async function bundle(body: string, header = ''): Promise<string> {
  const name = `agent${++n}`;
  const src = path.join(dir, `${name}.ts`);
  fs.writeFileSync(src, `import fs from 'node:fs';\nimport { defineAgent } from 'switchboard/agent';\n${header}\nexport default defineAgent(${body});\n`);
  const { code } = await bundleAgent(src);
  const out = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(out, code);
  return out;
}

async function start(bundlePath: string, opts: Partial<WorkerAgentOptions> = {}): Promise<WorkerAgent> {
  const agent = await WorkerAgent.start({ name: 'probe', version: 'v1', bundlePath, ...opts });
  running.push(agent);
  return agent;
}

const input = (over: Partial<TurnInput> = {}): TurnInput => ({ hook: 'onStart', callId: 'call-1', turn: 1, call: { from: '+15550001', to: '+15550002' }, state: {}, ...over });
/** A path the agent checks to crash on its first attempt only (module state resets with the worker). */
const marker = (): string => path.join(dir, `marker-${++n}`);

class FakeActions implements TurnActions {
  readonly calls: unknown[][] = [];
  readonly fillers: string[] = [];
  /** say() waits for this when set (to hold a turn in flight). */
  gate: Promise<void> | null = null;
  constructor(private readonly agent?: WorkerAgent) {}
  async say(text: string): Promise<SayResult> {
    this.calls.push(['say', text]);
    if (this.gate) await this.gate;
    return { durationMs: 10 * text.length, heardMs: 7, interrupted: false };
  }
  async play(wav: Uint8Array): Promise<SayResult> {
    this.calls.push(['play', [...wav]]);
    return { durationMs: wav.byteLength, heardMs: 0, interrupted: true };
  }
  async gather(opts: GatherOptions): Promise<GatherResult> {
    this.calls.push(['gather', opts]);
    return { kind: 'dtmf', digits: '42' };
  }
  async transfer(target: string): Promise<void> {
    this.calls.push(['transfer', target]);
  }
  async hangup(reason: string): Promise<void> {
    this.calls.push(['hangup', reason]);
  }
  async tool(name: string, args: Json): Promise<Json> {
    this.calls.push(['tool', name, args]);
    if (!this.agent) throw new Error('no tools here');
    return this.agent.runTool(name, args, { callId: 'call-1', turn: 1, requestId: `req-${name}` }); // as the bridge does on a store miss
  }
  async note(text: string): Promise<void> {
    this.calls.push(['note', text]);
    if (text === 'reject me') throw new Error('the bridge said no');
  }
  async filler(reason: string): Promise<void> {
    this.fillers.push(reason);
  }
  async pauseRecording(reason: string): Promise<void> {
    this.calls.push(['pauseRecording', reason]);
  }
  async resumeRecording(): Promise<void> {
    this.calls.push(['resumeRecording']);
  }
}

describe('WorkerAgent', () => {
  test('runs hooks in a worker: actions in order with their results, tools, state in and out, has()', async () => {
    const agent = await start(
      await bundle(`{
        name: 'probe',
        async onStart(ctx) {
          const said = await ctx.say('hello ' + ctx.call.from);
          const got = await ctx.gather({ dtmf: { maxDigits: 2 } });
          const looked = await ctx.tool('lookup', { digits: got.kind === 'dtmf' ? got.digits : null });
          const played = await ctx.play(new Uint8Array([1, 2, 3]));
          let refused = '';
          try { await ctx.note('reject me'); } catch (err) { refused = err.message; }
          await ctx.note('agent ' + ctx.agent.name + ' ' + ctx.agent.version + ' turn ' + ctx.turn);
          ctx.state.set('count', (ctx.state.get('count') ?? 0) + 1);
          ctx.state.set('results', { said, got, looked, played, refused });
          ctx.state.delete('drop');
        },
        async onUtterance(ctx, u) { await ctx.transfer('+15550100'); await ctx.hangup('bye ' + u.text); },
        tools: { lookup: { run: (args, ctx) => ({ args, requestId: ctx.requestId, inWorker: !isMainThread }) } },
      }`, `import { isMainThread } from 'node:worker_threads';`),
    );
    assert.equal(agent.has('onStart'), true);
    assert.equal(agent.has('onUtterance'), true);
    assert.equal(agent.has('onDtmf'), false);
    const actions = new FakeActions(agent);
    const out = await agent.runTurn(input({ state: { count: 41, keep: 'x', drop: true } }), actions);
    assert.deepEqual(actions.calls, [
      ['say', 'hello +15550001'],
      ['gather', { dtmf: { maxDigits: 2 } }],
      ['tool', 'lookup', { digits: '42' }],
      ['play', [1, 2, 3]],
      ['note', 'reject me'],
      ['note', 'agent probe v1 turn 1'],
    ]);
    assert.deepEqual(out.state, {
      count: 42,
      keep: 'x',
      results: {
        said: { durationMs: 150, heardMs: 7, interrupted: false },
        got: { kind: 'dtmf', digits: '42' },
        looked: { args: { digits: '42' }, requestId: 'req-lookup', inWorker: true },
        played: { durationMs: 3, heardMs: 0, interrupted: true },
        refused: 'the bridge said no',
      },
    });
    const second = new FakeActions(agent);
    await agent.runTurn(input({ hook: 'onUtterance', turn: 2, utterance: { text: 'thanks', durationMs: 500 } }), second);
    assert.deepEqual(second.calls, [['transfer', '+15550100'], ['hangup', 'bye thanks']]);
    await assert.rejects(agent.runTool('nope', null, { callId: 'c', turn: 1, requestId: 'r' }), /has no tool nope/);
    assert.deepEqual(agent.stats, { restarts: 0, turns: 2 });
  });

  test('ctx.secure crosses the thread: pause, the gather inside, resume (also when the body throws); a sensitive tool is known to the gateway', async () => {
    const agent = await start(
      await bundle(`{
        name: 'secure',
        async onStart(ctx) {
          const digits = await ctx.secure(async () => {
            const got = await ctx.gather({ dtmf: { maxDigits: 16 } });
            return ctx.tool('tokenise', { card: got.digits });
          });
          ctx.state.set('token', digits);
          try { await ctx.secure(() => { throw new Error('inside'); }, 'pci-retry'); } catch (err) { ctx.state.set('thrown', err.message); }
          await ctx.pauseRecording();
          await ctx.resumeRecording();
        },
        tools: { tokenise: { sensitive: true, run: (args) => ({ token: 'tok-' + String(args.card).length }) }, plain: { run: () => null } },
      }`),
    );
    assert.equal(agent.toolSensitive('tokenise'), true);
    assert.equal(agent.toolSensitive('plain'), false);
    const actions = new FakeActions(agent);
    const out = await agent.runTurn(input(), actions);
    assert.deepEqual(actions.calls, [
      ['pauseRecording', 'pci'],
      ['gather', { dtmf: { maxDigits: 16 } }],
      ['tool', 'tokenise', { card: '42' }],
      ['resumeRecording'],
      ['pauseRecording', 'pci-retry'],
      ['resumeRecording'],
      ['pauseRecording', 'pci'],
      ['resumeRecording'],
    ]);
    assert.deepEqual(out.state, { token: { token: 'tok-2' }, thrown: 'inside' });
  });

  test('an HTTP tool runs from the worker, with the request id as Idempotency-Key', async () => {
    const seen: { key: string | undefined; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        seen.push({ key: req.headers['idempotency-key'] as string | undefined, body });
        res.setHeader('content-type', 'application/json').end(JSON.stringify({ ticket: 'T-7' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`;
      const agent = await start(await bundle(`{ name: 'probe', tools: { file: { http: { url: ${JSON.stringify(url)} } } } }`));
      assert.deepEqual(await agent.runTool('file', { name: 'Ada' }, { callId: 'c9', turn: 3, requestId: 'tool:3:file:abc' }), { ticket: 'T-7' });
      assert.deepEqual(seen, [{ key: 'tool:3:file:abc', body: JSON.stringify({ args: { name: 'Ada' }, call_id: 'c9', turn: 3 }) }]);
    } finally {
      server.close();
    }
  });

  test('init that throws rejects the start with the agent message, and the worker is gone', async () => {
    const file = await bundle(`{ name: 'probe', init() { throw new Error('missing API key FOO'); }, onStart() {} }`);
    await fs.promises.stat(dir); // the libuv pool's threads exist before counting
    const before = threads();
    await assert.rejects(start(file), (err: Error) => /init failed: missing API key FOO/.test(err.message) && err.message.includes('probe v1'));
    if (before !== null) assert.equal(threads(), before, 'the worker thread was terminated before start rejected');
  });

  test('init that never resolves rejects after initTimeoutMs', async () => {
    const file = await bundle(`{ name: 'probe', init: () => new Promise(() => {}) }`);
    const t0 = Date.now();
    await assert.rejects(start(file, { initTimeoutMs: 300 }), /init did not finish within 300 ms/);
    assert.ok(Date.now() - t0 >= 300);
  });

  test('a module without a valid default agent is refused clearly', async () => {
    const none = path.join(dir, 'none.mjs');
    fs.writeFileSync(none, 'export const agent = {};\n');
    await assert.rejects(start(none), /init failed: the bundle has no default export/);
    const bad = path.join(dir, 'bad.mjs');
    fs.writeFileSync(bad, 'export default { name: "Not Valid!" };\n');
    await assert.rejects(start(bad), /init failed: defineAgent: name must match/);
  });

  test('a hook that throws fails its turn only; the worker serves the next turn', async () => {
    const agent = await start(await bundle(`{ name: 'probe', async onDtmf(ctx, d) { if (d === '9') throw new RangeError('no such option ' + d); await ctx.say('pressed ' + d); } }`));
    const actions = new FakeActions();
    await assert.rejects(agent.runTurn(input({ hook: 'onDtmf', digit: '9' }), actions), (err: Error) => err.name === 'RangeError' && err.message === 'no such option 9');
    await agent.runTurn(input({ hook: 'onDtmf', digit: '1', turn: 2 }), actions);
    assert.deepEqual(actions.calls, [['say', 'pressed 1']]);
    assert.deepEqual(actions.fillers, []);
    assert.equal(agent.stats.restarts, 0);
  });

  test('a worker that exits mid-turn is restarted (init again), the caller hears a filler, the turn is retried', async () => {
    const inits = marker();
    const crashes: Error[] = [];
    const agent = await start(
      await bundle(`{
        name: 'probe',
        init() { fs.appendFileSync(${JSON.stringify(inits)}, 'i'); },
        async onStart(ctx) {
          await ctx.say('first');
          const m = ctx.state.get('marker');
          if (!fs.existsSync(m)) { fs.writeFileSync(m, ''); process.exit(1); }
          ctx.state.set('ok', true);
        },
      }`),
      { onCrash: (err) => crashes.push(err) },
    );
    const actions = new FakeActions();
    const out = await agent.runTurn(input({ state: { marker: marker() } }), actions);
    assert.equal(out.state.ok, true);
    assert.deepEqual(actions.calls, [['say', 'first'], ['say', 'first']]); // re-run; the bridge dedupes
    assert.equal(actions.fillers.length, 1);
    assert.match(actions.fillers[0] ?? '', /exited \(code 1\)/);
    assert.equal(agent.stats.restarts, 1);
    assert.equal(crashes.length, 1);
    assert.equal(fs.readFileSync(inits, 'utf8'), 'ii');
  });

  test('a turn that loops forever is stopped after turnTimeoutMs and retried; time spent in actions does not count', async () => {
    const agent = await start(
      await bundle(`{
        name: 'probe',
        async onStart(ctx) {
          await ctx.say('slow');
          const m = ctx.state.get('marker');
          if (!fs.existsSync(m)) { fs.writeFileSync(m, ''); for (;;) {} }
        },
      }`),
      { turnTimeoutMs: 400 },
    );
    const actions = new FakeActions();
    actions.gate = new Promise((r) => setTimeout(r, 600)); // longer than the budget, but the clock is stopped
    const t0 = Date.now();
    await agent.runTurn(input({ state: { marker: marker() } }), actions);
    assert.ok(Date.now() - t0 >= 600 + 400);
    assert.equal(actions.fillers.length, 1);
    assert.match(actions.fillers[0] ?? '', /ran over 400 ms/);
    assert.equal(agent.stats.restarts, 1);
  });

  test('a turn that runs out of memory (ERR_WORKER_OUT_OF_MEMORY) gets a restarted worker', async () => {
    const crashes: Error[] = [];
    const agent = await start(
      await bundle(`{
        name: 'probe',
        async onStart(ctx) {
          const m = ctx.state.get('marker');
          if (!fs.existsSync(m)) { fs.writeFileSync(m, ''); const hog = []; for (;;) hog.push(new Array(100000).fill(hog.length)); }
          await ctx.say('recovered');
        },
      }`),
      { memoryMb: 32, onCrash: (err) => crashes.push(err) },
    );
    const actions = new FakeActions();
    await agent.runTurn(input({ state: { marker: marker() } }), actions);
    assert.deepEqual(actions.calls, [['say', 'recovered']]);
    assert.equal(actions.fillers.length, 1);
    assert.match(actions.fillers[0] ?? '', /out of memory \(32 MB\)/);
    assert.equal((crashes[0]?.cause as { code?: string } | undefined)?.code, 'ERR_WORKER_OUT_OF_MEMORY');
    assert.equal(agent.stats.restarts, 1);
  });

  test('turns of two calls run concurrently in one worker; a crash retries every turn in flight once', async () => {
    const agent = await start(
      await bundle(`{
        name: 'probe',
        async onStart(ctx) {
          await ctx.say('hi ' + ctx.callId);
          const m = ctx.state.get('marker');
          if (m && !fs.existsSync(m)) { fs.writeFileSync(m, ''); process.exit(1); }
          ctx.state.set('done', ctx.callId);
        },
      }`),
    );
    // A is held in its say while B runs to completion in the same worker.
    const a = new FakeActions();
    let release = (): void => {};
    a.gate = new Promise((r) => (release = r));
    const turnA = agent.runTurn(input({ callId: 'A' }), a);
    const b = new FakeActions();
    assert.deepEqual((await agent.runTurn(input({ callId: 'B' }), b)).state, { done: 'B' });
    release();
    assert.deepEqual((await turnA).state, { done: 'A' });

    // C is held in flight when D crashes the worker: both hear a filler and are retried.
    const c = new FakeActions();
    c.gate = new Promise((r) => (release = r));
    const turnC = agent.runTurn(input({ callId: 'C' }), c);
    const d = new FakeActions();
    const turnD = agent.runTurn(input({ callId: 'D', state: { marker: marker() } }), d);
    assert.deepEqual((await turnD).state.done, 'D');
    release();
    assert.deepEqual((await turnC).state.done, 'C');
    assert.equal(c.fillers.length, 1);
    assert.equal(d.fillers.length, 1);
    assert.deepEqual(c.calls, [['say', 'hi C'], ['say', 'hi C']]);
    assert.equal(agent.stats.restarts, 1);
    assert.equal(agent.stats.turns, 4);
  });

  test('a turn that crashes on the retry too is rejected; a tool that crashes the worker is rejected, not retried', async () => {
    const agent = await start(
      await bundle(`{
        name: 'probe',
        onStart() { process.exit(3); },
        onResume(ctx) {},
        tools: { boom: { run() { process.exit(4); } } },
      }`),
    );
    const actions = new FakeActions();
    await assert.rejects(agent.runTurn(input(), actions), /failed twice, retried once after a worker restart: the worker exited \(code 3\)/);
    assert.equal(actions.fillers.length, 1);
    await assert.rejects(agent.runTool('boom', {}, { callId: 'c', turn: 1, requestId: 'r' }), /exited \(code 4\)/);
    await agent.runTurn(input({ hook: 'onResume' }), actions); // the worker is back
    assert.equal(agent.stats.restarts, 3);
  });

  test('close() rejects turns in flight and later ones', async () => {
    const agent = await start(await bundle(`{ name: 'probe', async onStart(ctx) { await ctx.say('waiting'); } }`));
    const actions = new FakeActions();
    actions.gate = new Promise(() => {});
    const turn = agent.runTurn(input(), actions);
    while (actions.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
    const rejected = assert.rejects(turn, /agent closed/);
    await agent.close();
    await rejected;
    await assert.rejects(agent.runTurn(input(), new FakeActions()), /agent closed/);
    await agent.close(); // idempotent
  });
});

/** OS threads of this process (Linux), to see that a worker was not left behind. */
function threads(): number | null {
  try {
    return fs.readdirSync('/proc/self/task').length;
  } catch {
    return null;
  }
}
