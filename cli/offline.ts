/** Opens the store of a data dir for an offline operator command (gateway stopped). */
import { schema, type SwitchboardTables } from '../schema/index.ts';
import { Store, StoreError } from '../store/index.ts';
import { loadConfig } from './config.ts';

export function openOffline(dataDir?: string): Store<SwitchboardTables> {
  const config = loadConfig(dataDir ? { ...process.env, SWITCHBOARD_DATA_DIR: dataDir } : process.env);
  try {
    return Store.open({ dataDir: config.dataDir, schema, durability: config.durability, checkpointMs: 0 });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'database_locked') {
      throw new StoreError('database_locked', `${err.message} (a running gateway is used through its API: pass --url and --token)`);
    }
    throw err;
  }
}
