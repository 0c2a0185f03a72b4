/**
 * The messages between the gateway thread and an agent worker (see the
 * diagram in worker-agent.ts). Both sides parse every message they receive
 * with these schemas; one that fails is reported as `{ type: 'unknown' }`,
 * logged and ignored — a malformed message never crashes either side.
 *
 * Everything is structured-cloned by `postMessage`: the values are JSON
 * except `play`'s WAV, which crosses as a Uint8Array.
 */
import { z } from 'zod';
import { isToolRefusal, ToolRefusedError, type GatherOptions } from '../sdk.ts';
import type { TurnActions } from '../types.ts';

/** A JSON value (state, tool arguments and results). */
export const JsonValue = z.json();
const json = JsonValue;

/** An error as it crosses the thread boundary (the stack is the agent's, for logs). */
export const ErrorInfo = z.object({
  message: z.string(),
  name: z.string().optional(),
  stack: z.string().optional(),
  /** A tool refusal's kind and the approver's reason (agents/sdk.ts ToolRefusedError). */
  refusal: z.enum(['consent', 'denied', 'timeout', 'cancelled']).optional(),
  reason: z.string().nullable().optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

export const HOOKS = ['onStart', 'onUtterance', 'onDtmf', 'onSilence', 'onResume', 'onAnswered', 'onTransferFailed', 'onWhisper'] as const;
const HookSchema = z.enum(HOOKS);

const DtmfOptions = z.object({ maxDigits: z.number().int().positive().optional(), finishOn: z.string().optional() });
const GatherShape = z
  .object({ prompt: z.string().optional(), timeoutMs: z.number().nonnegative().optional(), dtmf: DtmfOptions.optional(), speech: z.boolean().optional() })
  .refine((o) => o.dtmf !== undefined || o.speech === true, 'gather needs dtmf options or speech: true');
const GatherOptionsSchema = z.custom<GatherOptions>((v) => GatherShape.safeParse(v).success, 'invalid gather options');

const TurnInputSchema = z.object({
  hook: HookSchema,
  callId: z.string(),
  turn: z.number().int(),
  call: z.object({ from: z.string(), to: z.string() }),
  state: z.record(z.string(), json),
  utterance: z.object({ text: z.string().nullable(), durationMs: z.number(), final: z.boolean().optional() }).optional(),
  digit: z.string().optional(),
  silentMs: z.number().optional(),
  answered: z.object({ by: z.enum(['human', 'machine', 'unknown']), treatedAs: z.enum(['human', 'machine']), evidence: z.record(z.string(), json) }).optional(),
  transferFailed: z.object({ reason: z.enum(['declined', 'no_answer', 'busy', 'timeout', 'hangup', 'failed']), target: z.string() }).optional(),
  whisper: z.string().optional(),
  resumed: z.object({ reason: z.enum(['media', 'handback']), transcript: z.array(z.object({ speaker: z.enum(['caller', 'supervisor']), text: z.string() })) }).optional(),
});
const TransferOptionsSchema = z.object({ mode: z.enum(['blind', 'warm']).optional(), summary: z.string().max(2000).optional(), timeoutMs: z.number().int().positive().max(600_000).optional() });

const ToolContextSchema = z.object({ callId: z.string(), turn: z.number().int(), requestId: z.string() });

// ── gateway → worker ────────────────────────────────────────────────────────

export const ToWorker = z.union([
  /** Import the bundle, validate its default export, run `init()`. */
  z.object({ type: z.literal('init'), name: z.string(), version: z.string() }),
  z.object({ type: z.literal('turn'), turnId: z.string(), input: TurnInputSchema }),
  z.object({ type: z.literal('action_result'), turnId: z.string(), seq: z.number().int(), ok: z.literal(true), value: z.unknown() }),
  z.object({ type: z.literal('action_result'), turnId: z.string(), seq: z.number().int(), ok: z.literal(false), error: ErrorInfo }),
  z.object({ type: z.literal('tool'), toolId: z.string(), name: z.string(), args: json, ctx: ToolContextSchema }),
]);
export type ToWorker = z.infer<typeof ToWorker>;

// ── worker → gateway ────────────────────────────────────────────────────────

/** One `ctx.<kind>(...)` call of a running turn; `seq` numbers the turn's actions. */
export const ActionCall = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('say'), args: z.tuple([z.string()]) }),
  z.object({ kind: z.literal('play'), args: z.tuple([z.instanceof(Uint8Array)]) }),
  z.object({ kind: z.literal('gather'), args: z.tuple([GatherOptionsSchema]) }),
  z.object({ kind: z.literal('transfer'), args: z.union([z.tuple([z.string().min(1)]), z.tuple([z.string().min(1), TransferOptionsSchema])]) }),
  z.object({ kind: z.literal('hangup'), args: z.tuple([z.string()]) }),
  z.object({ kind: z.literal('tool'), args: z.tuple([z.string(), json]) }),
  z.object({ kind: z.literal('note'), args: z.tuple([z.string()]) }),
  z.object({ kind: z.literal('pause_recording'), args: z.tuple([z.string().min(1).max(200)]) }),
  z.object({ kind: z.literal('resume_recording'), args: z.tuple([]) }),
]);
export type ActionCall = z.infer<typeof ActionCall>;
export type ActionKind = ActionCall['kind'];

export const ActionMessage = z.intersection(z.object({ type: z.literal('action'), turnId: z.string(), seq: z.number().int() }), ActionCall);

export type ActionMessage = z.infer<typeof ActionMessage>;

export const FromWorker = z.union([
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('init_done'), ok: z.literal(true), hooks: z.array(HookSchema), tools: z.record(z.string(), z.enum(['none', 'consent', 'approval'])).optional(), sensitive: z.array(z.string()).optional(), turnTaking: z.record(z.string(), z.union([z.record(z.string(), z.unknown()), z.array(z.string())])).optional() }),
  z.object({ type: z.literal('init_done'), ok: z.literal(false), error: ErrorInfo, hooks: z.array(HookSchema).optional() }),
  ActionMessage,
  z.object({ type: z.literal('turn_done'), turnId: z.string(), ok: z.literal(true), state: z.record(z.string(), json) }),
  z.object({ type: z.literal('turn_done'), turnId: z.string(), ok: z.literal(false), error: ErrorInfo }),
  z.object({ type: z.literal('tool_done'), toolId: z.string(), ok: z.literal(true), value: json }),
  z.object({ type: z.literal('tool_done'), toolId: z.string(), ok: z.literal(false), error: ErrorInfo }),
  z.object({
    type: z.literal('span'),
    turnId: z.string(),
    span: z.object({
      name: z.literal('llm'),
      startMs: z.number(),
      endMs: z.number(),
      firstTokenMs: z.number().nullable(),
      attributes: z.record(z.string(), z.union([z.string().max(200), z.number(), z.boolean()])),
    }),
  }),
]);
export type FromWorker = z.infer<typeof FromWorker>;

/** A message that failed validation: logged and ignored by the receiver. */
export interface UnknownMessage {
  type: 'unknown';
  raw: unknown;
  issues: string;
}

export function parseToWorker(raw: unknown): ToWorker | UnknownMessage {
  const r = ToWorker.safeParse(raw);
  return r.success ? r.data : { type: 'unknown', raw, issues: z.prettifyError(r.error) };
}

export function parseFromWorker(raw: unknown): FromWorker | UnknownMessage {
  const r = FromWorker.safeParse(raw);
  return r.success ? r.data : { type: 'unknown', raw, issues: z.prettifyError(r.error) };
}

/** Validates an action before the worker posts it, so a bad argument fails the agent's call, not the turn. */
export function checkAction(call: { kind: string; args: unknown[] }): ActionCall | string {
  const r = ActionCall.safeParse(call);
  return r.success ? r.data : `ctx.${call.kind}: ${z.prettifyError(r.error)}`;
}

export function errorInfo(err: unknown): ErrorInfo {
  if (isToolRefusal(err)) return { message: err.message, name: err.name, refusal: err.refusal, reason: err.reason };
  if (err instanceof Error) return { message: err.message, name: err.name, ...(err.stack ? { stack: err.stack } : {}) };
  return { message: String(err) };
}

/** The Error a receiver rethrows: the sender's message and name, and its stack for logs. */
export function toError(info: ErrorInfo, prefix = ''): Error {
  if (info.refusal) return new ToolRefusedError(info.refusal, info.reason ?? null, prefix + info.message);
  const err = new Error(prefix + info.message);
  if (info.name && info.name !== 'Error') err.name = info.name;
  if (info.stack) err.stack = `${err.name}: ${err.message}\n  [worker] ${info.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/** Performs an action the worker asked for on the bridge's TurnActions. */
export function applyAction(actions: TurnActions, call: ActionCall): Promise<unknown> {
  switch (call.kind) {
    case 'say':
      return actions.say(call.args[0]);
    case 'play':
      return actions.play(call.args[0]);
    case 'gather':
      return actions.gather(call.args[0]);
    case 'transfer':
      return call.args[1] === undefined ? actions.transfer(call.args[0]) : actions.transfer(call.args[0], call.args[1]);
    case 'hangup':
      return actions.hangup(call.args[0]);
    case 'tool':
      return actions.tool(call.args[0], call.args[1]);
    case 'note':
      return actions.note(call.args[0]);
    case 'pause_recording':
      return actions.pauseRecording(call.args[0]);
    case 'resume_recording':
      return actions.resumeRecording();
  }
}
