/**
 * Opening the SQLite file: durability pragmas from the profile, an exclusive
 * lock so two gateways can never write the same data dir, and a refusal to
 * start on a corrupt or truncated file.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { StoreError } from './errors.ts';
import { createPrivate } from './permissions.ts';

export type FsyncPolicy = 'always' | 'periodic' | 'never';
export type Profile = 'development' | 'balanced' | 'production' | 'maximum_safety';

export interface Durability {
  profile: Profile;
  fsync: FsyncPolicy;
  /** SQLite `synchronous` pragma derived from the policy. */
  synchronous: 'EXTRA' | 'FULL' | 'NORMAL' | 'OFF';
  /**
   * fsync `always` with the WAL synced off the event loop (wal-sync.ts) after each batch, before anyone is told;
   * SQLite itself then commits with NORMAL. `maximum_safety` keeps the sync inside COMMIT (EXTRA).
   */
  syncOffLoop: boolean;
  /** Page cache per connection, KiB. */
  cacheKiB: number;
  /** Run `PRAGMA quick_check` before accepting writes. */
  integrityCheckOnOpen: boolean;
}

const PROFILE_DEFAULTS: Record<Profile, { fsync: FsyncPolicy; cacheKiB: number }> = {
  development: { fsync: 'periodic', cacheKiB: 32 * 1024 },
  balanced: { fsync: 'periodic', cacheKiB: 64 * 1024 },
  production: { fsync: 'always', cacheKiB: 128 * 1024 },
  maximum_safety: { fsync: 'always', cacheKiB: 128 * 1024 },
};

export function resolveDurability(env: { profile?: string; fsync?: string }): Durability {
  const profile = (env.profile ?? 'development') as Profile;
  if (!Object.hasOwn(PROFILE_DEFAULTS, profile)) {
    throw new StoreError('invalid_command', `SWITCHBOARD_PROFILE must be one of ${Object.keys(PROFILE_DEFAULTS).join(', ')}; got ${profile}`);
  }
  const defaults = PROFILE_DEFAULTS[profile];
  const fsync = (env.fsync ?? defaults.fsync) as FsyncPolicy;
  if (!['always', 'periodic', 'never'].includes(fsync)) {
    throw new StoreError('invalid_command', `SWITCHBOARD_FSYNC_POLICY must be always, periodic or never; got ${fsync}`);
  }
  const syncOffLoop = fsync === 'always' && profile !== 'maximum_safety';
  const synchronous = fsync === 'never' ? 'OFF' : fsync === 'periodic' || syncOffLoop ? 'NORMAL' : 'EXTRA';
  return { profile, fsync, synchronous, syncOffLoop, cacheKiB: defaults.cacheKiB, integrityCheckOnOpen: true };
}

function sqliteCode(err: unknown): string {
  return typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : '';
}

/**
 * Opens (creating if needed) the database at `file` for exclusive writing.
 * Throws StoreError `database_locked` or `database_corrupt` with an operator-facing message.
 */
export const WAL_BACKSTOP_PAGES = 65_536;

export interface OpenedDatabase {
  db: Database.Database;
  /** Held for the life of `db`; close it after `db`. */
  lock: Database.Database;
}

export function openDatabase(file: string, durability: Durability): OpenedDatabase {
  if (fs.existsSync(file)) {
    const size = fs.statSync(file).size;
    if (size > 0 && size < 512) {
      throw new StoreError('database_corrupt', `${file} is truncated (${size} bytes): refusing to start. Restore it from a backup or move it away.`);
    }
  }
  // 0600 before SQLite opens them: the -wal, -shm and -journal files it creates copy the database file's mode.
  createPrivate(`${file}.lock`);
  const lock = acquireDirLock(`${file}.lock`);
  let db: Database.Database;
  try {
    createPrivate(file);
    db = new Database(file, { timeout: 200 });
  } catch (err) {
    lock.close();
    throw new StoreError('database_corrupt', `cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    // Normal (shared-memory) locking, not EXCLUSIVE: the WAL checkpoint runs on a second connection in a worker
    // thread (wal-checkpointer.ts). One writer process per data dir is the directory lock's job (above).
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError('database_corrupt', `${file}: cannot enable WAL (got ${String(mode)})`);
    for (const side of [`${file}-wal`, `${file}-shm`]) if (fs.existsSync(side)) fs.chmodSync(side, 0o600);
    db.pragma(`synchronous = ${durability.synchronous}`);
    db.pragma(`cache_size = -${durability.cacheKiB}`);
    db.pragma('foreign_keys = OFF');
    // Temp indexes and statement journals stay in memory, not temp files.
    db.pragma('temp_store = MEMORY');
    // deleted rows are overwritten, not left in free space: erased content (schema/content.ts) is really gone
    db.pragma('secure_delete = ON');
    // Checkpoints run on the checkpoint thread (small and often), not inside a
    // batch's commit; this is only the backstop should that thread fall behind.
    db.pragma(`wal_autocheckpoint = ${WAL_BACKSTOP_PAGES}`);
    db.exec('BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); COMMIT');
    if (durability.integrityCheckOnOpen) {
      const result = db.pragma('quick_check', { simple: true });
      if (result !== 'ok') throw new StoreError('database_corrupt', `${file} failed its integrity check: ${String(result)}`);
    }
  } catch (err) {
    db.close();
    lock.close();
    if (err instanceof StoreError) throw err;
    return rethrowOpenError(file, err);
  }
  return { db, lock };
}

function lockedError(file: string): StoreError {
  return new StoreError(
    'database_locked',
    `${file} is locked by another process: is another switchboard running on this data directory?`,
    true,
  );
}

/**
 * A process-lifetime lock on the data directory: a tiny rollback-journal
 * database held in an open EXCLUSIVE transaction. The OS drops it when the
 * process dies (kill -9 included), so there is no stale lock to clean up.
 */
function acquireDirLock(lockFile: string): Database.Database {
  const lock = new Database(lockFile, { timeout: 100 });
  try {
    lock.pragma('journal_mode = DELETE');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
    lock.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
    lock.prepare('DELETE FROM holder').run();
    lock.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (err) {
    lock.close();
    const code = sqliteCode(err);
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') throw lockedError(lockFile.replace(/\.lock$/, ''));
    throw err;
  }
  return lock;
}

function rethrowOpenError(file: string, err: unknown): never {
  const code = sqliteCode(err);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') throw lockedError(file);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_IOERR')) {
    throw new StoreError('database_corrupt', `${file} is not a valid Switchboard database (${code}: ${(err as Error).message}); refusing to start.`);
  }
  throw err;
}
