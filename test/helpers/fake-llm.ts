/**
 * fake-llm: a TEST DOUBLE for an OpenAI-compatible chat API (OpenAI, or a
 * llama.cpp / Ollama / vLLM server), which tests cannot reach offline. It is a
 * real loopback HTTP server speaking the documented wire format, so the real
 * `agents/llm.ts` client is exercised over real fetch:
 * - `POST /v1/chat/completions` with `stream: true`: `text/event-stream` of
 *   `data: {chat.completion.chunk}` events — a role delta first, the content
 *   as small token deltas (`delayMs` apart), an empty delta with
 *   `finish_reason: "stop"`, then `data: [DONE]`. Without `stream`: one
 *   `chat.completion` JSON.
 * - `Authorization: Bearer <apiKey>` is checked (401 `invalid_api_key`
 *   otherwise); `status` / `failFirst` answer OpenAI-style error bodies.
 * - `wire` varies the bytes (CRLF, `:` comment lines, writes split every N
 *   bytes) and `raw` replaces the event stream verbatim, for parser tests.
 * - Tool calls: a `reply` of `{ toolCalls: [...] }` streams them as OpenAI
 *   does — per call a first delta `{index, id, type, function: {name,
 *   arguments: ""}}`, then the arguments JSON in small pieces
 *   (`{index, function: {arguments}}`), calls one after another, then
 *   `finish_reason: "tool_calls"`; content (if any) comes before them.
 * - `firstTokenMs` holds the first delta back (a model's time to first token).
 * It does not generate anything: `reply(messages)` scripts the answer.
 * Every request is recorded in `requests`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeLlmMessage {
  role: string;
  /** The content; a non-string (null, parts) as JSON. */
  content: string;
  /** A `tool` message's call id. */
  tool_call_id?: string;
  /** An assistant message's calls: name and arguments (the raw JSON string). */
  tool_calls?: Array<{ id: string; name: string; arguments: string }>;
}

/** A scripted tool call; `arguments` as an object is serialised, a string is sent verbatim (even invalid JSON). */
export interface FakeToolCall {
  name: string;
  arguments: unknown;
  id?: string;
}

export type FakeLlmReply = string | string[] | { content?: string | string[]; toolCalls?: FakeToolCall[] };

export interface FakeLlmOptions {
  /** The answer: a string (split into small tokens here) or the exact token deltas. */
  reply?: (messages: FakeLlmMessage[]) => FakeLlmReply;
  /** Between two writes of the stream (default 0). */
  delayMs?: number;
  /** Before the first delta of a streamed reply (default 0). */
  firstTokenMs?: number;
  /** Answer every request with this HTTP error status. */
  status?: number;
  /** Answer the first N requests with `status` (default 500), then normally. */
  failFirst?: number;
  /** The key expected after `Bearer ` (default 'test-key'). */
  apiKey?: string;
  wire?: { crlf?: boolean; comments?: boolean; chunkBytes?: number };
  /** Raw event-stream body pieces, written as given (`delayMs` apart) instead of the generated stream. */
  raw?: string[];
}

export interface FakeLlmRequest {
  method: string;
  path: string;
  authorization: string | null;
  status: number;
  stream: boolean;
  model: string | null;
  messages: FakeLlmMessage[];
  body: unknown;
}

export interface FakeLlm {
  /** Base URL ending in `/v1`, as `baseUrl` / OPENAI_BASE_URL. */
  url: string;
  apiKey: string;
  requests: FakeLlmRequest[];
  close(): Promise<void>;
}

/** Splits text into OpenAI-like token deltas: words with their leading space, long words in pieces of up to 4 characters. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const word of text.match(/\s*\S+|\s+$/g) ?? []) {
    for (let i = 0; i < word.length; i += 4) out.push(word.slice(i, i + 4));
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorBody(status: number, message: string, code: string | null): string {
  const type = status === 401 ? 'invalid_request_error' : status === 429 ? 'rate_limit_error' : 'server_error';
  return JSON.stringify({ error: { message, type, param: null, code } });
}

function messagesOf(body: unknown): FakeLlmMessage[] {
  const raw = (body as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(raw)) return [];
  return raw.map((m: unknown) => {
    const { role, content, tool_call_id, tool_calls } = (m ?? {}) as { role?: unknown; content?: unknown; tool_call_id?: unknown; tool_calls?: unknown };
    const out: FakeLlmMessage = { role: String(role), content: typeof content === 'string' ? content : JSON.stringify(content) };
    if (typeof tool_call_id === 'string') out.tool_call_id = tool_call_id;
    if (Array.isArray(tool_calls)) {
      out.tool_calls = tool_calls.map((c: unknown) => {
        const call = (c ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
        return { id: String(call.id), name: String(call.function?.name), arguments: String(call.function?.arguments) };
      });
    }
    return out;
  });
}

export async function startFakeLlm(opts: FakeLlmOptions = {}): Promise<FakeLlm> {
  const apiKey = opts.apiKey ?? 'test-key';
  const delayMs = opts.delayMs ?? 0;
  const requests: FakeLlmRequest[] = [];
  let served = 0;
  let seq = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => res.destroy());
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, text: string): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let body: unknown = null;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = null;
    }
    const b = (body ?? {}) as { stream?: unknown; model?: unknown };
    const record: FakeLlmRequest = {
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization ?? null,
      status: 200,
      stream: b.stream === true,
      model: typeof b.model === 'string' ? b.model : null,
      messages: messagesOf(body),
      body,
    };
    requests.push(record);
    const fail = (status: number, message: string, code: string | null = null): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(errorBody(status, message, code));
    };

    if (req.method !== 'POST' || path !== '/v1/chat/completions') return fail(404, `Unknown request URL: ${req.method} ${path}`, 'unknown_url');
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return fail(401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_api_key');
    }
    if (body === null || typeof b.model !== 'string' || record.messages.length === 0) return fail(400, 'model and messages are required', null);
    served += 1;
    if (opts.failFirst !== undefined ? served <= opts.failFirst : opts.status !== undefined) {
      const status = opts.status ?? 500;
      return fail(status, status === 429 ? 'Rate limit reached for requests' : 'The server had an error while processing your request. Sorry about that!');
    }

    const id = `chatcmpl-fake${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const reply = opts.reply?.(record.messages) ?? 'Hello from fake-llm.';
    const scripted = typeof reply === 'string' || Array.isArray(reply) ? { content: reply } : reply;
    const tokens = scripted.content === undefined ? [] : typeof scripted.content === 'string' ? tokenize(scripted.content) : scripted.content;
    const calls = (scripted.toolCalls ?? []).map((c, i) => ({
      id: c.id ?? `call_fake${seq}_${i}`,
      name: c.name,
      arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments),
    }));
    const finishReason = calls.length > 0 ? 'tool_calls' : 'stop';
    if (!record.stream) {
      const content = tokens.length > 0 || calls.length === 0 ? tokens.join('') : null;
      const toolCalls = calls.length > 0 ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {};
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: record.model,
          choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, ...toolCalls }, logprobs: null, finish_reason: finishReason }],
          usage: { prompt_tokens: 10, completion_tokens: tokens.length, total_tokens: 10 + tokens.length },
        }),
      );
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const write = async (piece: string): Promise<boolean> => {
      if (res.destroyed) return false;
      res.write(piece);
      if (delayMs > 0) await sleep(delayMs);
      else await new Promise<void>((resolve) => setImmediate(resolve));
      return !res.destroyed;
    };
    if (opts.firstTokenMs) await sleep(opts.firstTokenMs);
    if (opts.raw) {
      for (const piece of opts.raw) if (!(await write(piece))) return;
      res.end();
      return;
    }
    const nl = opts.wire?.crlf ? '\r\n' : '\n';
    const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
      JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created,
        model: record.model,
        system_fingerprint: 'fp_fake',
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      });
    const toolEvents = calls.flatMap((c, index) => [
      chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, null),
      ...tokenize(c.arguments).map((piece) => chunk({ tool_calls: [{ index, function: { arguments: piece } }] }, null)),
    ]);
    const first = chunk({ role: 'assistant', content: calls.length > 0 && tokens.length === 0 ? null : '' }, null);
    const events = [first, ...tokens.map((t) => chunk({ content: t }, null)), ...toolEvents, chunk({}, finishReason), '[DONE]'];
    const pieces = events.map((data, i) => `${opts.wire?.comments ? `: keep-alive ${i}${nl}` : ''}data: ${data}${nl}${nl}`);
    const size = opts.wire?.chunkBytes;
    if (size) {
      // Split the bytes (not the characters): a multi-byte character may straddle two writes.
      const bytes = Buffer.from(pieces.join(''), 'utf8');
      for (let i = 0; i < bytes.length; i += size) {
        if (res.destroyed) return;
        res.write(bytes.subarray(i, i + size));
        await sleep(Math.max(delayMs, 1));
      }
    } else {
      for (const piece of pieces) if (!(await write(piece))) return;
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    apiKey,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
