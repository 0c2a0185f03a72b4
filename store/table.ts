/**
 * Table definitions. A table is a zod object schema plus a primary key, an
 * optional tenant scope and indexes; the store derives the SQLite DDL and a row
 * codec from it. Columns are stored natively (text, numbers, 0/1 for booleans)
 * so the read layer can filter with SQL; objects and arrays are canonical JSON.
 *
 * Nullable columns are `.nullable()` and stored as NULL; rows round-trip
 * exactly (insert → get returns a deep-equal object), which the table digest
 * and the subscription snapshot rely on.
 */
import { z } from 'zod';
import { canonicalJson } from './canonical.ts';

export type ColumnKind = 'text' | 'number' | 'bool' | 'json';

export interface TableSpec<Name extends string, Shape extends z.ZodRawShape> {
  name: Name;
  row: z.ZodObject<Shape>;
  primaryKey: keyof Shape & string;
  /** Rows belong to a tenant (column `tenant`); reads and writes are confined to the caller's tenant. */
  tenantScoped: boolean;
  indexes?: ReadonlyArray<ReadonlyArray<keyof Shape & string>>;
  unique?: ReadonlyArray<ReadonlyArray<keyof Shape & string>>;
}

export interface TableDef<Name extends string = string, Shape extends z.ZodRawShape = z.ZodRawShape>
  extends TableSpec<Name, Shape> {
  readonly columns: ReadonlyArray<{ name: string; kind: ColumnKind }>;
  readonly columnKinds: ReadonlyMap<string, ColumnKind>;
}

/** The shape-erased view of a table the runtime works with. */
export interface AnyTableDef {
  readonly name: string;
  readonly row: z.ZodType;
  readonly primaryKey: string;
  readonly tenantScoped: boolean;
  readonly indexes?: ReadonlyArray<ReadonlyArray<string>>;
  readonly unique?: ReadonlyArray<ReadonlyArray<string>>;
  readonly columns: ReadonlyArray<{ name: string; kind: ColumnKind }>;
  readonly columnKinds: ReadonlyMap<string, ColumnKind>;
}

export type RowOf<T> = T extends TableDef<string, infer S> ? z.output<z.ZodObject<S>> : never;
export type RowInputOf<T> = T extends TableDef<string, infer S> ? z.input<z.ZodObject<S>> : never;

const NAME = /^[a-z][a-z0-9_]*$/;

export function defineTable<Name extends string, Shape extends z.ZodRawShape>(
  spec: TableSpec<Name, Shape>,
): TableDef<Name, Shape> {
  if (!NAME.test(spec.name)) throw new Error(`table name ${spec.name} must match ${NAME}`);
  const columns: { name: string; kind: ColumnKind }[] = [];
  for (const [name, type] of Object.entries(spec.row.shape)) {
    if (!NAME.test(name)) throw new Error(`${spec.name}.${name}: column name must match ${NAME}`);
    columns.push({ name, kind: columnKind(type as z.ZodType, `${spec.name}.${name}`) });
  }
  if (!columns.some((c) => c.name === spec.primaryKey)) {
    throw new Error(`${spec.name}: primary key ${spec.primaryKey} is not a column`);
  }
  if (spec.tenantScoped && !columns.some((c) => c.name === 'tenant' && c.kind === 'text')) {
    throw new Error(`${spec.name}: a tenant-scoped table needs a text column "tenant"`);
  }
  return { ...spec, columns, columnKinds: new Map(columns.map((c) => [c.name, c.kind])) };
}

function columnKind(type: z.ZodType, where: string): ColumnKind {
  const def = (type as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
  switch (def.type) {
    case 'nullable':
    case 'default':
    case 'readonly':
      if (!def.innerType) throw new Error(`${where}: wrapper without inner type`);
      return columnKind(def.innerType, where);
    case 'optional':
      throw new Error(`${where}: use .nullable() rather than .optional() so rows round-trip exactly`);
    case 'string':
    case 'enum':
      return 'text';
    case 'number':
    case 'int':
      return 'number';
    case 'boolean':
      return 'bool';
    case 'literal': {
      const values = (def as unknown as { values: unknown[] }).values;
      return typeof values[0] === 'number' ? 'number' : typeof values[0] === 'boolean' ? 'bool' : 'text';
    }
    default:
      return 'json';
  }
}

/** SQL identifiers are validated by NAME above, so quoting is for keywords only. */
export const q = (ident: string): string => `"${ident}"`;

const sqlType = (kind: ColumnKind): string => (kind === 'text' || kind === 'json' ? 'TEXT' : kind === 'bool' ? 'INTEGER' : 'NUMERIC');

export function tableDdl(def: AnyTableDef): string[] {
  const cols = def.columns.map((c) => `${q(c.name)} ${sqlType(c.kind)}${c.name === def.primaryKey ? ' PRIMARY KEY NOT NULL' : ''}`);
  const out = [`CREATE TABLE IF NOT EXISTS ${q(def.name)} (${cols.join(', ')}) WITHOUT ROWID`];
  const indexes: Array<[ReadonlyArray<string>, boolean]> = [
    ...(def.indexes ?? []).map((c) => [c, false] as [ReadonlyArray<string>, boolean]),
    ...(def.unique ?? []).map((c) => [c, true] as [ReadonlyArray<string>, boolean]),
  ];
  // Tenant-scoped reads filter on tenant: index it unless another index already leads with it.
  if (def.tenantScoped && !indexes.some(([cols2]) => cols2[0] === 'tenant')) indexes.unshift([['tenant'], false]);
  for (const [cols2, unique] of indexes) {
    const name = `${def.name}__${cols2.join('_')}${unique ? '__u' : ''}`;
    out.push(
      `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(name)} ON ${q(def.name)} (${cols2.map(q).join(', ')})`,
    );
  }
  return out;
}

/**
 * A column added to a table since a database was made is added to that database's table (`ALTER TABLE … ADD
 * COLUMN`): its older rows read NULL there, so a column may be added only as nullable, written null by the reducers
 * of older commands — a replay of the log then builds the same rows.
 */
export function addedColumnsDdl(def: AnyTableDef, existing: ReadonlySet<string>): string[] {
  if (existing.size === 0) return [];
  return def.columns.filter((c) => !existing.has(c.name)).map((c) => `ALTER TABLE ${q(def.name)} ADD COLUMN ${q(c.name)} ${sqlType(c.kind)}`);
}

export type SqlValue = string | number | null;

/** Encodes one column value for SQLite. */
export function encodeValue(kind: ColumnKind, value: unknown): SqlValue {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'bool':
      return value ? 1 : 0;
    case 'json':
      return canonicalJson(value);
    default:
      return value as string | number;
  }
}

export function decodeValue(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'bool':
      return value === 1;
    case 'json':
      return JSON.parse(value as string);
    default:
      return value;
  }
}

export function encodeRow(def: AnyTableDef, row: Record<string, unknown>): SqlValue[] {
  return def.columns.map((c) => encodeValue(c.kind, row[c.name]));
}

export function decodeRow(def: AnyTableDef, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of def.columns) out[c.name] = decodeValue(c.kind, raw[c.name]);
  return out;
}
