/**
 * Derived indexes: read-side structures the store builds from its tables and
 * its log, declared by the schema as data and turned into SQL here only. They
 * are not part of the table digest, and a replay target builds them as the live
 * database does.
 *
 *   fulltext  an FTS5 table over one text column of a table, with the row's key,
 *             the columns named in `carry` and (for tenant-scoped tables) the
 *             tenant beside each entry. Triggers on the source table keep it in
 *             step, so it is written (and undone, when the apply loop reverts a
 *             failed command's rows) with the rows themselves.
 *   log       expression indexes over the `_events` log that find the events
 *             naming a subject: the first of the `subject` args fields present,
 *             or for the reducers in `results` a field of the outcome's result.
 *             `related` names tables whose rows belong to a subject (their
 *             primary key names the subject's other events: a call's consents,
 *             recordings, agent actions). SQLite maintains them on append.
 *
 * Each index's DDL is recorded in `_derived`; when the declaration changes
 * (or a database predates the record), its objects are dropped, created again
 * and, for a full-text index, refilled from the source table. Indexes on
 * `_events` that no declaration creates are dropped.
 *
 *   schema.derived ──► derivedDdl() ──► CREATE … (+ triggers) ──► rebuild
 *                      └─ eventsSql(): the tenant-bound query of a log index
 */
import type Database from 'better-sqlite3';
import { StoreError } from './errors.ts';
import { q, type AnyTableDef } from './table.ts';

/** A full-text (FTS5) index over `table.text`. */
export interface FullTextIndex {
  readonly kind: 'fulltext';
  /** The FTS5 table's name. */
  readonly name: string;
  readonly table: string;
  /** The text column indexed. */
  readonly text: string;
  /** Columns of the source row kept beside each entry (UNINDEXED), to relate a match to other tables. */
  readonly carry?: readonly string[];
  /**
   * The text is stored sealed: the index is fed `indexText(index, text, row[opener])` — the store's hook
   * (`Store.indexTextWith`), identity when none is set — instead of the column itself. `opener` is a carried column.
   */
  readonly opener?: string;
}

/** Per database: what a sealed full-text column's text is indexed as (see FullTextIndex.opener). */
export type IndexText = (index: string, text: string, key: string) => string;
const indexTexts = new WeakMap<Database.Database, IndexText>();

/** Sets (or clears) the database's IndexText hook; the SQL function `sb_index_text` calls it. */
export function setIndexText(db: Database.Database, fn: IndexText | null): void {
  if (fn) indexTexts.set(db, fn);
  else indexTexts.delete(db);
}

function registerIndexText(db: Database.Database): void {
  db.function('sb_index_text', { deterministic: true, varargs: false }, (index: unknown, text: unknown, key: unknown) => {
    if (typeof text !== 'string') return text as null;
    const fn = indexTexts.get(db);
    if (!fn || typeof index !== 'string' || typeof key !== 'string') return text;
    try {
      return fn(index, text, key);
    } catch {
      return '';
    }
  });
}

/** Indexes over the log finding the events that name one subject. */
export interface LogIndex {
  readonly kind: 'log';
  readonly name: string;
  /** Args fields naming an event's subject; the first present one counts. */
  readonly subject: readonly string[];
  /** Reducers that name their subject only in the outcome's result: reducer → result field. */
  readonly results?: Readonly<Record<string, string>>;
  /** Tables whose rows belong to a subject: table → the column referencing it; the rows' keys are subjects too. */
  readonly related?: Readonly<Record<string, string>>;
}

export type DerivedIndex = FullTextIndex | LogIndex;

const NAME = /^[a-z_][a-z0-9_]*$/;
const LOG = '_events';
/** The key column of a full-text index: the source row's primary key. */
export const FTS_KEY = 'row_key';

function check(name: string, what: string): string {
  if (!NAME.test(name)) throw new StoreError('invalid_command', `derived index: ${what} ${JSON.stringify(name)} is not a plain name`);
  return name;
}

function tableOf(tables: ReadonlyMap<string, AnyTableDef>, name: string, what: string): AnyTableDef {
  const def = tables.get(name);
  if (!def) throw new StoreError('invalid_command', `derived index ${what}: no table ${name}`);
  return def;
}

function column(def: AnyTableDef, col: string, what: string): string {
  if (!def.columnKinds.has(col)) throw new StoreError('invalid_command', `derived index ${what}: ${def.name} has no column ${col}`);
  return q(col);
}

/** The FTS5 columns in order: text, key, carried columns, tenant (tenant-scoped sources). */
function ftsColumns(index: FullTextIndex, def: AnyTableDef): { source: string[]; fts: string[] } {
  const carry = index.carry ?? [];
  const source = [index.text, def.primaryKey, ...carry, ...(def.tenantScoped ? ['tenant'] : [])];
  const fts = [index.text, FTS_KEY, ...carry, ...(def.tenantScoped ? ['tenant'] : [])];
  for (const c of source) column(def, c, index.name);
  return { source: source.map(q), fts: fts.map(q) };
}

function fullTextDdl(index: FullTextIndex, def: AnyTableDef): { ddl: string[]; drop: string[]; rebuild: string } {
  const name = q(check(index.name, 'name'));
  const t = q(def.name);
  const { source, fts } = ftsColumns(index, def);
  const unindexed = fts.slice(1).map((c) => `${c} UNINDEXED`);
  const opened = (alias: string): string[] =>
    source.map((c, i) => (i === 0 && index.opener ? `sb_index_text('${index.name}', ${alias}${c}, ${alias}${q(index.opener)})` : `${alias}${c}`));
  const ins = `INSERT INTO ${name} (${fts.join(', ')}) VALUES (${opened('new.').join(', ')});`;
  const del = `DELETE FROM ${name} WHERE ${q(FTS_KEY)} = old.${q(def.primaryKey)};`;
  const trig = (suffix: string): string => q(`${index.name}_${suffix}`);
  const watched = [index.text, ...(index.carry ?? [])].map(q).join(', ');
  return {
    ddl: [
      `CREATE VIRTUAL TABLE ${name} USING fts5(${[fts[0], ...unindexed].join(', ')}, tokenize = 'unicode61 remove_diacritics 2')`,
      // a deleted entry leaves no trace of its tokens in the index (an erased call's words are really gone)
      `INSERT INTO ${name} (${name}, rank) VALUES ('secure-delete', 1)`,
      `CREATE TRIGGER ${trig('ai')} AFTER INSERT ON ${t} BEGIN ${ins} END`,
      `CREATE TRIGGER ${trig('ad')} AFTER DELETE ON ${t} BEGIN ${del} END`,
      `CREATE TRIGGER ${trig('au')} AFTER UPDATE OF ${watched} ON ${t} BEGIN ${del} ${ins} END`,
    ],
    drop: [`DROP TRIGGER IF EXISTS ${trig('ai')}`, `DROP TRIGGER IF EXISTS ${trig('ad')}`, `DROP TRIGGER IF EXISTS ${trig('au')}`, `DROP TABLE IF EXISTS ${name}`],
    rebuild: `INSERT INTO ${name} (${fts.join(', ')}) SELECT ${opened('').join(', ')} FROM ${t}`,
  };
}

/** The subject expression over an events alias (`args` or `e.args`): the first present args field. */
export function subjectExpr(index: LogIndex, args = 'args'): string {
  const parts = index.subject.map((f) => `json_extract(${args}, '$.${check(f, 'subject field')}')`);
  if (parts.length === 0) throw new StoreError('invalid_command', `derived index ${index.name}: no subject fields`);
  return parts.length === 1 ? (parts[0] as string) : `coalesce(${parts.join(', ')})`;
}

const resultExpr = (field: string, outcome = 'outcome'): string => `json_extract(${outcome}, '$.result.${check(field, 'result field')}')`;
const subjectIndexName = (index: LogIndex): string => `${LOG}_${check(index.name, 'name')}`;
const resultIndexName = (index: LogIndex, reducer: string): string => `${LOG}_${index.name}_${check(reducer, 'reducer')}`;

function logDdl(index: LogIndex): { ddl: string[]; drop: string[]; names: string[] } {
  const subject = subjectExpr(index);
  const names = [subjectIndexName(index)];
  const ddl = [`CREATE INDEX ${q(subjectIndexName(index))} ON ${LOG} (${subject}) WHERE ${subject} IS NOT NULL`];
  for (const [reducer, field] of Object.entries(index.results ?? {})) {
    names.push(resultIndexName(index, reducer));
    ddl.push(`CREATE INDEX ${q(resultIndexName(index, reducer))} ON ${LOG} (${resultExpr(field)}) WHERE reducer = '${reducer}'`);
  }
  return { ddl, drop: names.map((n) => `DROP INDEX IF EXISTS ${q(n)}`), names };
}

/** The SQL that creates one derived index (for tools that build the same B-trees, e.g. the store benchmark). */
export function derivedDdl(index: DerivedIndex, tables: ReadonlyMap<string, AnyTableDef>): string[] {
  return index.kind === 'fulltext' ? fullTextDdl(index, tableOf(tables, index.table, index.name)).ddl : logDdl(index).ddl;
}

/**
 * The tenant-bound query of a log index: the events naming `@subject` (or the
 * keys of its related rows), of tenant `@tenant` only, in seq order.
 */
export function eventsSql(index: LogIndex, tables: ReadonlyMap<string, AnyTableDef>): string {
  const subjects = ['SELECT @subject'];
  for (const [table, ref] of Object.entries(index.related ?? {})) {
    const def = tableOf(tables, table, index.name);
    const tenant = def.tenantScoped ? `${q('tenant')} = @tenant AND ` : '';
    subjects.push(`SELECT ${q(def.primaryKey)} FROM ${q(def.name)} WHERE ${tenant}${column(def, ref, index.name)} = @subject`);
  }
  const subj = subjectExpr(index, 'e.args');
  const seqs = [`SELECT e.seq FROM subject CROSS JOIN ${LOG} AS e INDEXED BY ${q(subjectIndexName(index))} WHERE ${subj} = subject.id AND ${subj} IS NOT NULL`];
  for (const [reducer, field] of Object.entries(index.results ?? {})) {
    seqs.push(`SELECT seq FROM ${LOG} WHERE reducer = '${check(reducer, 'reducer')}' AND ${resultExpr(field)} = @subject`);
  }
  return [
    `WITH subject(id) AS (${subjects.join(' UNION ALL ')}),`,
    `  s(seq) AS (${seqs.join(' UNION ')})`,
    `SELECT e.* FROM ${LOG} e JOIN s ON s.seq = e.seq WHERE e.tenant = @tenant ORDER BY e.seq`,
  ].join('\n');
}

/**
 * Creates (or, when its declaration changed, re-creates and refills) every
 * derived index. A log index is skipped where there is no log (a replay
 * target); indexes on the log that no declaration creates are dropped.
 */
export function createDerived(db: Database.Database, indexes: readonly DerivedIndex[], tables: ReadonlyMap<string, AnyTableDef>): void {
  registerIndexText(db);
  db.exec('CREATE TABLE IF NOT EXISTS _derived (name TEXT PRIMARY KEY NOT NULL, ddl TEXT NOT NULL)');
  const recorded = db.prepare('SELECT ddl FROM _derived WHERE name = ?').pluck();
  const record = db.prepare('INSERT INTO _derived (name, ddl) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET ddl = excluded.ddl');
  const hasLog = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${LOG}'`).get() !== undefined;
  const logIndexes = new Set<string>();
  for (const index of indexes) {
    if (index.kind === 'log' && !hasLog) continue;
    const made = index.kind === 'fulltext' ? fullTextDdl(index, tableOf(tables, index.table, index.name)) : { ...logDdl(index), rebuild: null };
    if (index.kind === 'log') for (const n of logDdl(index).names) logIndexes.add(n);
    const ddl = made.ddl.join(';\n');
    if (recorded.get(index.name) === ddl) continue;
    for (const sql of made.drop) db.exec(sql);
    for (const sql of made.ddl) db.exec(sql);
    if (made.rebuild) db.exec(made.rebuild);
    record.run(index.name, ddl);
  }
  if (!hasLog) return;
  const onLog = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '${LOG}' AND sql IS NOT NULL`).pluck().all() as string[];
  for (const name of onLog) if (!logIndexes.has(name)) db.exec(`DROP INDEX ${q(name)}`);
}
