/**
 * The agent SDK: what an agent author writes.
 *
 *   import { defineAgent } from 'switchboard/agent';
 *   export default defineAgent({
 *     name: 'receptionist',
 *     async onStart(ctx) { await ctx.say('Hello, who is calling?'); },
 *     async onUtterance(ctx, u) { ctx.state.set('name', u.text); await ctx.tool('file', { name: u.text }); },
 *     tools: { file: { description: 'File a ticket', run: async (args) => ({ ticket: 'T-1' }) } },
 *   });
 *
 * An agent never sees a provider, a socket or audio frames: it acts through
 * `ctx`, and every action is a row in `agent_actions` written by the gateway.
 * Deployed agents run in a worker thread; everything crossing to the gateway
 * is JSON. Per-call state (`ctx.state`) is saved after each turn and comes
 * back after a restart, a worker crash or a migration to a new version.
 *
 * A tool may declare what it needs before it runs (`requires`, default
 * 'none'); the tenant's policy may tighten it, never loosen it:
 *
 *   tools: { refund: { requires: 'approval', run: async (args) => … } }
 *
 *   'consent'   runs only when the caller's consent decision is `granted`
 *   'approval'  (consent too) the turn waits — the caller hears a filler —
 *               until a user with `tools:approve` approves the pending request
 *
 * Otherwise `ctx.tool()` rejects with a `ToolRefusedError` (`isToolRefusal`),
 * whose `refusal` says why — 'consent' | 'denied' | 'timeout' | 'cancelled' —
 * so the agent can tell the caller.
 *
 * A tool's `parameters` (a JSON schema or a zod 4 schema) describe its
 * arguments to an LLM: `chatWithTools` in `switchboard/llm` sends them and
 * runs the model's calls through `ctx.tool`.
 * Card data (PCI): `ctx.secure(async () => { const r = await ctx.gather({ dtmf: { maxDigits: 16 } }); … })` pauses
 * recording and transcription around the capture, and a tool declared `sensitive: true` takes the digits without
 * its args being stored (bridge/pci-pause.ts, bridge/turn-actions.ts).
 * Turn-taking (`turnTaking`, merged over the defaults in media/turn-taking.ts): how long the caller must speak over
 * the agent to interrupt it (`bargeIn.minSpeechMs`; shorter is a backchannel), which words are acknowledgements,
 * and the silence that ends a turn after a complete sentence / a trailing "and…" (`endOfTurn`); how far the agent is
 * ducked while the caller starts speaking over it (`bargeIn.duckDb`), the words that stop it at once (`stopWords`),
 * and whether `onUtterance` also gets interim text (`utterance.interim`, then `u.final` is false).
 */
import { resolveTurnTaking, type TurnTakingOptions } from '../media/turn-taking.ts';
export type { TurnTakingOptions } from '../media/turn-taking.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface SayResult {
  durationMs: number;
  heardMs: number;
  /** The caller spoke over it (barge-in) and the rest was dropped. */
  interrupted: boolean;
}

export interface Utterance {
  /** Recognised text, or null when no speech-to-text runs on this call. */
  text: string | null;
  durationMs: number;
  /**
   * True for the caller's finished utterance (the turn's words, also in the transcript). False for the recogniser's
   * interim text while the caller is still speaking, given only to an agent that asks for it
   * (`turnTaking: { utterance: { interim: true } }`): a hint the agent may act on or ignore (e.g. start its LLM
   * early); it is never written to the transcript, and `durationMs` is 0. The final call still follows.
   */
  final: boolean;
}

export type GatherOptions = {
  /** Say this first (barge-in allowed). */
  prompt?: string;
  /** Give up after this long without input (default 8000 ms). */
  timeoutMs?: number;
} & (
  | { dtmf: { maxDigits?: number; finishOn?: string }; speech?: boolean }
  | { speech: true; dtmf?: { maxDigits?: number; finishOn?: string } }
);

export type GatherResult = { kind: 'dtmf'; digits: string } | { kind: 'speech'; text: string | null; durationMs: number } | { kind: 'timeout' };

/**
 * Who answered an outbound call placed with answering-machine detection (`POST /v1/calls` `amd`), given to
 * `onAnswered`. For a `machine` the hook runs after the greeting's beep (or once none came): a `say`/`play` then
 * is the voicemail. `treatedAs` is what the call proceeds as: `by`, or for `unknown` the call's configured default.
 */
export interface AnsweredInfo {
  by: 'human' | 'machine' | 'unknown';
  treatedAs: 'human' | 'machine';
  /** The detector's account: speech and greeting length, longest silence, the beep (frequency, start, end), the reason; decision times (ms after the answer). */
  evidence: Record<string, Json>;
}

/**
 * How `transfer` hands the caller over. `blind` (the default): the call goes to the target and the agent's part
 * ends (a provider that can redirect: Twilio `<Dial>`). `warm`: the caller hears hold audio while the gateway dials
 * the target; the human hears `summary` (TTS, the human only) and presses 1 to take the call (caller and human are
 * bridged, the agent leaves the audio) or 2 to decline; a decline, no answer, busy or `timeoutMs` (default 30 s)
 * brings the caller back to the agent, whose `onTransferFailed` runs with the reason.
 */
export interface TransferOptions {
  mode?: 'blind' | 'warm';
  summary?: string;
  timeoutMs?: number;
}

/** Why a warm transfer did not reach the human (given to `onTransferFailed`). */
export type TransferFailure = 'declined' | 'no_answer' | 'busy' | 'timeout' | 'hangup' | 'failed';

export interface AgentState {
  get<T extends Json = Json>(key: string): T | undefined;
  set(key: string, value: Json): void;
  delete(key: string): void;
  /** A copy of the whole state. */
  all(): Record<string, Json>;
}

export interface AgentContext {
  readonly callId: string;
  /** 1-based turn number; survives restarts. */
  readonly turn: number;
  readonly agent: { readonly name: string; readonly version: string };
  readonly call: { readonly from: string; readonly to: string };
  readonly state: AgentState;
  /** Speaks `text` (TTS); resolves when played or interrupted. */
  say(text: string): Promise<SayResult>;
  /** Plays a WAV (PCM 16-bit or µ-law, any rate), e.g. a recorded prompt. */
  play(wav: Uint8Array): Promise<SayResult>;
  /** Waits for the caller's digits or speech within this turn. */
  gather(opts: GatherOptions): Promise<GatherResult>;
  /**
   * Hands the caller to a human (E.164 or SIP URI). Blind (the default): the agent's part of the call ends. Warm
   * (`{ mode: 'warm', summary?, timeoutMs? }`, see `TransferOptions`): resolves once the human took the call or it
   * failed; a failure also runs `onTransferFailed` next.
   */
  transfer(target: string, opts?: TransferOptions): Promise<void>;
  hangup(reason?: string): Promise<void>;
  /**
   * Calls one of the agent's tools. Idempotent: the request id is derived from
   * (call, turn, tool, args), so a turn retried after a crash gets the stored
   * result and the tool is not executed twice.
   */
  tool<R extends Json = Json>(name: string, args: Json): Promise<R>;
  /** A note for the call's record (shown in the compliance timeline). */
  note(text: string): Promise<void>;
  /**
   * Runs `fn` under a PCI pause: the caller's keys and speech reach this agent in memory only (a `gather` inside
   * returns them) — never the recording (silence or skipped, per policy), the transcript, the log or the logs.
   * Pass them to a `sensitive` tool to tokenise them. The pause ends when `fn` settles, also when it throws.
   */
  secure<T>(fn: () => Promise<T> | T, reason?: string): Promise<T>;
  /** Starts a PCI pause of the call's recording and transcription (default reason 'pci'); lasts until resumed. */
  pauseRecording(reason?: string): Promise<void>;
  /** Ends the call's PCI pause (nothing if none is on). */
  resumeRecording(): Promise<void>;
}

export interface ToolContext {
  readonly callId: string;
  readonly turn: number;
  /** Stable across retries: pass it on as an idempotency key to what the tool calls. */
  readonly requestId: string;
}

/** What a tool needs before it runs, weakest first. */
export type ToolRequirement = 'none' | 'consent' | 'approval';
export const TOOL_REQUIREMENTS: readonly ToolRequirement[] = ['none', 'consent', 'approval'];

/** Why a tool did not run: no granted consent, a person denied it, nobody decided in time, the call ended. */
export type ToolRefusal = 'consent' | 'denied' | 'timeout' | 'cancelled';

/** `ctx.tool()` rejected because the tool was not authorised; the tool did not run. */
export class ToolRefusedError extends Error {
  override readonly name = 'ToolRefusedError';
  constructor(
    readonly refusal: ToolRefusal,
    /** The approver's reason on a denial, else null. */
    readonly reason: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** True for a tool refusal, also one that crossed from the gateway into a worker thread. */
export function isToolRefusal(err: unknown): err is ToolRefusedError {
  return err instanceof Error && err.name === 'ToolRefusedError' && typeof (err as Partial<ToolRefusedError>).refusal === 'string';
}

/** A plain JSON schema (an object's, for an LLM: `{ type: 'object', properties, required }`). */
export type JsonSchema = { [key: string]: Json };
/** A zod 4 schema (classic or mini), recognised by its `_zod` member; converted with `z.toJSONSchema`. */
export interface ZodSchemaLike {
  readonly _zod: unknown;
}
/** What a tool's arguments look like, for an LLM that calls it (`switchboard/llm` `chatWithTools`). */
export type ToolParameters = JsonSchema | ZodSchemaLike;

export interface ToolDefinition {
  description?: string;
  /** Default 'none'. */
  requires?: ToolRequirement;
  /** The arguments' schema, sent to an LLM as the tool's `parameters` (a zod schema also checks the model's arguments). */
  parameters?: ToolParameters;
  /** Its args are card data or the like: the stored row holds a digest of them, never the args. Default false. */
  sensitive?: boolean;
  run(args: Json, ctx: ToolContext): Promise<Json> | Json;
}

/** An HTTP tool (also declarable in config): POSTs the args as JSON with `Idempotency-Key: <requestId>`. */
export interface HttpToolDefinition {
  description?: string;
  /** Default 'none'. */
  requires?: ToolRequirement;
  parameters?: ToolParameters;
  /** As on ToolDefinition: the stored row holds a digest of the args. */
  sensitive?: boolean;
  http: { url: string; headers?: Record<string, string>; timeoutMs?: number };
}

export interface AgentDefinition {
  name: string;
  /** Runs once when a version is deployed (and when its worker restarts); a throw rejects the deploy. */
  init?(): Promise<void> | void;
  onStart?(ctx: AgentContext): Promise<void> | void;
  onUtterance?(ctx: AgentContext, utterance: Utterance): Promise<void> | void;
  onDtmf?(ctx: AgentContext, digit: string): Promise<void> | void;
  /** The caller has been silent for a while after the agent spoke. */
  onSilence?(ctx: AgentContext, info: { silentMs: number }): Promise<void> | void;
  /**
   * An outbound call with answering-machine detection was answered (see `AnsweredInfo`): runs before `onStart`.
   * A person (or an undecided answer treated as one) then gets `onStart`; a machine does not — leave the voicemail
   * here (`say`/`play`, then `hangup`). Without this hook a machine's call is simply hung up.
   */
  onAnswered?(ctx: AgentContext, info: AnsweredInfo): Promise<void> | void;
  /** A warm transfer did not reach the human: the caller is back with the agent (see `TransferOptions`). */
  onTransferFailed?(ctx: AgentContext, info: { reason: TransferFailure; target: string }): Promise<void> | void;
  /**
   * The call came back after its media was lost (restart, network, migration): pick up where it was. Also when a
   * supervisor who took the call over hands it back (`info.reason: 'handback'`, with what the caller and the
   * supervisor said meanwhile, in order).
   */
  onResume?(ctx: AgentContext, info: ResumeInfo): Promise<void> | void;
  /**
   * A supervisor whispered to the agent (issue 16): their words after speech-to-text, an instruction the caller never
   * heard. Runs as a turn of its own, between the caller's turns.
   */
  onWhisper?(ctx: AgentContext, text: string): Promise<void> | void;
  tools?: Record<string, ToolDefinition | HttpToolDefinition>;
  /** Barge-in, backchannels and end of turn for this agent's calls; a missing field keeps its default. */
  turnTaking?: TurnTakingOptions;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,99}$/;

/** Checks the definition's shape and returns it; a mistake is reported at deploy, not mid-call. */
export function defineAgent<D extends AgentDefinition>(def: D): D {
  if (!def || typeof def !== 'object') throw new TypeError('defineAgent: expected an object');
  if (typeof def.name !== 'string' || !NAME.test(def.name)) throw new TypeError(`defineAgent: name must match ${NAME}`);
  for (const hook of ['init', 'onStart', 'onUtterance', 'onDtmf', 'onSilence', 'onResume', 'onAnswered', 'onTransferFailed', 'onWhisper'] as const) {
    if (def[hook] !== undefined && typeof def[hook] !== 'function') throw new TypeError(`defineAgent: ${hook} must be a function`);
  }
  if (def.turnTaking !== undefined) resolveTurnTaking(def.turnTaking); // throws on a wrong type, at deploy
  for (const [name, tool] of Object.entries(def.tools ?? {})) {
    const ok = tool && (typeof (tool as ToolDefinition).run === 'function' || typeof (tool as HttpToolDefinition).http?.url === 'string');
    if (!ok) throw new TypeError(`defineAgent: tool ${name} needs run() or http.url`);
    const requires = (tool as ToolDefinition).requires;
    if (requires !== undefined && !TOOL_REQUIREMENTS.includes(requires)) throw new TypeError(`defineAgent: tool ${name} requires must be one of ${TOOL_REQUIREMENTS.join(', ')}`);
    const parameters = (tool as ToolDefinition).parameters as unknown;
    if (parameters !== undefined && (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters))) throw new TypeError(`defineAgent: tool ${name} parameters must be a JSON schema or a zod schema`);
    const sensitive = (tool as ToolDefinition).sensitive;
    if (sensitive !== undefined && typeof sensitive !== 'boolean') throw new TypeError(`defineAgent: tool ${name} sensitive must be a boolean`);
  }
  return def;
}

export type Hook = 'onStart' | 'onUtterance' | 'onDtmf' | 'onSilence' | 'onResume' | 'onAnswered' | 'onTransferFailed' | 'onWhisper';

/** Why `onResume` runs: the media came back (`media`), or a supervisor handed the call back (`handback`). */
export interface ResumeInfo {
  reason: 'media' | 'handback';
  /** `handback`: what was said while the supervisor had the call, in order (empty without speech-to-text). */
  transcript: { speaker: 'caller' | 'supervisor'; text: string }[];
}
