/**
 * Content columns are sealed with their call's key (recording/content-seal.ts), so a raw read of the store holds
 * ciphertext where a test means words. Tests read rows the way a user sees them through three helpers:
 *
 *   openingReads(gw.store)   the in-process gateway's store whose `read(tenant)` opens every content column with
 *                            the keys that gateway holds in memory (it sealed them); test/helpers/gateway.ts returns
 *                            its store so wrapped, so `gw.store.read('default').agent_actions.find(…)` reads words
 *   openStore(opts)          `Store.open` of a data dir a gateway left (kill -9, stopped): the keyring is built from
 *                            the dir's master key and key files, every call's key loaded, and reads open as above
 *   opened(store, table, rows)  the rows opened explicitly (the same keys as openingReads)
 *
 * A call whose key is gone (erased) reads null ('' for transcript text), as the API shows it.
 */
import { Store, type StoreOptions } from '../../store/index.ts';
import { sealerOf, ContentSealer } from '../../recording/content-seal.ts';
import { ContentKeyring } from '../../recording/content-keys.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { CONTENT_COLUMNS, type SwitchboardTables } from '../../schema/index.ts';

const TARGET = Symbol('openingReads target');

/** The store under an `openingReads` wrapper (product code keys its sealer by the real store). */
export function unwrapStore<S extends object>(store: S): S {
  return ((store as Record<symbol, unknown>)[TARGET] as S | undefined) ?? store;
}

export function opened<R extends object>(store: object, table: string, rows: readonly R[]): R[] {
  const sealer = sealerOf(unwrapStore(store));
  return sealer ? rows.map((r) => sealer.openRowCached(table, r as Record<string, unknown>) as R) : [...rows];
}

type TableReader = { get(k: unknown): unknown; find(w?: unknown): unknown[]; findOne(w?: unknown): unknown };

function openingTable(store: object, table: string, t: TableReader): TableReader {
  const one = (row: unknown): unknown => (row ? opened(store, table, [row as object])[0] : row);
  return {
    get: (k) => one(t.get(k)),
    find: (w) => opened(store, table, t.find(w) as object[]),
    findOne: (w) => one(t.findOne(w)),
  };
}

/** `store` with `read(tenant)` opening content columns (see the header). Everything else is the store itself. */
export function openingReads<S extends object>(store: S): S {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === TARGET) return target;
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === 'read' && typeof value === 'function') {
        return (tenant: string | null) => {
          const view = (value as (t: string | null) => Record<string, TableReader>).call(target, tenant);
          return new Proxy(view, {
            get(v, table) {
              const t = Reflect.get(v, table) as TableReader | undefined;
              return typeof table === 'string' && t && CONTENT_COLUMNS[table] ? openingTable(target, table, t) : t;
            },
          });
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * A data dir's store opened offline with its content readable: the dir's own master key and key files, every
 * call's key loaded into memory first (reads are synchronous).
 */
export async function openStore(opts: StoreOptions<SwitchboardTables>): Promise<Store<SwitchboardTables>> {
  const store = Store.open(opts);
  const sealer = new ContentSealer(store, new ContentKeyring(new FsBlobStore(opts.dataDir), loadOrCreateMasterKey(opts.dataDir)));
  sealer.install();
  for (const call of store.read(null).calls.find({})) {
    await sealer.keyring.get({ tenant: call.tenant, callId: call.id }).catch(() => null);
  }
  return openingReads(store);
}
