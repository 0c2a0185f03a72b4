/**
 * Content columns are sealed with their call's key (recording/content-seal.ts): a test reading rows of an
 * in-process gateway's store opens them here, with the keys that gateway holds in memory (it sealed them).
 *   opened(gw.store, 'agent_actions', gw.store.read('default').agent_actions.find({ call_id }))
 */
import { sealerOf } from '../../recording/content-seal.ts';

export function opened<R extends object>(store: object, table: string, rows: readonly R[]): R[] {
  const sealer = sealerOf(store);
  return sealer ? rows.map((r) => sealer.openRowCached(table, r as Record<string, unknown>) as R) : [...rows];
}
