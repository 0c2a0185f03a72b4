/**
 * The tenant-bound read layer: the one door through which code outside the
 * store reads tables, derived indexes and the log. `store.query(tenant)` gives
 * a `TenantQuery`; every statement it builds carries the tenant predicate on
 * every tenant-scoped table it touches (the main table, joined tables, EXISTS
 * subqueries, full-text entries, log events), added here and never by the
 * caller. It knows tables, columns and derived indexes — nothing of calls or
 * consent.
 *
 *   store.query('acme')
 *     .from('calls')                                   SELECT t.* FROM calls t
 *     .where({ state: 'ended' })                       WHERE t.tenant = ? AND t.state = ?
 *     .whereAny(['from_uri', 'to_uri'], n)               AND (t.from_uri = ? OR t.to_uri = ?)
 *     .range('received_at', { gte, lt })                 AND t.received_at >= ? AND t.received_at < ?
 *     .match('transcript_fts', text, { via: 'call_id' }) AND t.id IN (SELECT call_id FROM fts … tenant = ?)
 *     .leftJoin('consent', 'consents', { id: 'consent_id' }, ['outcome'])
 *     .exists('recorded', 'recordings', { call_id: 'id' })
 *     .orderBy(['received_at', 'desc'], ['id', 'desc'])
 *     .after([at, id]).limit(51).all()                   keyset page, rows decoded with the table codec
 *
 * Statements are prepared once per distinct SQL text and cached for the life
 * of the database (the SQL depends only on the query's shape; values are bound).
 * Identifiers come from the table definitions, never from the caller's values.
 */
import type Database from 'better-sqlite3';
import type { CheckpointTable } from './checkpoint.ts';
import { checkpointPayload } from './checkpoint.ts';
import { eventsSql, FTS_KEY, type DerivedIndex, type LogIndex } from './derived.ts';
import { StoreError } from './errors.ts';
import { bodyDigest, commandBodyFrom, decodeEvent, type LogEvent, type RawEvent } from './log.ts';
import type { Tables } from './reducer.ts';
import { decodeRow, decodeValue, encodeValue, q, type AnyTableDef, type RowOf, type SqlValue } from './table.ts';

/** What the store lends its query layer: the database, the schema's tables and derived indexes, a statement cache. */
export interface QueryContext {
  readonly db: Database.Database;
  readonly tables: ReadonlyMap<string, AnyTableDef>;
  readonly derived: ReadonlyMap<string, DerivedIndex>;
  readonly checkpoints: CheckpointTable;
  readonly node: string;
  readonly cache: Map<string, Database.Statement>;
}

/** A log event with `body`, the exact canonical JSON whose sha256 is its digest. */
export type EventWithBody = LogEvent & { body: string };
/** One link of the hash chain: an event's digest and hash, never its body. */
export interface ChainLink {
  seq: number;
  digest: string;
  hash: string;
}
/** A checkpoint this node signed, with the exact payload that was signed. */
export interface SignedCheckpoint {
  seq: number;
  node: string;
  hash: string;
  signature: string;
  payload: string;
}

type Dir = 'asc' | 'desc';
type Cols<R> = keyof R & string;
type Eq<R> = { [C in keyof R]?: R[C] | ReadonlyArray<R[C]> };

function prepared(ctx: QueryContext, sql: string): Database.Statement {
  let stmt = ctx.cache.get(sql);
  if (!stmt) ctx.cache.set(sql, (stmt = ctx.db.prepare(sql)));
  return stmt;
}

/**
 * Turns what a user typed into an FTS5 query that cannot be a syntax error:
 * each word becomes a quoted prefix term, all of them required. Null when
 * there is nothing to search for.
 */
export function ftsQuery(input: string): string | null {
  const words = input.normalize('NFKC').match(/[\p{L}\p{N}']+/gu) ?? [];
  if (words.length === 0) return null;
  return words.slice(0, 16).map((w) => `"${w.replace(/"/g, '""')}"*`).join(' ');
}

export class TenantQuery<T extends Tables = Tables> {
  constructor(
    private readonly ctx: QueryContext,
    readonly tenant: string,
  ) {
    if (typeof tenant !== 'string' || tenant.length === 0) throw new StoreError('invalid_command', 'a query needs a tenant');
  }

  /** A SELECT over one table, confined to the tenant when the table is tenant-scoped. */
  from<K extends keyof T & string>(table: K): Select<RowOf<T[K]>> {
    return new Select<RowOf<T[K]>>(this.ctx, this.tenant, table);
  }

  /** The events a log index finds for `subject` (and its related rows), this tenant's only, in seq order. */
  events(index: string, subject: string): LogEvent[] {
    return this.rawEvents(index, subject).map(decodeEvent);
  }

  /** As `events`, each with the exact body its digest was computed from. */
  eventsWithBodies(index: string, subject: string): EventWithBody[] {
    return this.rawEvents(index, subject).map((raw) => ({ ...decodeEvent(raw), body: rawBody(raw) }));
  }

  /**
   * The chain links of seqs [from, to]: digests and hashes only, whichever tenant's events they are (a proof
   * ties a tenant's events to a signed checkpoint through them without revealing any body).
   */
  chainLinks(from: number, to: number): ChainLink[] {
    const stmt = prepared(this.ctx, 'SELECT * FROM _events WHERE seq BETWEEN ? AND ? ORDER BY seq');
    const out: ChainLink[] = [];
    for (const raw of stmt.iterate(from, to) as Iterable<RawEvent>) out.push({ seq: raw.seq, digest: bodyDigest(rawBody(raw)), hash: raw.hash });
    return out;
  }

  /** The first checkpoint this node signed at or after `seq`, if any. */
  checkpointFrom(seq: number): SignedCheckpoint | undefined {
    const cp = this.ctx.checkpoints.firstFrom(this.ctx.node, seq);
    return cp && { ...cp, payload: checkpointPayload(cp.node, cp.seq, cp.hash).toString('utf8') };
  }

  private rawEvents(index: string, subject: string): RawEvent[] {
    const def = this.ctx.derived.get(index);
    if (def?.kind !== 'log') throw new StoreError('invalid_command', `no log index ${index}`);
    const stmt = prepared(this.ctx, eventsSql(def as LogIndex, this.ctx.tables));
    return stmt.all({ subject, tenant: this.tenant }) as RawEvent[];
  }
}

/** The exact hashed body of a stored event (its args and outcome are kept as canonical JSON). */
const rawBody = (raw: RawEvent): string =>
  commandBodyFrom({ id: raw.id, ts: raw.ts, node: raw.node, tenant: raw.tenant, caller: raw.caller, reducer: raw.reducer, args: null }, raw.args, raw.outcome);

interface Join {
  alias: string;
  def: AnyTableDef;
  sql: string;
  columns: string[];
}

/**
 * One SELECT being built. Each method adds a clause and returns the builder
 * (joins and EXISTS widen the row type); `all`, `first` and `count` run it.
 */
export class Select<R, X = unknown> {
  private readonly def: AnyTableDef;
  private readonly clauses: string[] = [];
  private readonly params: SqlValue[] = [];
  private readonly joins: Join[] = [];
  private readonly joinParams: SqlValue[] = [];
  /** The caller's names of the joins, by position. */
  private readonly joinAliases: string[] = [];
  private readonly extras: Array<{ sql: string; params: SqlValue[] }> = [];
  private readonly existsNames: string[] = [];
  private order: Array<[string, Dir]> = [];
  private take = -1;
  private empty = false;

  constructor(
    private readonly ctx: QueryContext,
    private readonly tenant: string,
    table: string,
  ) {
    this.def = this.table(table);
    if (this.def.tenantScoped) this.add(`t.${q('tenant')} = ?`, tenant);
  }

  private table(name: string): AnyTableDef {
    const def = this.ctx.tables.get(name);
    if (!def) throw new StoreError('invalid_command', `no table ${name}`);
    return def;
  }

  private col(def: AnyTableDef, name: string): string {
    if (!def.columnKinds.has(name)) throw new StoreError('invalid_command', `${def.name} has no column ${name}`);
    return q(name);
  }

  private enc(def: AnyTableDef, name: string, value: unknown): SqlValue {
    return encodeValue(def.columnKinds.get(name) ?? 'text', value);
  }

  private add(sql: string, ...params: SqlValue[]): void {
    this.clauses.push(sql);
    this.params.push(...params);
  }

  private eq(alias: string, def: AnyTableDef, where: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(where)) {
      if (value === undefined) continue;
      const c = `${alias}.${this.col(def, key)}`;
      if (value === null) this.add(`${c} IS NULL`);
      else if (Array.isArray(value)) {
        if (value.length === 0) this.empty = true;
        else this.add(`${c} IN (${value.map(() => '?').join(', ')})`, ...value.map((v) => this.enc(def, key, v)));
      } else this.add(`${c} = ?`, this.enc(def, key, value));
    }
  }

  /** Equality (a value), IN (an array) or IS NULL (null) on columns; undefined values are ignored. */
  where(where: Eq<R>): this {
    this.eq('t', this.def, where as Record<string, unknown>);
    return this;
  }

  /** Any of `columns` equals `value`. */
  whereAny(columns: ReadonlyArray<Cols<R>>, value: R[Cols<R>]): this {
    const parts = columns.map((c) => `t.${this.col(this.def, c)} = ?`);
    this.add(`(${parts.join(' OR ')})`, ...columns.map((c) => this.enc(this.def, c, value)));
    return this;
  }

  /** A half-open or closed range on one column. */
  range<C extends Cols<R>>(column: C, bounds: { gt?: R[C]; gte?: R[C]; lt?: R[C]; lte?: R[C] }): this {
    const c = `t.${this.col(this.def, column)}`;
    const ops = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
    for (const k of ['gte', 'gt', 'lt', 'lte'] as const) {
      if (bounds[k] !== undefined) this.add(`${c} ${ops[k]} ?`, this.enc(this.def, column, bounds[k]));
    }
    return this;
  }

  /**
   * Rows with a full-text match in a derived `fulltext` index: `text` is what a user typed (made safe with
   * ftsQuery; nothing to search for matches nothing). The entry's `via` column (a carried column, or by default
   * the source row's key) is compared with this table's `column` (default: its primary key).
   */
  match(index: string, text: string, opts: { via?: string; column?: Cols<R> } = {}): this {
    const fts = this.ctx.derived.get(index);
    if (fts?.kind !== 'fulltext') throw new StoreError('invalid_command', `no full-text index ${index}`);
    const query = ftsQuery(text);
    if (query === null) {
      this.empty = true;
      return this;
    }
    const via = opts.via ?? FTS_KEY;
    if (via !== FTS_KEY && !(fts.carry ?? []).includes(via)) throw new StoreError('invalid_command', `${index} does not carry ${via}`);
    const scoped = this.table(fts.table).tenantScoped;
    const name = q(fts.name);
    const c = `t.${this.col(this.def, opts.column ?? this.def.primaryKey)}`;
    this.add(`${c} IN (SELECT ${q(via)} FROM ${name} WHERE ${name} MATCH ?${scoped ? ` AND ${q('tenant')} = ?` : ''})`, query, ...(scoped ? [this.tenant] : []));
    return this;
  }

  private onClause(alias: string, def: AnyTableDef, on: Record<string, string>): string {
    const parts = Object.entries(on).map(([theirs, ours]) => `${alias}.${this.col(def, theirs)} = t.${this.col(this.def, ours)}`);
    if (def.tenantScoped) parts.unshift(`${alias}.${q('tenant')} = ?`);
    return parts.join(' AND ');
  }

  /**
   * LEFT JOIN another table on `{ theirColumn: ourColumn }`; the row gets `alias`: the picked columns of the
   * joined row, or null when there is none.
   */
  leftJoin<A extends string, K extends string, C extends string>(alias: A, table: K, on: Record<string, Cols<R>>, columns: readonly C[]): Select<R, X & { [P in A]: Record<C, unknown> | null }> {
    const def = this.table(table);
    const a = `j${this.joins.length}`;
    for (const c of columns) this.col(def, c);
    this.joins.push({ alias: a, def, sql: `LEFT JOIN ${q(def.name)} ${a} ON ${this.onClause(a, def, on)}`, columns: [def.primaryKey, ...columns] });
    this.joinParams.push(...(def.tenantScoped ? [this.tenant] : []));
    this.joinAliases.push(alias);
    return this as unknown as Select<R, X & { [P in A]: Record<C, unknown> | null }>;
  }

  /** A condition on a joined row: equality on its columns, or null = there is no joined row. */
  whereJoined(alias: string, where: Record<string, unknown> | null): this {
    const i = this.joinAliases.indexOf(alias);
    const join = this.joins[i];
    if (!join) throw new StoreError('invalid_command', `no join ${alias}`);
    if (where === null) this.add(`${join.alias}.${q(join.def.primaryKey)} IS NULL`);
    else this.eq(join.alias, join.def, where);
    return this;
  }

  /** Adds `alias`: whether a row of `table` with `{ theirColumn: ourColumn }` exists. */
  exists<A extends string>(alias: A, table: string, on: Record<string, Cols<R>>): Select<R, X & { [P in A]: boolean }> {
    const def = this.table(table);
    const x = `x${this.extras.length}`;
    this.extras.push({ sql: `EXISTS (SELECT 1 FROM ${q(def.name)} ${x} WHERE ${this.onClause(x, def, on)}) AS ${q(`x:${alias}`)}`, params: def.tenantScoped ? [this.tenant] : [] });
    this.existsNames.push(alias);
    return this as unknown as Select<R, X & { [P in A]: boolean }>;
  }

  orderBy(...order: Array<[Cols<R>, Dir]>): this {
    for (const [c] of order) this.col(this.def, c);
    this.order = order;
    return this;
  }

  /** Keyset paging: rows strictly after `values` (one per orderBy column, all in one direction). */
  after(values: ReadonlyArray<unknown>): this {
    const dir = this.order[0]?.[1];
    if (values.length !== this.order.length || this.order.some(([, d]) => d !== dir)) {
      throw new StoreError('invalid_command', 'after() needs one value per orderBy column, all ordered the same way');
    }
    const cols = this.order.map(([c]) => `t.${q(c)}`);
    this.add(`(${cols.join(', ')}) ${dir === 'desc' ? '<' : '>'} (${values.map(() => '?').join(', ')})`, ...this.order.map(([c], i) => this.enc(this.def, c, values[i])));
    return this;
  }

  limit(n: number): this {
    this.take = Math.max(0, Math.floor(n));
    return this;
  }

  private sql(select: string): { sql: string; params: SqlValue[] } {
    const from = [`FROM ${q(this.def.name)} t`, ...this.joins.map((j) => j.sql)].join(' ');
    const where = this.clauses.length ? ` WHERE ${this.clauses.join(' AND ')}` : '';
    return { sql: `SELECT ${select} ${from}${where}`, params: [...this.extras.flatMap((e) => e.params), ...this.joinParams, ...this.params] };
  }

  all(): Array<R & X> {
    if (this.empty) return [];
    const cols = ['t.*', ...this.joins.flatMap((j, i) => j.columns.map((c) => `${j.alias}.${q(c)} AS ${q(`j${i}:${c}`)}`)), ...this.extras.map((e) => e.sql)];
    const order = (this.order.length ? this.order : [[this.def.primaryKey, 'asc'] as [string, Dir]]).map(([c, d]) => `t.${q(c)} ${d.toUpperCase()}`);
    const { sql, params } = this.sql(cols.join(', '));
    const full = `${sql} ORDER BY ${order.join(', ')}${this.take >= 0 ? ` LIMIT ${this.take}` : ''}`;
    const raws = prepared(this.ctx, full).all(params) as Array<Record<string, unknown>>;
    return raws.map((raw) => this.decode(raw));
  }

  first(): (R & X) | undefined {
    this.take = 1;
    return this.all()[0];
  }

  count(): number {
    if (this.empty) return 0;
    const { sql, params } = this.sql('COUNT(*) AS n');
    return (prepared(this.ctx, sql).get(params) as { n: number }).n;
  }

  private decode(raw: Record<string, unknown>): R & X {
    const row = decodeRow(this.def, raw);
    this.joins.forEach((j, i) => {
      if (raw[`j${i}:${j.def.primaryKey}`] === null) {
        row[this.joinAliases[i] as string] = null;
        return;
      }
      const picked: Record<string, unknown> = {};
      for (const c of j.columns.slice(1)) picked[c] = decodeValue(j.def.columnKinds.get(c) ?? 'text', raw[`j${i}:${c}`]);
      row[this.joinAliases[i] as string] = picked;
    });
    for (const name of this.existsNames) row[name] = raw[`x:${name}`] === 1;
    return row as R & X;
  }
}
