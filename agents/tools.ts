/**
 * Tools: idempotency keys and HTTP tools. A tool call's request id is derived
 * from (call, turn, tool, canonical args), so the same call retried — after a
 * worker crash, a gateway restart, a replayed turn — finds its stored result
 * instead of executing again; an HTTP tool passes the id on as
 * `Idempotency-Key` so the remote side can dedupe an execution cut short.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../store/canonical.ts';
import type { HttpToolDefinition, Json, ToolContext } from './sdk.ts';

export function toolRequestId(callId: string, turn: number, tool: string, args: Json): string {
  const digest = createHash('sha256').update(canonicalJson({ call: callId, turn, tool, args })).digest('hex').slice(0, 32);
  return `tool:${turn}:${tool.slice(0, 60)}:${digest}`;
}

/**
 * What a sensitive tool's row holds instead of its args (agents/sdk.ts `sensitive`): a sha256 over the call, the
 * turn, the tool and the args, so equal args on another call or turn give another digest.
 */
export function sensitiveArgs(callId: string, turn: number, tool: string, args: Json): Json {
  return { sensitive: true, args_sha256: createHash('sha256').update(canonicalJson({ call: callId, turn, tool, args })).digest('hex') };
}

export async function runHttpTool(tool: HttpToolDefinition, args: Json, ctx: ToolContext): Promise<Json> {
  const res = await fetch(tool.http.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': ctx.requestId, ...(tool.http.headers ?? {}) },
    body: JSON.stringify({ args, call_id: ctx.callId, turn: ctx.turn }),
    signal: AbortSignal.timeout(tool.http.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP tool ${tool.http.url}: ${res.status} ${text.slice(0, 200)}`);
  try {
    return (text ? JSON.parse(text) : null) as Json;
  } catch {
    return text;
  }
}
