/** Opens a Switchboard store on a fresh temp dir for a test. */
import { schema, type SwitchboardTables } from '../../schema/index.ts';
import { resolveDurability, Store, type FsyncPolicy, type Receipt } from '../../store/index.ts';
import { tmpDir } from './tmp.ts';

export function openTestStore(
  opts: { dataDir?: string; fsync?: FsyncPolicy; checkpointEvery?: number; clock?: () => number } = {},
): Store<SwitchboardTables> {
  return Store.open({
    dataDir: opts.dataDir ?? tmpDir(),
    schema,
    durability: resolveDurability({ profile: 'development', fsync: opts.fsync ?? 'never' }),
    checkpointEvery: opts.checkpointEvery ?? 100,
    checkpointMs: 0,
    clock: opts.clock,
    node: 'test-node',
  });
}

export const T = { tenant: 'acme', caller: 'test' };

/**
 * The result of a successful command, typed by the reducer handle it was submitted with; fails the test with the
 * rejection otherwise. (An explicit `R` still narrows a result submitted by name.)
 */
export function resultOf<R>(receipt: Receipt<R>): R;
export function resultOf<R>(receipt: Receipt): R;
export function resultOf<R>(receipt: Receipt<R> | Receipt): R {
  if (!receipt.outcome.ok) throw new Error(`command rejected: ${receipt.outcome.error.code}: ${receipt.outcome.error.message}`);
  return receipt.outcome.result as R;
}
