/**
 * What opening a data dir's database checks and creates before the store runs on it: the log, checkpoint and
 * attestation tables, the schema version (a database of another version is refused: tables are a view of the log,
 * so an older database is upgraded by replaying its log under the new reducers into a new data dir, never edited in
 * place), the node name recorded at first open, the schema's tables, and the log head agreeing with `applied_seq`.
 */
import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import type { TableStatements } from './accessor.ts';
import { ATTESTATION_DDL } from './attestations.ts';
import { CHECKPOINT_DDL } from './checkpoint.ts';
import { POSITION_KEY } from './engine.ts';
import { StoreError } from './errors.ts';
import { LOG_DDL, type EventLog } from './log.ts';
import type { SchemaDef } from './reducer.ts';
import { createTables } from './replay.ts';

export interface Prepared {
  node: string;
  statements: Map<string, TableStatements>;
  /** Cluster mode's stream position recorded in the database (0 when embedded). */
  position: number;
}

function metaReader(db: Database.Database): (key: string) => string | undefined {
  const meta = db.prepare('SELECT value FROM _meta WHERE key = ?');
  return (key) => (meta.get(key) as { value: string } | undefined)?.value;
}

/** Creates what is missing and refuses a database this build cannot run on. `node` overrides the recorded name. */
export function prepareDatabase(db: Database.Database, schema: SchemaDef, node: string | undefined): Omit<Prepared, 'position'> {
  for (const sql of [...LOG_DDL, ...CHECKPOINT_DDL, ...ATTESTATION_DDL]) db.exec(sql);
  const meta = metaReader(db);
  const setMeta = db.prepare('INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const storedVersion = meta('schema_version');
  if (storedVersion && Number(storedVersion) > schema.version) {
    throw new StoreError('invalid_command', `database schema version ${storedVersion} is newer than this build (${schema.version})`);
  }
  if (storedVersion && Number(storedVersion) < schema.version) {
    throw new StoreError(
      'invalid_command',
      `database schema version ${storedVersion} is older than this build (${schema.version}); in-place migrations are not built: start on a new data dir`,
    );
  }
  const storedNode = meta('node');
  const name = node ?? storedNode ?? `node-${crypto.randomBytes(4).toString('hex')}`;
  let statements: Map<string, TableStatements> | undefined;
  db.transaction(() => {
    statements = createTables(db, schema);
    setMeta.run('schema_version', String(schema.version));
    if (!storedNode) setMeta.run('node', name);
  })();
  return { node: name, statements: statements ?? createTables(db, schema) };
}

/** The log head must be what `applied_seq` says was applied; returns the recorded stream position. */
export function checkApplied(db: Database.Database, log: EventLog): number {
  const meta = metaReader(db);
  const head = log.head();
  const applied = Number(meta('applied_seq') ?? 0);
  if (applied !== head.seq) {
    throw new StoreError('log_inconsistent', `applied_seq ${applied} differs from the log head ${head.seq}: run 'switchboard verify'`);
  }
  return Number(meta(POSITION_KEY) ?? 0);
}
