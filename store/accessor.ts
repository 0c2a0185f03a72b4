/**
 * Typed table accessors. `TableStatements` holds the prepared SQL of one table;
 * `TableAccessor` is the view a reducer (writes) or the read layer (reads)
 * gets: confined to one tenant for tenant-scoped tables, validating every
 * written row with the table's zod schema and reporting each change to a sink
 * (the apply loop turns them into subscription deltas after commit).
 */
import type Database from 'better-sqlite3';
import { ReducerError } from './errors.ts';
import { decodeRow, encodeRow, encodeValue, q, type SqlValue, type AnyTableDef } from './table.ts';

export type Row = Record<string, unknown>;
export type ChangeOp = 'insert' | 'update' | 'delete';
export interface RowChange {
  table: string;
  op: ChangeOp;
  old: Row | null;
  new: Row | null;
}
export type Where<R> = { [K in keyof R]?: R[K] | ReadonlyArray<R[K]> };
export interface FindOptions<R> {
  orderBy?: keyof R & string;
  desc?: boolean;
  limit?: number;
}

export class TableStatements {
  readonly get: Database.Statement;
  readonly insert: Database.Statement;
  readonly update: Database.Statement;
  readonly delete: Database.Statement;
  private readonly findCache = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    readonly def: AnyTableDef,
  ) {
    const t = q(def.name);
    const pk = q(def.primaryKey);
    const cols = def.columns.map((c) => q(c.name));
    this.get = db.prepare(`SELECT * FROM ${t} WHERE ${pk} = ?`);
    this.insert = db.prepare(`INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    const sets = def.columns.filter((c) => c.name !== def.primaryKey).map((c) => `${q(c.name)} = ?`);
    this.update = db.prepare(`UPDATE ${t} SET ${sets.join(', ')} WHERE ${pk} = ?`);
    this.delete = db.prepare(`DELETE FROM ${t} WHERE ${pk} = ?`);
  }

  /** A SELECT for an equality/IN filter; statements are cached by filter shape (the SQL is built on a miss only). */
  find(where: Record<string, unknown>, opts: FindOptions<Row>): { stmt: Database.Statement; params: SqlValue[] } {
    const keys = Object.keys(where).sort();
    const params: SqlValue[] = [];
    let shape = '';
    for (const key of keys) {
      const value = where[key];
      if (value === undefined) continue;
      const kind = this.def.columnKinds.get(key);
      if (!kind) throw new ReducerError('unknown_column', `${this.def.name} has no column ${key}`);
      if (Array.isArray(value)) {
        if (value.length === 0) return { stmt: this.db.prepare(`SELECT * FROM ${q(this.def.name)} WHERE 0`), params: [] };
        for (const v of value) params.push(encodeValue(kind, v));
        shape += `${key}#${value.length},`;
      } else if (value === null) {
        shape += `${key}!,`;
      } else {
        params.push(encodeValue(kind, value));
        shape += `${key},`;
      }
    }
    if (opts.orderBy !== undefined && !this.def.columnKinds.has(opts.orderBy)) {
      throw new ReducerError('unknown_column', `${this.def.name} has no column ${opts.orderBy}`);
    }
    const limit = opts.limit !== undefined ? Math.max(0, Math.floor(opts.limit)) : -1;
    shape += `|${opts.orderBy ?? ''}|${opts.desc ? 1 : 0}|${limit}`;
    let stmt = this.findCache.get(shape);
    if (!stmt) {
      const clauses: string[] = [];
      for (const key of keys) {
        const value = where[key];
        if (value === undefined) continue;
        if (Array.isArray(value)) clauses.push(`${q(key)} IN (${value.map(() => '?').join(', ')})`);
        else if (value === null) clauses.push(`${q(key)} IS NULL`);
        else clauses.push(`${q(key)} = ?`);
      }
      const order = `${q(opts.orderBy ?? this.def.primaryKey)} ${opts.desc ? 'DESC' : 'ASC'}`;
      const whereSql = clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '';
      stmt = this.db.prepare(`SELECT * FROM ${q(this.def.name)}${whereSql} ORDER BY ${order}${limit >= 0 ? ` LIMIT ${limit}` : ''}`);
      this.findCache.set(shape, stmt);
    }
    return { stmt, params };
  }
}

export type ChangeSink = (change: RowChange) => void;

/** Whom an accessor writes for: the tenant it is confined to (null = unscoped) and where its changes go. */
export interface AccessorScope {
  tenant: string | null;
  sink: ChangeSink | null;
}

export class TableAccessor<R extends Row = Row, In extends Row = R> {
  private readonly scope: AccessorScope;

  constructor(
    private readonly stmts: TableStatements,
    /** The tenant this view is confined to; null = unscoped (operator tools, unscoped tables). */
    tenant: string | null,
    sink: ChangeSink | null,
    private readonly readOnly = false,
    /** Shared with other accessors (the apply loop re-targets one scope per command, not one per table). */
    scope?: AccessorScope,
  ) {
    this.scope = scope ?? { tenant, sink };
    if (scope) Object.assign(scope, { tenant, sink });
  }

  /** Re-targets a reused accessor at the next command. */
  bind(tenant: string | null, sink: ChangeSink | null): void {
    this.scope.tenant = tenant;
    this.scope.sink = sink;
  }

  private get tenant(): string | null {
    return this.scope.tenant;
  }

  private get sink(): ChangeSink | null {
    return this.scope.sink;
  }

  private assertWritable(): void {
    if (this.readOnly) throw new ReducerError('read_only', `${this.def.name}: writes go through reducers only`);
  }

  private get def(): AnyTableDef {
    return this.stmts.def;
  }

  private visible(row: Row | undefined): row is Row {
    return row !== undefined && (this.tenant === null || !this.def.tenantScoped || row.tenant === this.tenant);
  }

  get(key: string | number): R | undefined {
    const raw = this.stmts.get.get(key) as Row | undefined;
    if (!raw) return undefined;
    const row = decodeRow(this.def, raw);
    return this.visible(row) ? (row as R) : undefined;
  }

  find(where: Where<R> = {}, opts: FindOptions<R> = {}): R[] {
    let filter = where as Record<string, unknown>;
    if (this.tenant !== null && this.def.tenantScoped) {
      if (filter.tenant !== undefined && filter.tenant !== this.tenant) return [];
      filter = { ...filter, tenant: this.tenant };
    }
    const { stmt, params } = this.stmts.find(filter, opts as FindOptions<Row>);
    const raws = stmt.all(params) as Row[];
    const out: R[] = new Array(raws.length);
    for (let i = 0; i < raws.length; i++) out[i] = decodeRow(this.def, raws[i] as Row) as R;
    return out;
  }

  findOne(where: Where<R>): R | undefined {
    return this.find(where, { limit: 1 })[0];
  }

  insert(input: In): R {
    this.assertWritable();
    const tenant = this.def.tenantScoped ? this.tenant : null;
    const row = this.validate(tenant === null ? input : { ...input, tenant });
    this.run(this.stmts.insert, encodeRow(this.def, row), row);
    this.sink?.({ table: this.def.name, op: 'insert', old: null, new: row });
    return row as R;
  }

  /** Merges `patch` into the row; the primary key and tenant cannot change. */
  update(key: string | number, patch: Partial<In>): R {
    this.assertWritable();
    const old = this.get(key);
    if (!old) throw new ReducerError('not_found', `${this.def.name} ${String(key)} not found`);
    const row = this.validate({ ...old, ...patch, [this.def.primaryKey]: key, ...this.tenantOverride(old) });
    const params = encodeRow(this.def, row);
    const pkIndex = this.def.columns.findIndex((c) => c.name === this.def.primaryKey);
    const values = params.filter((_, i) => i !== pkIndex);
    values.push(key);
    this.run(this.stmts.update, values);
    this.sink?.({ table: this.def.name, op: 'update', old, new: row });
    return row as R;
  }

  delete(key: string | number): boolean {
    this.assertWritable();
    const old = this.get(key);
    if (!old) return false;
    this.stmts.delete.run(key);
    this.sink?.({ table: this.def.name, op: 'delete', old, new: null });
    return true;
  }

  /**
   * Undoes one change this accessor made (the apply loop's rollback of a failed command, newest change first):
   * an insert is deleted, an update or delete puts the old row back as it was. Rows round-trip exactly
   * (encodeRow(decodeRow(x)) = x), so the table ends byte-identical to before the command.
   */
  revert(change: RowChange): void {
    const pk = this.def.primaryKey;
    if (change.op === 'insert') {
      this.stmts.delete.run(change.new?.[pk] as string | number);
      return;
    }
    const old = change.old as Row;
    if (change.op === 'delete') {
      this.stmts.insert.run(...encodeRow(this.def, old));
      return;
    }
    const params = encodeRow(this.def, old);
    const pkIndex = this.def.columns.findIndex((c) => c.name === pk);
    this.stmts.update.run(...params.filter((_, i) => i !== pkIndex), old[pk] as string | number);
  }

  private tenantOverride(old?: Row): Row {
    if (!this.def.tenantScoped) return {};
    if (old) return { tenant: old.tenant };
    return this.tenant === null ? {} : { tenant: this.tenant };
  }

  private validate(candidate: Row): Row {
    const parsed = this.def.row.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.join('.') ?? '';
      throw new ReducerError('invalid_row', `${this.def.name}${path ? '.' + path : ''}: ${issue?.message ?? 'invalid'}`);
    }
    return parsed.data as Row;
  }

  /** Runs a write, turning constraint failures into reducer errors (params bound positionally from the array). */
  private run(stmt: Database.Statement, params: SqlValue[], row?: Row): void {
    try {
      stmt.run(params);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (row && e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new ReducerError('duplicate_key', `${this.def.name} ${String(row[this.def.primaryKey])} already exists`);
      }
      if (typeof e.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT')) {
        throw new ReducerError('constraint', `${this.def.name}: ${e.message ?? e.code}`);
      }
      throw err;
    }
  }
}
