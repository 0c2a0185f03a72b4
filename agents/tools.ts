/**
 * Tools: idempotency keys and HTTP tools. A tool call's request id is derived
 * from (call, turn, tool, canonical args), so the same call retried — after a
 * worker crash, a gateway restart, a replayed turn — finds its stored result
 * instead of executing again; an HTTP tool passes the id on as
 * `Idempotency-Key` so the remote side can dedupe an execution cut short.
 */
import { createHash, createHmac } from 'node:crypto';
import { canonicalJson } from '../store/canonical.ts';
import type { HttpToolDefinition, Json, ToolContext } from './sdk.ts';

/**
 * `key`: a sensitive tool's (see sensitiveArgs) — the id is then an HMAC, since the request id is a clear column and
 * a plain hash of a card number can be reversed by trying every number.
 */
export function toolRequestId(callId: string, turn: number, tool: string, args: Json, key?: Buffer | null): string {
  const canonical = canonicalJson({ call: callId, turn, tool, args });
  const digest = (key ? createHmac('sha256', key) : createHash('sha256')).update(canonical).digest('hex').slice(0, 32);
  return `tool:${turn}:${tool.slice(0, 60)}:${digest}`;
}

/**
 * What a sensitive tool's row holds instead of its args (agents/sdk.ts `sensitive`): an HMAC-SHA256, keyed with a
 * key derived from the call's content key (recording/content-seal.ts `digestKeyOn`), over the call, the turn, the
 * tool and the args. Keyed, because card numbers are few enough (a known issuer prefix, a Luhn digit) that a plain
 * hash is reversed by trying them all; derived from the call's key, so the holder of the master key can check a
 * disputed value, and erasing the call destroys that ability too. Without a key (a store with no content sealing)
 * the row holds no digest at all.
 */
export function sensitiveArgs(key: Buffer | null, callId: string, turn: number, tool: string, args: Json): Json {
  if (!key) return { sensitive: true };
  return { sensitive: true, args_hmac: createHmac('sha256', key).update(canonicalJson({ call: callId, turn, tool, args })).digest('hex') };
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
