/** Public surface of the store. Nothing here knows about telephony. */
export { Store, DB_FILE, type StoreOptions, type SubmitOptions, type ReadView } from './store.ts';
export { defineTable, type TableDef, type RowOf } from './table.ts';
export { reducerFactory, type ArgsOf, type ReducerCtx, type ReducerDef, type ReducerHandle, type ResultOf, type SchemaDef, type Tables } from './reducer.ts';
export { ReducerError, StoreError } from './errors.ts';
export { resolveDurability, type Durability, type FsyncPolicy, type Profile } from './database.ts';
export type { Receipt, StoreFault } from './engine.ts';
export type { Flusher } from './wal-sync.ts';
export type { ClusterOptions } from './jetstream-log.ts';
export type { LogBackend } from './log-backend.ts';
export type { Outcome, LogEvent, Command } from './log.ts';
export type { Delta, Filter, Snapshot } from './subscriptions.ts';
export type { VerifyReport } from './verify.ts';
export type { ReplayReport } from './replay.ts';
export { canonicalJson, type Json } from './canonical.ts';
export { TenantQuery, Select, ftsQuery, type ChainLink, type EventWithBody, type SignedCheckpoint } from './query.ts';
export { derivedDdl, type DerivedIndex, type FullTextIndex, type LogIndex } from './derived.ts';
