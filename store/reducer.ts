/**
 * Reducers and the deterministic context they run in.
 *
 * A reducer sees only `ctx` and its zod-validated args. `ctx.now`, `ctx.seq`,
 * `ctx.caller`, `ctx.tenant` come from the command; `ctx.newId(kind)` is derived
 * from the command id and a per-command counter; `ctx.db` exposes the tables,
 * confined to the command's tenant. `ctx.fail(code, message)` aborts the
 * reducer: its writes are rolled back and the rejection is the logged outcome.
 */
import type { z } from 'zod';
import type { TableAccessor } from './accessor.ts';
import type { Json } from './canonical.ts';
import type { DerivedIndex } from './derived.ts';
import type { AnyTableDef, RowInputOf, RowOf } from './table.ts';

export type Tables = Record<string, AnyTableDef>;

export type DbOf<T extends Tables> = {
  [K in keyof T]: TableAccessor<RowOf<T[K]> & Record<string, unknown>, RowInputOf<T[K]> & Record<string, unknown>>;
};

export interface ReducerCtx<T extends Tables> {
  /** The command's timestamp (ms since epoch), assigned when it was submitted. */
  readonly now: number;
  readonly seq: number;
  readonly caller: string;
  readonly tenant: string;
  /** The node that submitted the command. */
  readonly node: string;
  readonly commandId: string;
  readonly db: DbOf<T>;
  newId(kind: string): string;
  fail(code: string, message: string): never;
}

export interface ReducerDef<T extends Tables = Tables, A extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly args: A;
  readonly run: (ctx: ReducerCtx<T>, args: z.output<A>) => Json | void;
}

export interface SchemaDef<T extends Tables = Tables> {
  /** Bump when tables change incompatibly; stored in the database. */
  readonly version: number;
  readonly tables: T;
  readonly reducers: ReadonlyArray<ReducerDef<T, z.ZodType>>;
  /**
   * Read-side indexes derived from the tables and the log (full-text search, a subject's events), declared as
   * data; the store owns their SQL and keeps them current (store/derived.ts). Not part of the digest.
   */
  readonly derived?: readonly DerivedIndex[];
}

/** Returns a `defineReducer` bound to a set of tables, so reducer contexts are typed. */
export function reducerFactory<T extends Tables>() {
  return function defineReducer<A extends z.ZodType>(
    name: string,
    args: A,
    run: (ctx: ReducerCtx<T>, args: z.output<A>) => Json | void,
  ): ReducerDef<T, A> {
    if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`reducer name ${name} must be snake_case`);
    return { name, args, run };
  };
}
