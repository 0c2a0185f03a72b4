/**
 * Tool calling for the LLM helper (`switchboard/llm`): the agent's tools go to
 * an OpenAI-compatible endpoint as `tools`, the model's calls run through
 * `ctx.tool`, their results go back, and the answer streams like `chat()`'s —
 * so `speakStream(ctx, chatWithTools(ctx, {...}))` speaks it sentence by
 * sentence.
 *
 *   const tools = { find_slot: { description: '…', parameters: z.object({ day: z.string() }), run: … } };
 *   export default defineAgent({ name: 'a', tools, async onUtterance(ctx, u) {
 *     await speakStream(ctx, chatWithTools(ctx, { model, messages, tools }));
 *   } });
 *
 *   round ─► POST (messages, tools) ─► content: yielded as it streams
 *                                   └► tool_calls ─► all at once through ctx.tool
 *         ◄── assistant {tool_calls} + one `tool` message per call ◄┘
 *   … until a round asks for no tool: its content was the answer.
 *
 * - Each call is `ctx.tool(name, args)`: an idempotent `agent_actions` row
 *   (request id from call, turn, tool and args), so a turn retried after a
 *   crash gets the stored results and the tools do not run again (as long as
 *   the model asks for the same calls).
 * - Errors go back to the model as the call's `tool` message
 *   (`{"error": …}`, plus `refused` for a consent/approval refusal): an
 *   unknown tool, arguments that are not JSON or fail the zod schema, a tool
 *   that threw. The model decides what to tell the caller.
 * - Content the model streams before its calls ("Let me check") is yielded
 *   at once and ends a sentence (a `.` is added after a bare word), so
 *   speakStream says it while the tools run.
 * - At most `maxToolCalls` calls run per turn (default 8); calls past it are
 *   answered with an error and the next round is sent with
 *   `tool_choice: "none"`. A model that still asks for tools then fails with
 *   an `LlmError`.
 * - Parameters: a plain JSON schema is sent as is; a zod 4 schema is
 *   converted with `z.toJSONSchema` and also checks the model's arguments.
 *
 * Bundled into agent workers like llm.ts: Node built-ins, fetch, zod/mini.
 */
import * as z from 'zod/mini';
import { LlmError, streamChat, type ChatMessage, type ChatOptions, type ChatToolCall, type ChatToolSpec } from './llm.ts';
import { isToolRefusal, type AgentContext, type Json, type ToolParameters } from './sdk.ts';

/** What the model is told of a tool; an agent's `tools` entries fit (their `run`/`http` are not sent). */
export interface LlmTool {
  description?: string;
  parameters?: ToolParameters;
}

export interface ToolChatOptions extends Omit<ChatOptions, 'tools' | 'toolChoice'> {
  /** The tools the model may call, by name: usually the agent's own `tools` object (or some of it). */
  tools: Readonly<Record<string, LlmTool>>;
  /** Tool calls run per turn at most (default DEFAULT_MAX_TOOL_CALLS). */
  maxToolCalls?: number;
  /** First round's choice (later rounds are 'auto', or 'none' past the limit). Default 'auto'. */
  toolChoice?: 'auto' | 'required';
}

export const DEFAULT_MAX_TOOL_CALLS = 8;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {} };

type ZodSchema = Parameters<typeof z.safeParse>[0];

function zodOf(parameters: ToolParameters | undefined): ZodSchema | null {
  return parameters !== undefined && '_zod' in parameters ? (parameters as unknown as ZodSchema) : null;
}

/** The request's `tools`: name, description, JSON schema of each (a tool with none takes an empty object). */
export function toolSpecs(tools: Readonly<Record<string, LlmTool>>): ChatToolSpec[] {
  return Object.entries(tools).map(([name, tool]) => {
    if (!TOOL_NAME.test(name)) throw new TypeError(`chatWithTools: tool name ${JSON.stringify(name)} must match ${TOOL_NAME} for an LLM`);
    const zod = zodOf(tool.parameters);
    let parameters: Record<string, unknown> = EMPTY_OBJECT_SCHEMA;
    if (zod) {
      const { $schema: _dialect, ...schema } = z.toJSONSchema(zod) as Record<string, unknown>;
      parameters = schema;
    } else if (tool.parameters) parameters = tool.parameters as Record<string, unknown>;
    return { type: 'function', function: { name, ...(tool.description ? { description: tool.description } : {}), parameters } };
  });
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 500);
const toolMessage = (call: ChatToolCall, content: Json): ChatMessage => ({
  role: 'tool',
  tool_call_id: call.id,
  content: typeof content === 'string' ? content : JSON.stringify(content),
});

/** Runs one call through ctx.tool; whatever goes wrong becomes the error the model reads. */
async function runCall(ctx: Pick<AgentContext, 'tool'>, tools: Readonly<Record<string, LlmTool>>, call: ChatToolCall): Promise<ChatMessage> {
  const name = call.function.name;
  const tool = Object.hasOwn(tools, name) ? tools[name] : undefined;
  if (!tool) return toolMessage(call, { error: `unknown tool ${JSON.stringify(name)}` });
  let args: Json;
  try {
    args = (call.function.arguments.trim() === '' ? {} : JSON.parse(call.function.arguments)) as Json;
  } catch {
    return toolMessage(call, { error: 'the arguments are not valid JSON' });
  }
  const zod = zodOf(tool.parameters);
  if (zod) {
    const checked = z.safeParse(zod, args);
    if (!checked.success) {
      const issues = checked.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`);
      return toolMessage(call, { error: `invalid arguments: ${issues.join('; ')}` });
    }
  }
  try {
    return toolMessage(call, (await ctx.tool(name, args)) ?? null);
  } catch (err) {
    if (isToolRefusal(err)) return toolMessage(call, { error: errorMessage(err), refused: err.refusal });
    return toolMessage(call, { error: errorMessage(err) });
  }
}

/**
 * Streams the model's answer, running the tools it asks for in between (see
 * the header). Nothing is sent until the iteration starts; aborting
 * `opts.signal` stops it between and during requests.
 */
export async function* chatWithTools(ctx: Pick<AgentContext, 'tool'>, opts: ToolChatOptions): AsyncGenerator<string, void, undefined> {
  const specs = toolSpecs(opts.tools);
  const max = opts.maxToolCalls ?? DEFAULT_MAX_TOOL_CALLS;
  const messages: ChatMessage[] = [...opts.messages];
  let used = 0;
  for (let round = 0; ; round += 1) {
    const pastLimit = used >= max;
    const toolChoice = specs.length === 0 ? undefined : pastLimit ? 'none' : round === 0 ? (opts.toolChoice ?? 'auto') : 'auto';
    const stream = streamChat({ ...opts, messages, tools: specs, toolChoice });
    let content = '';
    let next = await stream.next();
    while (!next.done) {
      content += next.value;
      yield next.value;
      next = await stream.next();
    }
    const calls = next.value;
    if (calls.length === 0) return;
    if (pastLimit) throw new LlmError(`LLM: the model asked for tools after the limit of ${max} calls this turn`, null, false);
    // What it said before the calls is a sentence of its own, spoken while the tools run.
    if (/[\p{L}\p{N}]$/u.test(content)) yield '. ';
    else if (content !== '' && !/\s$/.test(content)) yield ' ';
    messages.push({ role: 'assistant', content: content === '' ? null : content, tool_calls: calls });
    const results = await Promise.all(
      calls.map((call, i) =>
        used + i < max ? runCall(ctx, opts.tools, call) : Promise.resolve(toolMessage(call, { error: `not run: at most ${max} tool calls per turn; answer with what you have` })),
      ),
    );
    used += calls.length;
    messages.push(...results);
    opts.signal?.throwIfAborted();
  }
}
