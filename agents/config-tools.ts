/**
 * HTTP tools declared in the gateway's configuration (SWITCHBOARD_TOOLS_FILE,
 * a JSON file), per agent name:
 *
 *   { "receptionist": { "file_request": { "url": "https://crm.example/tickets",
 *                                          "headers": { "authorization": "Bearer …" },
 *                                          "requires": "approval" } } }
 *
 * `"sensitive": true` keeps a tool's args out of the store (a digest in its row), for card data taken under a PCI
 * pause (bridge/turn-actions.ts).
 *
 * A configured tool takes precedence over one of the same name declared in
 * the agent's code, so operators point tools at their systems (and keep
 * their secrets) without redeploying agents. Calls go through the same
 * idempotent path (request id from call, turn, tool, args; `Idempotency-Key`).
 */
import fs from 'node:fs';
import { z } from 'zod';
import type { HttpToolDefinition } from './sdk.ts';

const Tool = z.strictObject({
  url: z.string().url().refine((u) => /^https?:/.test(u), 'http(s) URL'),
  headers: z.record(z.string(), z.string()).optional(),
  timeoutMs: z.number().int().min(100).max(120_000).optional(),
  description: z.string().max(500).optional(),
  /** What the tool needs before it runs (agents/sdk.ts); default none. */
  requires: z.enum(['none', 'consent', 'approval']).optional(),
  /** Card data or the like: the stored row holds a digest of the args, never the args (agents/sdk.ts); default false. */
  sensitive: z.boolean().optional(),
});
const ToolsFile = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'agent name'), z.record(z.string().min(1).max(100), Tool));

export type ConfigTools = ReadonlyMap<string, Readonly<Record<string, HttpToolDefinition>>>;

/** Reads and validates the tools file; a problem names the file and the field. */
export function loadConfigTools(file: string | undefined): ConfigTools {
  if (!file) return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`SWITCHBOARD_TOOLS_FILE ${file}: ${(err as Error).message}`);
  }
  const parsed = ToolsFile.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`SWITCHBOARD_TOOLS_FILE ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const out = new Map<string, Record<string, HttpToolDefinition>>();
  for (const [agent, tools] of Object.entries(parsed.data)) {
    const defs: Record<string, HttpToolDefinition> = {};
    for (const [name, t] of Object.entries(tools)) defs[name] = { description: t.description, requires: t.requires, sensitive: t.sensitive, http: { url: t.url, headers: t.headers, timeoutMs: t.timeoutMs } };
    out.set(agent, defs);
  }
  return out;
}
