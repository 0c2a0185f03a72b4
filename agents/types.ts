/**
 * The contract between the call bridge and an agent runtime. The bridge runs
 * turns one at a time per call and implements the actions (media, store
 * rows, idempotency); a runtime — in-process for built-in agents, a worker
 * thread for deployed versions — runs the author's hooks against them.
 * An agent never sees a provider or a socket.
 */
import type { AnsweredInfo, GatherOptions, GatherResult, Hook, Json, ResumeInfo, SayResult, ToolContext, ToolRequirement, TransferFailure, TransferOptions, TurnTakingOptions, Utterance } from './sdk.ts';

export type { AnsweredInfo, GatherOptions, GatherResult, Hook, Json, ResumeInfo, SayResult, TransferFailure, TransferOptions, Utterance } from './sdk.ts';

export interface TurnInput {
  hook: Hook;
  callId: string;
  turn: number;
  call: { from: string; to: string };
  /** The call's agent state as of the turn's start. */
  state: Record<string, Json>;
  /** `final` may be left out: a final utterance (agents/context.ts fills it in). */
  utterance?: Omit<Utterance, 'final'> & { final?: boolean };
  digit?: string;
  silentMs?: number;
  answered?: AnsweredInfo;
  /** `onTransferFailed`: why the warm transfer failed, and its target. */
  transferFailed?: { reason: TransferFailure; target: string };
  /** `onWhisper`: the supervisor's words. */
  whisper?: string;
  /** `onResume`: why, and (a hand-back) what was said meanwhile; absent = the media came back. */
  resumed?: ResumeInfo;
}

/** What a turn may do; implemented by the bridge for one call and turn. */
export interface TurnActions {
  say(text: string): Promise<SayResult>;
  play(wav: Uint8Array): Promise<SayResult>;
  gather(opts: GatherOptions): Promise<GatherResult>;
  transfer(target: string, opts?: TransferOptions): Promise<void>;
  hangup(reason: string): Promise<void>;
  /** Idempotent tool call: the bridge checks the store and asks the runtime to execute only when needed. */
  tool(name: string, args: Json): Promise<Json>;
  note(text: string): Promise<void>;
  /** Starts a PCI pause of the call's recording and transcription (`reason`, e.g. 'pci'). */
  pauseRecording(reason: string): Promise<void>;
  /** Ends it. */
  resumeRecording(): Promise<void>;
  /** A short filler while the runtime recovers (worker restart): the caller hears something, not silence. */
  filler(reason: string): Promise<void>;
  /** A span the agent's runtime measured (an LLM request), for the turn's trace; times in epoch ms, never content. */
  trace?(span: AgentSpan): void;
}

/** Where the agent's runtime installs its `(span: AgentSpan) => void` for the LLM helper (a global: the helper is bundled apart). */
export const LLM_SPAN_REPORTER: unique symbol = Symbol.for('switchboard.llm-span') as never;

/** What the LLM helper reports of one request (agents/llm.ts, through `LLM_SPAN_REPORTER`). */
export interface AgentSpan {
  name: 'llm';
  startMs: number;
  endMs: number;
  /** The first content or tool-call delta, or null (none came). */
  firstTokenMs: number | null;
  attributes: Record<string, string | number | boolean>;
}

export interface TurnOutcome {
  /** The state to save for the call. */
  state: Record<string, Json>;
}

export interface Agent {
  readonly name: string;
  readonly version: string;
  /** Which hooks the agent defines (a missing hook's turn is skipped). */
  has(hook: Hook): boolean;
  runTurn(input: TurnInput, actions: TurnActions): Promise<TurnOutcome>;
  /** Executes one tool (called by the bridge when the store has no result for its request id yet). */
  runTool(name: string, args: Json, ctx: ToolContext): Promise<Json>;
  /** What the agent's tool declares it needs (absent, or a tool it lacks: 'none'). */
  toolRequires?(name: string): ToolRequirement;
  /** True if the agent's tool is declared `sensitive` (its args are never stored). */
  toolSensitive?(name: string): boolean;
  /** The agent's `turnTaking` options as declared (absent: the defaults); merged in media/turn-taking.ts. */
  readonly turnTaking?: TurnTakingOptions;
}
