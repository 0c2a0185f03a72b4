/**
 * One command applied to the tables, all or nothing, by its reducer: the code the live apply loop (engine.ts) and
 * replay (replay.ts) share, so both compute identical outcomes, rows and ids.
 */
import { hash as oneShot } from 'node:crypto';
import { TableAccessor, type AccessorScope, type RowChange, type TableStatements } from './accessor.ts';
import { ReducerError } from './errors.ts';
import type { Command, Outcome } from './log.ts';
import type { ReducerCtx, ReducerDef, Tables } from './reducer.ts';

/**
 * Applies one command, all or nothing; shared by the live engine and replay so
 * both run identical code. Keeps one accessor per table (sharing one scope,
 * re-targeted per command; reducers run synchronously).
 *
 * Atomicity per command without a SAVEPOINT: every write a reducer makes goes
 * through an accessor, which records it (old and new row) in `changes` once
 * SQLite has applied it — a statement that fails is undone by SQLite itself.
 * When the reducer fails after writing, its recorded changes are reverted
 * newest first, leaving the tables byte-identical to before it (the batch's
 * transaction is still open, so nothing of it was ever visible). A SAVEPOINT +
 * RELEASE pair per command cost about as much as the command's own inserts
 * (bench: 61k → 36k raw inserts/s); failures are rare, so undo is paid only then.
 * If an undo itself fails, the error aborts the whole batch (nothing committed).
 */
export class CommandApplier {
  /** One scope shared by every table's accessor: re-targeted once per command. */
  private readonly scope: AccessorScope = { tenant: null, sink: null };
  private readonly dbView: Record<string, TableAccessor> = {};

  constructor(
    statements: ReadonlyMap<string, TableStatements>,
    private readonly reducers: ReadonlyMap<string, ReducerDef<Tables>>,
  ) {
    for (const [name, stmts] of statements) this.dbView[name] = new TableAccessor(stmts, null, null, false, this.scope);
  }

  /** Must run inside a transaction. Row changes of a successful command are appended to `changes`. */
  apply(command: Command, seq: number, changes: RowChange[]): Outcome {
    const reducer = this.reducers.get(command.reducer);
    if (!reducer) return { ok: false, error: { code: 'unknown_reducer', message: `no reducer ${command.reducer}` } };
    const mark = changes.length;
    this.scope.tenant = command.tenant;
    this.scope.sink = (c: RowChange): void => void changes.push(c);
    let ids: Map<string, number> | null = null;
    const ctx: ReducerCtx<Tables> = {
      now: command.ts,
      seq,
      caller: command.caller,
      tenant: command.tenant,
      node: command.node,
      commandId: command.id,
      db: this.dbView as ReducerCtx<Tables>['db'],
      newId: (kind: string) => {
        ids ??= new Map();
        const n = ids.get(kind) ?? 0;
        ids.set(kind, n + 1);
        return deterministicId(kind, seq, n, command.id);
      },
      fail,
    };
    try {
      const result = reducer.run(ctx, command.args);
      return result === undefined ? { ok: true } : { ok: true, result };
    } catch (err) {
      this.scope.sink = null;
      for (let i = changes.length - 1; i >= mark; i--) {
        const c = changes[i] as RowChange;
        (this.dbView[c.table] as TableAccessor).revert(c);
      }
      changes.length = mark;
      if (err instanceof ReducerError) return { ok: false, error: { code: err.code, message: err.message } };
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_') && !code.startsWith('SQLITE_CONSTRAINT')) throw err; // storage failure: abort the batch
      return { ok: false, error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } };
    } finally {
      this.scope.tenant = null;
      this.scope.sink = null;
    }
  }
}

function fail(code: string, message: string): never {
  throw new ReducerError(code, message);
}

/**
 * `kind_` + seq (base 36, zero-padded, so ids of a table are ordered by commit
 * and B-tree inserts append) + per-command counter + 40 bits of
 * sha256(command id, kind, n) so ids are not guessable. Same log → same ids.
 */
export function deterministicId(kind: string, seq: number, n: number, commandId: string): string {
  const suffix = oneShot('sha256', `${commandId}\u0000${kind}\u0000${n}`, 'hex').slice(0, 10);
  return `${kind}_${seq.toString(36).padStart(10, '0')}${n.toString(36).padStart(2, '0')}${suffix}`;
}
