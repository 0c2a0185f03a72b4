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

/**
 * A reducer's definition, and the typed handle callers submit it by:
 * `store.submit(call_ended, { call_id, reason }, who)` checks `args` against
 * `z.input<A>` and types the receipt's result as `R` (what `run` returns), so a
 * reader or a tool follows a call into `schema/` and no caller casts a result.
 * The name is the wire form: it is what the log records and replay looks up.
 */
export interface ReducerDef<T extends Tables = Tables, A extends z.ZodType = z.ZodType, R extends Json | void = Json | void> {
  readonly name: string;
  readonly args: A;
  readonly run: (ctx: ReducerCtx<T>, args: z.output<A>) => R;
}

/** What `store.submit` accepts: any reducer definition (its tables are checked when the store looks it up). */
export interface ReducerHandle {
  readonly name: string;
  readonly args: z.ZodType;
  readonly run: (ctx: never, args: never) => Json | void;
}

/** The result type a reducer handle's receipt carries. */
export type ResultOf<D> = D extends { readonly run: (...a: never[]) => infer R } ? (R extends void ? undefined : R) : never;
/** The argument type a reducer handle accepts (before zod defaults are applied). */
export type ArgsOf<D> = D extends { readonly args: infer A extends z.ZodType } ? z.input<A> : never;

export interface SchemaDef<T extends Tables = Tables> {
  /** Bump when tables change incompatibly; stored in the database. */
  readonly version: number;
  readonly tables: T;
  readonly reducers: ReadonlyArray<ReducerDef<T, z.ZodType, Json | void>>;
  /**
   * Read-side indexes derived from the tables and the log (full-text search, a subject's events), declared as
   * data; the store owns their SQL and keeps them current (store/derived.ts). Not part of the digest.
   */
  readonly derived?: readonly DerivedIndex[];
}

/** Returns a `defineReducer` bound to a set of tables, so reducer contexts are typed. */
export function reducerFactory<T extends Tables>() {
  return function defineReducer<A extends z.ZodType, R extends Json | void>(
    name: string,
    args: A,
    run: (ctx: ReducerCtx<T>, args: z.output<A>) => R,
  ): ReducerDef<T, A, R> {
    if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`reducer name ${name} must be snake_case`);
    return { name, args, run };
  };
}
