/**
 * A submitted command made ready for the log: its reducer known, its args valid under the reducer's zod schema and
 * canonical JSON, a tenant and a caller, an id (the caller's idempotency key or a fresh uuid v7), the node and the
 * wall-clock ts. Anything else is refused here, before the log sees it.
 */
import { canonicalJson, type Json } from './canonical.ts';
import { StoreError } from './errors.ts';
import type { Command } from './log.ts';
import type { ReducerDef, Tables } from './reducer.ts';

export interface Built {
  command: Command;
  argsJson: string;
  /** The id was minted here: it cannot be in the log yet. */
  fresh: boolean;
}

export interface BuildContext {
  reducers: Map<string, ReducerDef<Tables>>;
  node: string;
  clock: () => number;
  nextId: () => string;
}

export function buildCommand(ctx: BuildContext, reducer: string, args: unknown, opts: { tenant: string; caller: string; id?: string }): Built | StoreError {
  const def = ctx.reducers.get(reducer);
  if (!def) return new StoreError('unknown_reducer', `no reducer named ${JSON.stringify(reducer)}`);
  const parsed = def.args.safeParse(args);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ');
    return new StoreError('invalid_args', `${reducer}: ${msg}`);
  }
  if (!opts.tenant || !opts.caller) return new StoreError('invalid_command', 'a command needs a tenant and a caller');
  const id = opts.id ?? ctx.nextId();
  if (id.length === 0 || id.length > 200) return new StoreError('invalid_command', 'command id must be 1–200 characters');
  let normalized: Json;
  let argsJson: string;
  try {
    argsJson = canonicalJson(parsed.data);
    normalized = JSON.parse(argsJson) as Json;
  } catch (err) {
    return new StoreError('invalid_args', `${reducer}: args are not JSON (${(err as Error).message})`);
  }
  const command: Command = { id, ts: ctx.clock(), node: ctx.node, tenant: opts.tenant, caller: opts.caller, reducer, args: normalized };
  return { command, argsJson, fresh: opts.id === undefined };
}
