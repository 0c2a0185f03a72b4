/**
 * Opens the store of a data dir for an offline operator command (gateway stopped).
 *
 * `existing: true` is for the read-only commands (verify, replay, calls, call): a directory that holds no store is
 * refused before anything is opened, so a mistyped `--data-dir` (or running in the wrong directory) is an error
 * naming the directory instead of an empty store created on the spot and reported as "verify: OK".
 */
import fs from 'node:fs';
import path from 'node:path';
import { schema, type SwitchboardTables } from '../schema/index.ts';
import { DB_FILE, Store, StoreError } from '../store/index.ts';
import { ConfigError, loadStoreConfig } from './config/index.ts';

export function openOffline(dataDir?: string, opts: { existing?: boolean } = {}): Store<SwitchboardTables> {
  const config = loadStoreConfig(dataDir ? { ...process.env, SWITCHBOARD_DATA_DIR: dataDir } : process.env);
  if (opts.existing && !fs.existsSync(path.join(config.dataDir, DB_FILE))) {
    const where = path.resolve(config.dataDir);
    throw new ConfigError(
      `${where} holds no switchboard store (no ${DB_FILE}): pass --data-dir (or SWITCHBOARD_DATA_DIR) naming a gateway's data directory`,
    );
  }
  try {
    return Store.open({ dataDir: config.dataDir, schema, durability: config.durability, checkpointMs: 0 });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'database_locked') {
      throw new StoreError('database_locked', `${err.message} (a running gateway is used through its API: pass --url and --token)`);
    }
    throw err;
  }
}
