/**
 * The options of `Store.open` / `Store.openCluster` and of `submit`, and the shape of `read` (store/store.ts).
 */
import type { Durability } from './database.ts';
import type { DbOf, SchemaDef, Tables } from './reducer.ts';
import type { Flusher } from './wal-sync.ts';

export interface StoreOptions<T extends Tables> {
  dataDir: string;
  schema: SchemaDef<T>;
  /** With fsync `always` off the loop: what makes the WAL durable (default: fsync of the -wal file). Tests inject one. */
  flusher?: Flusher;
  durability?: Durability;
  /** Node name; defaults to the one recorded in the database, or a new random one. */
  node?: string;
  /** Sign a checkpoint every N events … */
  checkpointEvery?: number;
  /** … or every T ms when the head moved. 0 disables the timer. */
  checkpointMs?: number;
  /** Wall clock for command timestamps (outside reducers). */
  clock?: () => number;
  onError?: (err: unknown) => void;
  /** Called after each committed batch (metrics); must not throw. */
  onCommit?: (info: { commands: number; ms: number }) => void;
  /** How often a batch stopped by a storage fault (disk full) is retried, ms (default 1000). */
  retryMs?: number;
  /** Commands allowed to wait while a storage fault blocks commits; beyond, submit is refused (default 20,000). */
  maxQueued?: number;
  /** How many recent seqs' row changes the change journal keeps for resuming subscriptions (default 50,000). */
  changeWindow?: number;
}

export interface SubmitOptions {
  tenant: string;
  caller: string;
  /** Idempotency key; defaults to a fresh uuid v7. */
  id?: string;
}

export type ReadView<T extends Tables> = {
  [K in keyof T]: Pick<DbOf<T>[K], 'get' | 'find' | 'findOne'>;
};
