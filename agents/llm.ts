/**
 * The LLM helper for agents: a streaming client for OpenAI-compatible chat
 * APIs (OpenAI and other hosted APIs, llama.cpp server, Ollama, vLLM) and the
 * glue to speak a reply while it is still being generated.
 *
 *   import { chat, speakStream } from '../llm.ts';
 *   const text = await speakStream(ctx, chat({ model: 'gpt-4o-mini', messages }));
 *
 * - `chat()` POSTs `/chat/completions` with `stream: true` and yields the
 *   content deltas of the server-sent events (`data: {...}` … `data: [DONE]`).
 *   The base URL and key default to `OPENAI_BASE_URL` / `OPENAI_API_KEY`.
 *   Failures are `LlmError`s carrying the HTTP status, the server's message
 *   and whether a retry could help (429, 5xx, network, timeout).
 * - `sentences()` regroups tokens into sentences; `speakStream()` says each
 *   one as soon as it is complete, in order, while the stream goes on.
 * - `chatWithTools()` (llm-tools.ts, re-exported here) adds tool calling: the
 *   agent's tools go to the model as `tools`, its calls run through
 *   `ctx.tool` and the answer after them streams like `chat()`'s.
 *
 *   chat ─► streamChat ─► content deltas (yielded) + tool_calls deltas
 *                         (accumulated by index: id, name, arguments in
 *                         pieces) ─► returned when the stream ends
 *
 * Agents run bundled in worker threads, so this module uses only Node
 * built-ins, fetch and zod/mini (bundled along, ~40 kB), and imports nothing
 * from the gateway but the SDK's types.
 */
import * as z from 'zod/mini';
import type { AgentContext } from './sdk.ts';
import { LLM_SPAN_REPORTER, type AgentSpan } from './types.ts';

export { chatWithTools, toolSpecs, DEFAULT_MAX_TOOL_CALLS, type ToolChatOptions, type LlmTool } from './llm-tools.ts';

/** One call the model asked for, as OpenAI sends it (`arguments` is a JSON string, possibly invalid). */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A tool offered to the model (`tools` of the request). */
export interface ChatToolSpec {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

export type ChatMessage =
  | { role: 'system' | 'user' | 'assistant'; content: string }
  /** The model's turn that asked for tools (content may accompany the calls). */
  | { role: 'assistant'; content: string | null; tool_calls: ChatToolCall[] }
  /** A tool's result (or error), answering the call with that id. */
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatOptions {
  /** Default `OPENAI_BASE_URL`, else `https://api.openai.com/v1`. */
  baseUrl?: string;
  /** Default `OPENAI_API_KEY`; none sends no Authorization (local servers). */
  apiKey?: string;
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Aborting it rejects with the signal's reason (not an LlmError). */
  signal?: AbortSignal;
  /** Deadline for the whole reply, stream included (default 30 000 ms). */
  timeoutMs?: number;
  /** Tools the model may call (`chat()` ignores its calls; `chatWithTools()` runs them). */
  tools?: ChatToolSpec[];
  toolChoice?: 'auto' | 'none' | 'required';
  /** Default: the server's (OpenAI: true). */
  parallelToolCalls?: boolean;
}

export class LlmError extends Error {
  override readonly name = 'LlmError';
  constructor(
    message: string,
    /** The HTTP status, or null (network, timeout, bad stream). */
    readonly status: number | null,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const retryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

// zod/mini: tree-shakable, so an agent's bundle stays small. Unknown fields are allowed (stripped): servers add their own.
const ErrorBody = z.object({
  error: z.union([z.string(), z.object({ message: z.optional(z.string()), code: z.nullish(z.union([z.string(), z.number()])) })]),
});
const ToolCallDelta = z.object({
  index: z.optional(z.number()),
  id: z.nullish(z.string()),
  function: z.nullish(z.object({ name: z.nullish(z.string()), arguments: z.nullish(z.string()) })),
});
const StreamChunk = z.object({
  choices: z.nullish(
    z.array(
      z.object({
        delta: z.nullish(z.object({ content: z.nullish(z.string()), tool_calls: z.nullish(z.array(ToolCallDelta)) })),
        finish_reason: z.nullish(z.string()),
      }),
    ),
  ),
});
const Completion = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.nullish(z.string()), tool_calls: z.nullish(z.array(ToolCallDelta)) }) })).check(z.minLength(1)),
});

/** Tool calls streamed in pieces, merged by index as OpenAI's own clients do: id and name set, arguments appended. */
class ToolCallAccumulator {
  private readonly calls = new Map<number, ChatToolCall>();
  add(deltas: ReadonlyArray<z.infer<typeof ToolCallDelta>>): void {
    for (const [i, d] of deltas.entries()) {
      const index = d.index ?? i;
      let call = this.calls.get(index);
      if (!call) {
        call = { id: '', type: 'function', function: { name: '', arguments: '' } };
        this.calls.set(index, call);
      }
      if (d.id) call.id = d.id;
      if (d.function?.name) call.function.name = d.function.name;
      if (d.function?.arguments) call.function.arguments += d.function.arguments;
    }
  }
  /** The calls in index order; one without an id gets a made-up one (some local servers omit it). */
  done(): ChatToolCall[] {
    return [...this.calls.entries()].sort(([a], [b]) => a - b).map(([index, c]) => ({ ...c, id: c.id || `call_${index}` }));
  }
}

function errorMessage(body: unknown): string | null {
  const parsed = ErrorBody.safeParse(body);
  if (!parsed.success) return null;
  const e = parsed.data.error;
  return typeof e === 'string' ? e : (e.message ?? (e.code != null ? String(e.code) : null));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Streams the reply's content deltas. Nothing is sent until the iteration starts. */
export async function* chat(opts: ChatOptions): AsyncGenerator<string, void, undefined> {
  yield* streamChat(opts);
}

/**
 * Streams the reply's content deltas and returns (as the generator's return
 * value) the tool calls the model asked for, empty when none.
 */
export async function* streamChat(opts: ChatOptions): AsyncGenerator<string, ChatToolCall[], undefined> {
  // Timing for the turn's trace (when the agent runtime listens): when it started, its first delta, its end — no content.
  const startMs = Date.now();
  let firstTokenMs: number | null = null;
  let calls = 0;
  let ok = false;
  const generate = requestChat(opts, () => void (firstTokenMs ??= Date.now()));
  try {
    for (let next = await generate.next(); ; next = await generate.next()) {
      if (next.done) {
        calls = next.value.length;
        ok = true;
        return next.value;
      }
      firstTokenMs ??= Date.now();
      yield next.value;
    }
  } finally {
    if (!ok) await generate.return([]); // the consumer stopped early: close the request
    const report = (globalThis as Record<symbol, unknown>)[LLM_SPAN_REPORTER];
    if (typeof report === 'function') {
      const span: AgentSpan = { name: 'llm', startMs, endMs: Date.now(), firstTokenMs, attributes: { 'gen_ai.request.model': opts.model.slice(0, 100), 'switchboard.tool_calls': calls, 'switchboard.ok': ok } };
      (report as (s: AgentSpan) => void)(span);
    }
  }
}

async function* requestChat(opts: ChatOptions, onToolDelta: () => void): AsyncGenerator<string, ChatToolCall[], undefined> {
  const baseUrl = (opts.baseUrl ?? process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
  const apiKey = opts.apiKey ?? process.env.OPENAI_API_KEY;
  const url = `${baseUrl}/chat/completions`;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  const body: Record<string, unknown> = { model: opts.model, messages: opts.messages, stream: true };
  if (opts.temperature !== undefined) body.temperature = opts.temperature;
  if (opts.maxTokens !== undefined) body.max_tokens = opts.maxTokens;
  if (opts.tools && opts.tools.length > 0) {
    body.tools = opts.tools;
    if (opts.toolChoice !== undefined) body.tool_choice = opts.toolChoice;
    if (opts.parallelToolCalls !== undefined) body.parallel_tool_calls = opts.parallelToolCalls;
  }
  const toolCalls = new ToolCallAccumulator();

  /** Maps a thrown fetch/read error; the caller's own abort passes through. */
  const failure = (err: unknown, what: string): unknown => {
    if (err instanceof LlmError) return err;
    if (opts.signal?.aborted) return opts.signal.reason ?? err;
    if (deadline.aborted) return new LlmError(`LLM ${url}: no complete reply within ${timeoutMs} ms`, null, true, { cause: err });
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return new LlmError(`LLM ${url}: ${what}: ${err instanceof Error ? err.message : String(err)}${cause}`, null, true, { cause: err });
  };

  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    throw failure(err, 'request failed');
  }

  if (!res.ok) {
    let text = '';
    try {
      text = await res.text();
    } catch (err) {
      throw failure(err, `HTTP ${res.status}, body unreadable`);
    }
    const message = errorMessage(parseJson(text)) ?? (text.trim().slice(0, 300) || res.statusText);
    throw new LlmError(`LLM ${url}: HTTP ${res.status}: ${message}`, res.status, retryableStatus(res.status));
  }

  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('text/event-stream')) {
    // A server that ignored `stream: true` and answered with one completion.
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw failure(err, 'reading the reply');
    }
    const parsed = Completion.safeParse(parseJson(text));
    if (!parsed.success) throw new LlmError(`LLM ${url}: unexpected reply (${type || 'no content-type'}): ${text.slice(0, 200)}`, res.status, false);
    const message = parsed.data.choices[0]?.message;
    if (message?.content) yield message.content;
    toolCalls.add(message?.tool_calls ?? []);
    return toolCalls.done();
  }
  if (!res.body) throw new LlmError(`LLM ${url}: empty event stream`, res.status, true);

  let done = false;
  let finished = false;
  try {
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') {
        done = true;
        break;
      }
      const json = parseJson(data);
      if (json === undefined) throw new LlmError(`LLM ${url}: the event stream sent data that is not JSON: ${data.slice(0, 200)}`, null, false);
      const serverError = errorMessage(json);
      if (serverError !== null) throw new LlmError(`LLM ${url}: error in the stream: ${serverError}`, null, true);
      const chunk = StreamChunk.safeParse(json);
      if (!chunk.success) {
        const issue = chunk.error.issues[0];
        throw new LlmError(`LLM ${url}: unexpected stream chunk (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}): ${data.slice(0, 200)}`, null, false);
      }
      const choice = chunk.data.choices?.[0];
      if (choice?.finish_reason) finished = true;
      const content = choice?.delta?.content;
      if (content) yield content;
      if (choice?.delta?.tool_calls) {
        onToolDelta();
        toolCalls.add(choice.delta.tool_calls);
      }
    }
  } catch (err) {
    throw failure(err, 'reading the event stream');
  }
  if (!done && !finished) throw new LlmError(`LLM ${url}: the event stream ended before [DONE]`, null, true);
  return toolCalls.done();
}

/**
 * The `data` of each server-sent event in a byte stream (WHATWG SSE rules):
 * lines end in LF, CR or CRLF, split anywhere across chunks; `:` lines are
 * comments; several `data:` lines join with `\n`; a blank line dispatches.
 * `event`, `id` and `retry` are ignored; any other line is an error, since an
 * OpenAI-compatible server never sends one (it is usually a proxy's page).
 */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  let buf = '';
  let data: string[] = [];
  function* lines(final: boolean): Generator<string> {
    for (;;) {
      const i = buf.search(/[\r\n]/);
      if (i < 0 || (buf[i] === '\r' && i === buf.length - 1 && !final)) return; // a CR may be half of a CRLF
      const end = buf[i] === '\r' && buf[i + 1] === '\n' ? i + 2 : i + 1;
      const line = buf.slice(0, i);
      buf = buf.slice(end);
      yield line;
    }
  }
  function* handle(line: string): Generator<string> {
    if (line === '') {
      if (data.length > 0) yield data.join('\n');
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field !== 'event' && field !== 'id' && field !== 'retry') {
      throw new LlmError(`unexpected line in the event stream: ${line.slice(0, 200)}`, null, false);
    }
  }
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    for (const line of lines(false)) yield* handle(line);
  }
  buf += decoder.decode();
  for (const line of lines(true)) yield* handle(line);
  if (buf !== '') yield* handle(buf);
  yield* handle(''); // a last event without its blank line
}

const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'vs', 'approx', 'dept', 'fig']);
const TERMINATOR = /[.!?]+["'\u2019\u201d)\]]*(?=\s)/g;

/** Where the first complete sentence in `text` ends (a terminator followed by whitespace), or -1. */
function sentenceEnd(text: string): number {
  for (const m of text.matchAll(TERMINATOR)) {
    const end = m.index + m[0].length;
    if (m[0].startsWith('.') && !m[0].startsWith('..')) {
      const word = (/(\S+)$/.exec(text.slice(0, m.index))?.[1] ?? '').replace(/^["'(\[\u2018\u201c]+/, '');
      if (ABBREVIATIONS.has(word.toLowerCase())) continue;
      if (/^([a-z]\.)+[a-z]$/i.test(word) || /^[A-Z]$/.test(word)) continue; // e.g. / U.S. / J. Smith
      if (/^\d+$/.test(word) && text.slice(0, m.index).trim() === word) continue; // a list's "1. "
    }
    return end;
  }
  return -1;
}

/**
 * Regroups a token stream into sentences: each ends at `.`, `!` or `?` (and
 * closing quotes/brackets) followed by whitespace, except after common
 * abbreviations ("Dr.", "e.g.") and initials; decimals ("3.5") never split.
 * The rest is flushed when the stream ends; empty pieces are skipped.
 */
export async function* sentences(tokens: AsyncIterable<string>): AsyncGenerator<string, void, undefined> {
  let buf = '';
  for await (const token of tokens) {
    buf += token;
    for (let end = sentenceEnd(buf); end >= 0; end = sentenceEnd(buf)) {
      const sentence = buf.slice(0, end).trim();
      buf = buf.slice(end);
      if (sentence) yield sentence;
    }
  }
  const rest = buf.trim();
  if (rest) yield rest;
}

/**
 * Says a streamed reply sentence by sentence: each `ctx.say` starts as soon as
 * its sentence is complete (after the previous one), while the stream keeps
 * being read. Resolves with the full text once everything has been said. If
 * the caller barges in (a say comes back `interrupted`), nothing more is said,
 * the stream is dropped and the result is the sentences said up to then. A
 * stream error is thrown after the sentences already queued have been said.
 */
export async function speakStream(ctx: Pick<AgentContext, 'say'>, tokens: AsyncIterable<string>): Promise<string> {
  let full = '';
  const said: string[] = [];
  let interrupted = false;
  let sayError: { error: unknown } | null = null;
  let speaking: Promise<void> = Promise.resolve();
  async function* collect(): AsyncGenerator<string> {
    for await (const token of tokens) {
      full += token;
      yield token;
    }
  }
  const sayNext = (sentence: string) => async (): Promise<void> => {
    if (interrupted || sayError) return;
    try {
      const result = await ctx.say(sentence);
      said.push(sentence);
      if (result.interrupted) interrupted = true;
    } catch (error) {
      sayError = { error };
    }
  };
  let streamError: { error: unknown } | null = null;
  try {
    for await (const sentence of sentences(collect())) {
      if (interrupted || sayError) break;
      speaking = speaking.then(sayNext(sentence));
    }
  } catch (error) {
    streamError = { error };
  }
  await speaking;
  // Checked through a cast: TypeScript cannot see the closure's assignments.
  const failedSay = sayError as { error: unknown } | null;
  if (failedSay) throw failedSay.error;
  if (interrupted) return said.join(' ');
  if (streamError) throw streamError.error;
  return full;
}
