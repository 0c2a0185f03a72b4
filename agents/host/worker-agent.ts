/**
 * A deployed agent version run in a worker thread (gateway side). One worker
 * serves every call on the version; turns of different calls run in it
 * concurrently, each under its own turnId.
 *
 *   gateway (WorkerAgent)                         worker (worker-entry.ts)
 *     new Worker(bootstrap, { resourceLimits }) ──►
 *                                               ◄── ready
 *     init {name, version}                      ──► import bundle, defineAgent, def.init()
 *                                               ◄── init_done {ok, hooks, tools' requirements, sensitive tools | error}
 *     turn {turnId, input}                      ──► makeContext + runHook
 *                                               ◄── action {turnId, seq, kind, args}   (ctx.say …)
 *     actions.<kind>(...args) on the bridge
 *     action_result {turnId, seq, ok, value|error} ──►
 *                                               ◄── turn_done {turnId, ok, state | error}
 *     tool {toolId, name, args, ctx}            ──► tools[name].run / runHttpTool
 *                                               ◄── tool_done {toolId, ok, value | error}
 *
 * Failures: a hook that throws fails its turn only. A worker that dies (exit,
 * uncaught error, ERR_WORKER_OUT_OF_MEMORY) or a turn that runs over
 * `turnTimeoutMs` of agent time (the clock stops while the turn awaits an
 * action: speech and gathers take as long as they take) ends the worker; it is
 * restarted with init run again, and every turn in flight hears a filler and
 * is retried once on the new worker. A tool cut short is rejected, not retried.
 *
 * What the worker runs (workerBoot below): the built `dist/agent-worker.mjs`
 * (scripts/build.mjs), plain JavaScript with nothing compiled at spawn — from
 * the build, and from the sources too (this file is `.ts`: tests, benches)
 * while the build is fresh (bin/launch.mjs). Otherwise an eval'd bootstrap
 * registers tsx inside the worker and imports worker-entry.ts: `execArgv:
 * ['--import', 'tsx']` does not apply to a worker's entry on Node 20 (tsx#354).
 * Compiling the worker's TypeScript in a fresh worker took a core for a while
 * at every deploy and restart, beside the media loop.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { chooseEntry } from '../../bin/launch.mjs';
import type { Logger } from 'pino';
import { isToolRefusal, type Hook, type Json, type ToolContext, type ToolRequirement, type TurnTakingOptions } from '../sdk.ts';
import type { Agent, TurnActions, TurnInput, TurnOutcome } from '../types.ts';
import { applyAction, errorInfo, parseFromWorker, toError, type ActionMessage, type FromWorker, type ToWorker, type UnknownMessage } from './protocol.ts';
import type { AgentWorkerData } from './worker-entry.ts';

export interface WorkerAgentOptions {
  name: string;
  version: string;
  /** The bundled agent, an ESM `.mjs` file. */
  bundlePath: string;
  /** Loading the bundle plus the agent's `init()` (default 5000 ms). */
  initTimeoutMs?: number;
  /** Agent time per turn, not counting the actions it awaits (default 10000 ms). */
  turnTimeoutMs?: number;
  /** One tool execution; past it the worker is stopped (default 30000 ms). */
  toolTimeoutMs?: number;
  /** The worker's old-generation heap (default 128 MB). */
  memoryMb?: number;
  logger?: Logger;
  /** Called with each worker crash or timeout (after which the worker restarts). */
  onCrash?(err: Error): void;
  /** What the thread runs (default workerBoot()); the agents bench passes tsxWorkerBoot() to compare. */
  boot?: WorkerBoot;
}

export interface WorkerBoot {
  entry: string | URL;
  eval: boolean;
}

/** Starting the thread (and tsx in it, from the sources), before the agent's code runs. */
const BOOT_TIMEOUT_MS = 15_000;

/**
 * The worker's entry: the built worker beside this module when it runs from dist/ (the build puts every output
 * file in dist/ itself), else tsx's bootstrap for worker-entry.ts. Resolved on first use, so a built gateway never
 * even resolves tsx.
 */
export function workerBoot(moduleUrl: string = import.meta.url): WorkerBoot {
  if (!moduleUrl.endsWith('.ts')) return { entry: new URL('./agent-worker.mjs', moduleUrl), eval: false };
  // From the sources (an in-process gateway: tests, benches): the built worker still serves when the build is fresh.
  const root = new URL('../../', moduleUrl);
  if (chooseEntry(fileURLToPath(root)).kind === 'dist') return { entry: new URL('dist/agent-worker.mjs', root), eval: false };
  return tsxWorkerBoot(moduleUrl);
}

/** tsx registered in the thread, then worker-entry.ts (a `.ts` module URL of this folder). */
export function tsxWorkerBoot(moduleUrl: string = import.meta.url): WorkerBoot {
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./worker-entry.ts', moduleUrl).href);
  return { entry: `import(${tsx}).then((tsx) => { tsx.register(); return import(${entry}); });`, eval: true };
}
let boot: WorkerBoot | null = null;

const noop = (): void => {};

type Result = { kind: 'done'; state: Record<string, Json> } | { kind: 'failed'; error: Error } | { kind: 'crashed'; reason: string } | { kind: 'closed' };

interface Attempt {
  actions: TurnActions;
  settle(r: Result): void;
  /** Agent time left; the clock runs only while no action is outstanding. */
  budgetMs: number;
  since: number;
  timer: NodeJS.Timeout | null;
  outstanding: number;
}

interface Slot {
  worker: Worker;
  dead: boolean;
  turns: Map<string, Attempt>;
  tools: Map<string, { resolve(v: Json): void; reject(err: Error): void }>;
}

export class WorkerAgent implements Agent {
  readonly name: string;
  readonly version: string;
  readonly stats = { restarts: 0, turns: 0 };
  private hooks = new Set<Hook>();
  private toolNeeds: Readonly<Record<string, ToolRequirement>> = {};
  private sensitiveTools: ReadonlySet<string> = new Set();
  /** The agent's `turnTaking` options, from its init (re-checked by resolveTurnTaking where used). */
  turnTaking: TurnTakingOptions | undefined;
  private current: Slot | null = null;
  private starting: Promise<Slot> | null = null;
  private spawned = 0;
  private seq = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly label: string;

  private constructor(private readonly o: WorkerAgentOptions) {
    this.name = o.name;
    this.version = o.version;
    this.label = `agent ${o.name} ${o.version}`;
  }

  /** Spawns the worker and waits for the agent's init; rejects (worker terminated) when it fails. */
  static async start(opts: WorkerAgentOptions): Promise<WorkerAgent> {
    const agent = new WorkerAgent(opts);
    await agent.live();
    return agent;
  }

  has(hook: Hook): boolean {
    return this.hooks.has(hook);
  }

  toolRequires(name: string): ToolRequirement {
    return Object.hasOwn(this.toolNeeds, name) ? (this.toolNeeds[name] ?? 'none') : 'none';
  }

  toolSensitive(name: string): boolean {
    return this.sensitiveTools.has(name);
  }

  async runTurn(input: TurnInput, actions: TurnActions): Promise<TurnOutcome> {
    this.stats.turns++;
    let reason = '';
    for (let attempt = 1; attempt <= 2; attempt++) {
      let slot: Slot;
      try {
        slot = await this.live();
      } catch (err) {
        if (this.closed || attempt === 1) throw err;
        throw new Error(`${this.label}: the worker failed (${reason}) and could not be restarted: ${(err as Error).message}`);
      }
      const r = await this.attempt(slot, input, actions);
      if (r.kind === 'done') return { state: r.state };
      if (r.kind === 'failed') throw r.error;
      if (r.kind === 'closed') throw this.closedError();
      reason = r.reason;
      if (attempt === 2) break;
      this.o.logger?.warn({ callId: input.callId, turn: input.turn, hook: input.hook, reason }, 'agent turn interrupted; retrying on a restarted worker');
      await Promise.resolve()
        .then(() => actions.filler(reason))
        .catch((err: unknown) => this.o.logger?.warn({ err, callId: input.callId }, 'filler failed'));
    }
    throw new Error(`${this.label}: ${input.hook} (call ${input.callId}, turn ${input.turn}) failed twice, retried once after a worker restart: ${reason}`);
  }

  async runTool(name: string, args: Json, ctx: ToolContext): Promise<Json> {
    const slot = await this.live();
    const ms = this.o.toolTimeoutMs ?? 30_000;
    return new Promise<Json>((resolve, reject) => {
      const toolId = `x${++this.seq}`;
      const timer = setTimeout(() => this.crash(slot, `tool ${name} ran over ${ms} ms; the worker was stopped`), ms);
      const done = () => {
        clearTimeout(timer);
        slot.tools.delete(toolId);
      };
      slot.tools.set(toolId, { resolve: (v) => (done(), resolve(v)), reject: (e) => (done(), reject(e)) });
      this.send(slot, { type: 'tool', toolId, name, args, ctx }, (err) => slot.tools.get(toolId)?.reject(err));
    });
  }

  /** Stops the worker; turns and tools in flight reject with 'agent closed'. Idempotent, never rejects. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const slot = this.current;
    this.current = null;
    if (!slot) return (this.closing = Promise.resolve());
    slot.dead = true;
    for (const a of [...slot.turns.values()]) a.settle({ kind: 'closed' });
    for (const t of [...slot.tools.values()]) t.reject(this.closedError());
    return (this.closing = slot.worker.terminate().then(noop, noop));
  }

  private closedError(): Error {
    return new Error(`${this.label}: agent closed`);
  }

  /** The running worker, or one being (re)started; a start failure is not cached. */
  private live(): Promise<Slot> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.current && !this.current.dead) return Promise.resolve(this.current);
    if (this.starting) return this.starting;
    if (this.spawned++ > 0) this.stats.restarts++;
    const p = this.spawn().then(async (slot) => {
      if (this.closed) {
        slot.dead = true;
        await slot.worker.terminate();
        throw this.closedError();
      }
      this.current = slot;
      return slot;
    });
    this.starting = p;
    const clear = () => {
      if (this.starting === p) this.starting = null;
    };
    p.then(clear, clear);
    return p;
  }

  private spawn(): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      const memoryMb = this.o.memoryMb ?? 128;
      const data: AgentWorkerData = { bundlePath: this.o.bundlePath };
      let worker: Worker;
      try {
        const how = this.o.boot ?? (boot ??= workerBoot());
        worker = new Worker(how.entry, {
          eval: how.eval,
          workerData: data,
          execArgv: [],
          resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
        });
      } catch (err) {
        reject(new Error(`${this.label}: could not start a worker: ${(err as Error).message}`));
        return;
      }
      const slot: Slot = { worker, dead: false, turns: new Map(), tools: new Map() };
      let started = false;
      const fail = (message: string, cause?: Error): void => {
        if (started) return;
        started = true;
        slot.dead = true;
        clearTimeout(timer);
        const err = new Error(`${this.label}: ${message}`, cause ? { cause } : undefined);
        void worker.terminate().finally(() => reject(err));
      };
      const initMs = this.o.initTimeoutMs ?? 5000;
      let timer = setTimeout(() => fail(`the worker did not start within ${BOOT_TIMEOUT_MS} ms`), BOOT_TIMEOUT_MS);
      worker.on('message', (raw: unknown) => {
        const msg = parseFromWorker(raw);
        if (started) return this.onMessage(slot, msg);
        if (msg.type === 'ready') {
          clearTimeout(timer);
          timer = setTimeout(() => fail(`init did not finish within ${initMs} ms`), initMs);
          this.send(slot, { type: 'init', name: this.name, version: this.version }, (err) => fail(`init: ${err.message}`));
        } else if (msg.type === 'init_done') {
          if (!msg.ok) return fail(`init failed: ${msg.error.message}`, toError(msg.error));
          started = true;
          clearTimeout(timer);
          this.hooks = new Set(msg.hooks);
          this.toolNeeds = msg.tools ?? {};
          this.sensitiveTools = new Set(msg.sensitive ?? []);
          this.turnTaking = msg.turnTaking as TurnTakingOptions | undefined;
          if (this.spawned > 1) this.o.logger?.info({ restarts: this.stats.restarts }, 'agent worker restarted');
          resolve(slot);
        } else if (msg.type === 'unknown') {
          this.o.logger?.warn({ issues: msg.issues }, 'agent worker sent an invalid message; ignored');
        }
      });
      worker.on('error', (err: Error & { code?: string }) => {
        const what = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `the worker ran out of memory (${memoryMb} MB)` : `the worker crashed: ${err.message}`;
        if (!started) fail(`${what} while starting`, err);
        else this.crash(slot, what, err);
      });
      worker.on('exit', (code: number) => {
        if (!started) fail(`the worker exited (code ${code}) while starting`);
        else this.crash(slot, `the worker exited (code ${code})`);
      });
    });
  }

  private attempt(slot: Slot, input: TurnInput, actions: TurnActions): Promise<Result> {
    return new Promise<Result>((resolve) => {
      if (slot.dead) return resolve({ kind: 'crashed', reason: 'the worker stopped' });
      const turnId = `t${++this.seq}`;
      let settled = false;
      const a: Attempt = {
        actions,
        budgetMs: this.o.turnTimeoutMs ?? 10_000,
        since: 0,
        timer: null,
        outstanding: 0,
        settle: (r) => {
          if (settled) return;
          settled = true;
          if (a.timer) clearTimeout(a.timer);
          slot.turns.delete(turnId);
          resolve(r);
        },
      };
      slot.turns.set(turnId, a);
      this.runClock(slot, a);
      this.send(slot, { type: 'turn', turnId, input }, (error) => a.settle({ kind: 'failed', error }));
    });
  }

  private runClock(slot: Slot, a: Attempt): void {
    const ms = this.o.turnTimeoutMs ?? 10_000;
    a.since = performance.now();
    a.timer = setTimeout(() => this.crash(slot, `a turn ran over ${ms} ms; the worker was stopped`), Math.max(0, a.budgetMs));
  }

  private pauseClock(a: Attempt): void {
    if (!a.timer) return;
    clearTimeout(a.timer);
    a.timer = null;
    a.budgetMs -= performance.now() - a.since;
  }

  private onMessage(slot: Slot, msg: FromWorker | UnknownMessage): void {
    switch (msg.type) {
      case 'action':
        return this.serveAction(slot, msg);
      case 'turn_done': {
        const a = slot.turns.get(msg.turnId);
        if (!a) return;
        a.settle(msg.ok ? { kind: 'done', state: msg.state } : { kind: 'failed', error: toError(msg.error) });
        return;
      }
      case 'tool_done': {
        const t = slot.tools.get(msg.toolId);
        if (!t) return;
        if (msg.ok) t.resolve(msg.value);
        else t.reject(toError(msg.error));
        return;
      }
      case 'span':
        slot.turns.get(msg.turnId)?.actions.trace?.(msg.span);
        return;
      case 'unknown':
        this.o.logger?.warn({ issues: msg.issues }, 'agent worker sent an invalid message; ignored');
        return;
      default:
        return; // ready / init_done after the start: nothing to do
    }
  }

  /** Runs one action on the bridge and answers the worker; the turn's clock stops meanwhile. */
  private serveAction(slot: Slot, msg: ActionMessage): void {
    const { turnId, seq } = msg;
    const reply = (r: { ok: true; value: unknown } | { ok: false; error: Error }): void => {
      if (slot.dead) return;
      // No gateway stack for agent code; a tool refusal keeps its kind and reason (agents/sdk.ts ToolRefusedError).
      const error = r.ok ? null : isToolRefusal(r.error) ? errorInfo(r.error) : { message: r.error.message, name: r.error.name };
      const out: ToWorker = error ? { type: 'action_result', turnId, seq, ok: false, error } : { type: 'action_result', turnId, seq, ok: true, value: r.ok ? r.value : null };
      this.send(slot, out, (e) => this.send(slot, { type: 'action_result', turnId, seq, ok: false, error: { message: e.message } }, () => {}));
    };
    const a = slot.turns.get(turnId);
    if (!a) return reply({ ok: false, error: new Error(`ctx.${msg.kind}: the turn is over`) });
    if (a.outstanding++ === 0) this.pauseClock(a);
    Promise.resolve()
      .then(() => applyAction(a.actions, msg))
      .then(
        (value) => reply({ ok: true, value }),
        (err: unknown) => reply({ ok: false, error: err instanceof Error ? err : new Error(String(err)) }),
      )
      .finally(() => {
        if (--a.outstanding === 0 && slot.turns.get(turnId) === a) this.runClock(slot, a);
      });
  }

  /** The worker is gone or stopped: fail what ran in it and start another. */
  private crash(slot: Slot, reason: string, cause?: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    if (this.current === slot) this.current = null;
    void slot.worker.terminate();
    const err = new Error(`${this.label}: ${reason}`, cause ? { cause } : undefined);
    this.o.logger?.error({ err, turns: slot.turns.size, tools: slot.tools.size }, 'agent worker failed; restarting');
    try {
      this.o.onCrash?.(err);
    } catch {
      // a logging hook must not stop the recovery
    }
    for (const a of [...slot.turns.values()]) a.settle({ kind: 'crashed', reason });
    for (const t of [...slot.tools.values()]) t.reject(new Error(`${this.label}: ${reason} (the tool may not have finished)`));
    if (!this.closed) this.live().catch((e: unknown) => this.o.logger?.error({ err: e }, 'agent worker could not be restarted'));
  }

  private send(slot: Slot, msg: ToWorker, onError: (err: Error) => void): void {
    try {
      slot.worker.postMessage(msg);
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err))); // e.g. DataCloneError
    }
  }
}
