/**
 * The main of an agent worker thread: one deployed agent version, shared by
 * every call that runs it. Started by WorkerAgent (worker-agent.ts) with
 * `workerData.bundlePath`, the bundled ESM agent (a `.mjs` file). Built into
 * dist/agent-worker.mjs (scripts/build.mjs), which a built gateway starts as
 * it is; from the sources, WorkerAgent's eval'd bootstrap registers tsx inside
 * the worker and then imports this file.
 *
 * On `init` it imports the bundle, checks its default export with
 * `defineAgent`, runs the agent's `init()` and answers `init_done` with the
 * hooks the agent defines. Turns run concurrently, each under its own turnId,
 * on the same `makeContext`/`runHook` as the in-process runtime; every
 * `ctx.<action>()` becomes an `action` message whose `action_result` settles
 * the agent's await. A hook that throws fails its turn (`turn_done` ok:false),
 * never the worker; a crash, a hang or running out of memory is handled by
 * the gateway, which restarts the worker.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { makeContext, runHook } from '../context.ts';
import { defineAgent, type AgentDefinition, type GatherResult, type Json, type SayResult, type ToolContext } from '../sdk.ts';
import { LLM_SPAN_REPORTER, type AgentSpan, type TurnActions, type TurnInput } from '../types.ts';
import { HOOKS, JsonValue, checkAction, errorInfo, parseToWorker, toError, type FromWorker } from './protocol.ts';

/** What WorkerAgent passes as `workerData`. */
export interface AgentWorkerData {
  bundlePath: string;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

function serve(port: MessagePort, bundlePath: string): void {
  let def: AgentDefinition | null = null;
  let initing: Promise<void> | null = null;
  let agent = { name: '', version: '' };
  /** Actions awaiting their result, by `${turnId}:${seq}`. */
  const waiting = new Map<string, Waiter>();

  const post = (msg: FromWorker): void => port.postMessage(msg);

  const hooks = (d: AgentDefinition) => HOOKS.filter((h) => typeof d[h] === 'function');

  async function init(): Promise<void> {
    try {
      const mod = (await import(pathToFileURL(bundlePath).href)) as { default?: unknown };
      if (mod.default === undefined || mod.default === null) {
        throw new TypeError('the bundle has no default export: an agent module must `export default defineAgent({ ... })`');
      }
      const d = defineAgent(mod.default as AgentDefinition);
      await d.init?.();
      def = d;
      const tools = Object.fromEntries(Object.entries(d.tools ?? {}).map(([name, t]) => [name, t.requires ?? 'none'] as const));
      const sensitive = Object.entries(d.tools ?? {}).flatMap(([name, t]) => (t.sensitive === true ? [name] : []));
      post({ type: 'init_done', ok: true, hooks: hooks(d), tools, sensitive, ...(d.turnTaking ? { turnTaking: JSON.parse(JSON.stringify(d.turnTaking)) as Record<string, Record<string, unknown> | string[]> } : {}) });
    } catch (err) {
      post({ type: 'init_done', ok: false, error: errorInfo(err) });
    }
  }

  function actionsFor(turnId: string): TurnActions {
    let seq = 0;
    const call = <T>(kind: string, args: unknown[]): Promise<T> => {
      const checked = checkAction({ kind, args });
      if (typeof checked === 'string') return Promise.reject(new TypeError(checked));
      const s = ++seq;
      return new Promise<T>((resolve, reject) => {
        const key = `${turnId}:${s}`;
        waiting.set(key, { resolve: (v) => resolve(v as T), reject });
        try {
          post({ type: 'action', turnId, seq: s, ...checked });
        } catch (err) {
          waiting.delete(key); // not cloneable
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    };
    return {
      say: (text) => call<SayResult>('say', [text]),
      play: (wav) => call<SayResult>('play', [wav]),
      gather: (opts) => call<GatherResult>('gather', [opts]),
      transfer: (target, opts) => call<void>('transfer', opts === undefined ? [target] : [target, opts]),
      hangup: (reason) => call<void>('hangup', [reason]),
      tool: (name, args) => call<Json>('tool', [name, args]),
      note: (text) => call<void>('note', [text]),
      pauseRecording: (reason) => call<void>('pause_recording', [reason]),
      resumeRecording: () => call<void>('resume_recording', []),
      filler: async () => {}, // the gateway's, during a restart
    };
  }

  // The LLM helper bundled into the agent reports its requests here (agents/llm.ts): each goes to its turn's trace.
  const turnOf = new AsyncLocalStorage<string>();
  (globalThis as Record<symbol, unknown>)[LLM_SPAN_REPORTER] = (span: AgentSpan): void => {
    const turnId = turnOf.getStore();
    if (turnId) post({ type: 'span', turnId, span });
  };

  function turn(turnId: string, input: TurnInput): Promise<void> {
    return turnOf.run(turnId, () => runTurn(turnId, input));
  }

  async function runTurn(turnId: string, input: TurnInput): Promise<void> {
    try {
      if (!def) throw new Error('the agent is not initialised');
      const { ctx, state } = makeContext(input, actionsFor(turnId), agent);
      await runHook(def, input, ctx);
      const out = state();
      const check = JsonValue.safeParse(out);
      if (!check.success) throw new TypeError(`the turn's state is not JSON: ${check.error.issues[0]?.message ?? 'invalid'}`);
      post({ type: 'turn_done', turnId, ok: true, state: out });
    } catch (err) {
      post({ type: 'turn_done', turnId, ok: false, error: errorInfo(err) });
    }
  }

  async function tool(toolId: string, name: string, args: Json, ctx: ToolContext): Promise<void> {
    try {
      if (!def) throw new Error('the agent is not initialised');
      const t = def.tools && Object.hasOwn(def.tools, name) ? def.tools[name] : undefined; // own keys only: `constructor` is no tool
      if (!t) throw new Error(`agent ${agent.name} has no tool ${name}`);
      let value: unknown;
      if ('http' in t) {
        // Loaded on first use: tools.ts pulls in the store's module graph, which a worker otherwise never needs.
        const { runHttpTool } = await import('../tools.ts');
        value = await runHttpTool(t, args, ctx);
      } else {
        value = await t.run(args, ctx);
      }
      const check = JsonValue.safeParse(value ?? null);
      if (!check.success) throw new TypeError(`tool ${name} returned a value that is not JSON`);
      post({ type: 'tool_done', toolId, ok: true, value: check.data });
    } catch (err) {
      post({ type: 'tool_done', toolId, ok: false, error: errorInfo(err) });
    }
  }

  port.on('message', (raw: unknown) => {
    const msg = parseToWorker(raw);
    switch (msg.type) {
      case 'init':
        agent = { name: msg.name, version: msg.version };
        initing ??= init();
        return;
      case 'turn':
        void turn(msg.turnId, msg.input);
        return;
      case 'action_result': {
        const key = `${msg.turnId}:${msg.seq}`;
        const w = waiting.get(key);
        if (!w) return; // a result for an action already settled
        waiting.delete(key);
        if (msg.ok) w.resolve(msg.value);
        else w.reject(toError(msg.error));
        return;
      }
      case 'tool':
        void tool(msg.toolId, msg.name, msg.args, msg.ctx);
        return;
      case 'unknown':
        console.error(`agent worker (${bundlePath}): ignored an invalid message: ${msg.issues}`);
        return;
    }
  });
  post({ type: 'ready' });
}

const data = workerData as Partial<AgentWorkerData> | null;
if (!parentPort || typeof data?.bundlePath !== 'string') {
  throw new Error('agents/host/worker-entry.ts runs as a worker thread started by WorkerAgent (workerData.bundlePath)');
}
serve(parentPort, data.bundlePath);
