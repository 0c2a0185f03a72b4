/**
 * The store facade: opens the database, creates the schema's tables beside the
 * log, runs the apply engine, signs checkpoints, serves tenant-scoped reads
 * (`read`: typed table views; `query`: the tenant-bound query layer) and
 * subscriptions, and exposes verify / replay / digest for operators. The
 * SQLite handle is private (`#db`): code outside store/ never touches it.
 * `Store.open` is the embedded store; `Store.openCluster` runs the same store
 * on the JetStream log of cluster mode (store/log-backend.ts, opened by
 * store/open-cluster.ts): submit hands the command to the backend, everything
 * else is the same.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import { TableAccessor, type TableStatements } from './accessor.ts';
import { buildCommand } from './command-build.ts';
import { AttestationTable } from './attestations.ts';
import { CheckpointTable, loadOrCreateNodeKey, type NodeKey } from './checkpoint.ts';
import { CheckpointSigner } from './checkpoint-signer.ts';
import { checkApplied, prepareDatabase } from './prepare.ts';
import { openDatabase, resolveDurability, type Durability } from './database.ts';
import { tableDigest, type TableDigest } from './digest.ts';
import { ApplyEngine, type Receipt, type StoreFault } from './engine.ts';
import { clusterCopyError } from './errors.ts';
import type { ClusterOptions, JetStreamLog } from './jetstream-log.ts';
import type { ClusterPlug } from './open-cluster.ts';
import { takeSnapshot, type SnapshotManifest } from './snapshot.ts';
import type { LogBackend } from './log-backend.ts';
import { walFlusher, type Flusher } from './wal-sync.ts';
import { CommandIdSource } from './command-id.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { FaultMarker, type RecordedFault } from './fault-marker.ts';
import { secureDataDir } from './permissions.ts';
import { StoreError } from './errors.ts';
import { EventLog } from './log.ts';
import type { StoreOptions, SubmitOptions, ReadView } from './store-options.ts';
import type { ArgsOf, ReducerDef, ReducerHandle, ResultOf, SchemaDef, Tables } from './reducer.ts';
import { replayLog, type ReplayReport } from './replay.ts';
import { SubscriptionHub, type DeltaListener, type Filter, type Snapshot } from './subscriptions.ts';
import { ChangeJournal } from './changes.ts';
import { resumeSubscription, type Resumed } from './resume.ts';
import { verifyLog, type VerifyReport } from './verify.ts';
import { TenantQuery, type QueryContext } from './query.ts';
import type { AnyTableDef } from './table.ts';
import { setIndexText, type IndexText } from './derived.ts';

/** See `Store.sealWith`. */
export type ArgsSealer = (reducer: string, args: unknown, opts: SubmitOptions) => unknown;

export type { StoreOptions, SubmitOptions, ReadView } from './store-options.ts';

export const DB_FILE = 'switchboard.db';

/** Set by Store's static block: the handle behind a store, for store/testing.ts only. */
let rawHandle: (store: Store<never>) => Database.Database = () => {
  throw new Error('store not initialised');
};

/** Test-only escape hatch (store/testing.ts re-exports it): the SQLite handle of a store. */
export function databaseOf<T extends Tables>(store: Store<T>): Database.Database {
  return rawHandle(store as unknown as Store<never>);
}

let plugOf: (store: Store<never>) => ClusterPlug = () => {
  throw new Error('store not initialised');
};

/** For store/open-cluster.ts only: the engine and log of a store just opened, and where its log backend goes. */
export function clusterPlug<T extends Tables>(store: Store<T>): ClusterPlug {
  return plugOf(store as unknown as Store<never>);
}

/** The runtime handles every schema alike; only reducers see their tables' types. */
const erase = <T extends Tables>(schema: SchemaDef<T>): SchemaDef => schema as unknown as SchemaDef;

export class Store<T extends Tables = Tables> {
  readonly node: string;
  readonly durability: Durability;
  private readonly engine: ApplyEngine;
  /** Orders commands before the engine applies them: the engine itself (embedded) or the JetStream log (cluster). */
  private backend: LogBackend;
  private cluster: JetStreamLog | null = null;
  private readonly onError: (err: unknown) => void;
  private readonly log: EventLog;
  private readonly checkpoints: CheckpointTable;
  private readonly attestations: AttestationTable;
  private readonly statements: Map<string, TableStatements>;
  private readonly reducers: Map<string, ReducerDef<Tables>>;
  private readonly hub: SubscriptionHub;
  private readonly journal: ChangeJournal;
  private readonly key: NodeKey;
  private readonly clock: () => number;
  private readonly walCheckpointer: WalCheckpointer;
  private readonly flusher: Flusher | null;
  private readonly walFile: string;
  private readonly ids = new CommandIdSource();
  private readonly healthListeners = new Set<(fault: StoreFault | null) => void>();
  private readonly marker: FaultMarker;
  private readonly signer: CheckpointSigner;
  private previousHandled = false;
  private closed = false;
  /** What a submitted command's args become before they are built (content sealing, see `sealWith`). */
  private sealer: ArgsSealer | null = null;

  /** The SQLite handle: nothing outside store/ touches it (reads go through `query`, writes through reducers). */
  readonly #db: Database.Database;
  /** What `query(tenant)` views share: tables, derived indexes and the statement cache. */
  readonly #queries: QueryContext;

  static {
    rawHandle = (store) => store.#db;
    plugOf = (store) => ({
      engine: store.engine,
      log: store.log,
      onError: store.onError,
      onLogHealth: (fault) => store.notifyHealth(fault),
      attach: (cluster) => {
        store.cluster = cluster;
        store.backend = cluster;
      },
      cluster: () => store.cluster,
      checkpoints: store.checkpoints,
      attestations: store.attestations,
      key: store.key,
      snapshot: (file) => takeSnapshot(store.#db, file, store.node, store.clock()),
    });
  }

  private constructor(
    db: Database.Database,
    private readonly lock: Database.Database,
    readonly schema: SchemaDef<T>,
    readonly dataDir: string,
    opts: StoreOptions<T>,
  ) {
    this.#db = db;
    this.durability = opts.durability ?? resolveDurability({});
    this.clock = opts.clock ?? Date.now;
    const onError = opts.onError ?? (() => {});
    this.onError = onError;
    const prepared = prepareDatabase(db, erase(schema), opts.node);
    this.node = prepared.node;
    this.statements = prepared.statements;
    this.reducers = new Map(schema.reducers.map((r) => [r.name, r as ReducerDef<Tables>]));
    this.log = new EventLog(db);
    this.checkpoints = new CheckpointTable(db);
    this.key = loadOrCreateNodeKey(path.join(dataDir, 'keys'), this.node);
    this.checkpoints.registerNode(this.key);
    this.attestations = new AttestationTable(db);
    const defs = Object.values(schema.tables) as AnyTableDef[];
    this.#queries = {
      db,
      tables: new Map(defs.map((def) => [def.name, def])),
      derived: new Map((schema.derived ?? []).map((d) => [d.name, d])),
      checkpoints: this.checkpoints,
      node: this.node,
      cache: new Map(),
    };
    const head = this.log.head();
    const position = checkApplied(db, this.log);
    this.signer = new CheckpointSigner({
      checkpoints: this.checkpoints,
      key: this.key,
      clock: this.clock,
      every: opts.checkpointEvery ?? 1000,
      ms: opts.checkpointMs ?? 5000,
      head: () => this.engine.head,
      onError,
    });
    this.hub = new SubscriptionHub(onError);
    this.journal = new ChangeJournal(db, head.seq, opts.changeWindow);
    this.marker = new FaultMarker(dataDir);
    this.walFile = path.join(dataDir, `${DB_FILE}-wal`);
    this.flusher = this.durability.syncOffLoop ? (opts.flusher ?? walFlusher(this.walFile)) : null;
    this.engine = new ApplyEngine(db, this.log, this.statements, this.reducers, { ...head, position }, {
      ...(this.flusher ? { flusher: this.flusher } : {}),
      clock: this.clock,
      ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
      ...(opts.maxQueued !== undefined ? { maxQueued: opts.maxQueued } : {}),
      onHealth: (fault) => {
        // A checkpoint written inside the rolled-back batch is gone with it.
        if (fault) this.signer.resync();
        if (fault) this.journal.resync();
        if (fault) this.marker.record(fault);
        else if (!this.previousFault) this.marker.clear();
        this.notifyHealth(fault);
      },
      journal: (commands, seq) => this.journal.append(commands, seq),
      beforeCommit: (seq, hash) => this.signer.beforeCommit(seq, hash),
      afterCommit: (batch) => {
        this.hub.dispatch(batch);
        opts.onCommit?.({ commands: batch.size, ms: batch.committedAt - batch.startedAt });
      },
    });
    this.backend = this.engine;
    this.walCheckpointer = new WalCheckpointer({ file: path.join(dataDir, DB_FILE), synchronous: this.durability.synchronous, onError });
  }

  private notifyHealth(fault: StoreFault | null): void {
    for (const l of this.healthListeners) {
      try {
        l(fault ?? this.health);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** Paths in the data dir whose group/other permissions were removed at open (secureDataDir). */
  tightened: string[] = [];

  static open<T extends Tables>(opts: StoreOptions<T>): Store<T> {
    const tightened = secureDataDir(opts.dataDir);
    const durability = opts.durability ?? resolveDurability({});
    const { db, lock } = openDatabase(path.join(opts.dataDir, DB_FILE), durability);
    try {
      const store = new Store(db, lock, opts.schema, opts.dataDir, { ...opts, durability });
      store.tightened = tightened;
      return store;
    } catch (err) {
      db.close();
      lock.close();
      throw err;
    }
  }

  /**
   * Cluster mode: this store on the JetStream log (store/open-cluster.ts); applied up to what the stream held at
   * open before it returns. A bad or unreachable NATS is a StoreError naming `cluster.variable`. The NATS clients are
   * imported here, on this path only: a node without cluster mode never loads them.
   */
  static async openCluster<T extends Tables>(opts: StoreOptions<T> & { cluster: ClusterOptions }): Promise<Store<T>> {
    const { openCluster } = await import('./open-cluster.ts');
    return openCluster(opts);
  }

  /** Cluster mode: the snapshot this node's database was restored from at open (a trimmed stream), or null. */
  restoredFrom: SnapshotManifest | null = null;

  /** Cluster mode: publishes a snapshot of this node's database now (store/open-cluster.ts). */
  async publishSnapshot(): Promise<SnapshotManifest> {
    if (!this.cluster) throw new StoreError('invalid_command', 'snapshots are published in cluster mode only');
    const { publishSnapshotOf } = await import('./open-cluster.ts');
    return publishSnapshotOf(this);
  }

  /**
   * A cluster node's data dir opened without the cluster: reads, verify and replay work; a write would fork this
   * copy from the cluster's log, so it is refused.
   */
  clusterCopy(): StoreError {
    return clusterCopyError(this.engine.appliedPosition);
  }

  /** `embedded` (the default) or `jetstream` (cluster mode). */
  get logKind(): LogBackend['kind'] {
    return this.backend.kind;
  }

  /** Cluster mode: the stream seq this node has applied up to (0 when embedded). */
  get logPosition(): number {
    return this.engine.appliedPosition;
  }

  /** Cluster mode: resolves once this node has applied the stream up to `position` (tests, catch-up). */
  async waitForPosition(position: number): Promise<void> {
    await this.cluster?.waitApplied(position);
  }

  /** Resolves once the connection to the cluster log is closed after close() (at once when embedded). */
  whenClosed(): Promise<void> {
    return this.cluster?.closedPromise ?? Promise.resolve();
  }

  get head(): { seq: number; hash: string } {
    return this.engine.head;
  }

  /**
   * Null while the store commits normally; the storage fault (disk full, I/O error) while it cannot. Commands
   * submitted meanwhile wait and commit, in order, once the fault clears (the failed batch is retried).
   * Cluster mode: also `log_unavailable` while the replicated log has no quorum; submits are refused meanwhile.
   */
  get health(): StoreFault | null {
    return this.engine.health ?? this.cluster?.fault ?? null;
  }

  /** `cb(fault)` when the store turns unhealthy, `cb(null)` when it recovers. Returns an unsubscribe function. */
  onHealth(cb: (fault: StoreFault | null) => void): () => void {
    this.healthListeners.add(cb);
    return () => void this.healthListeners.delete(cb);
  }

  /**
   * The storage fault the previous process was in when it stopped (it never recovered): commands it held then were
   * never committed, so calls it served may look live in the tables. Null after a clean run. Stays set until
   * `faultHandled()`.
   */
  get previousFault(): RecordedFault | null {
    return this.marker.previous && !this.previousHandled ? this.marker.previous : null;
  }

  /** Whoever reconciled the state the previous fault left (bridge/fault-recovery.ts) clears the record. */
  faultHandled(): void {
    this.previousHandled = true;
    if (!this.engine.health) this.marker.clear();
  }

  get publicKeyPem(): string {
    return this.key.publicKeyPem;
  }

  /**
   * Validates and queues a command; resolves with its outcome once durable.
   * `reducer` is the typed handle from the schema (`store.submit(call_ended, …)`): `args` are checked against its
   * zod input type and the receipt's result is typed as what the reducer returns. A handle this store's schema
   * does not hold, and invalid args, are refused here: nothing is logged.
   */
  submit<D extends ReducerHandle>(reducer: D, args: ArgsOf<D>, opts: SubmitOptions): Promise<Receipt<ResultOf<D>>> {
    if (this.reducers.get(reducer.name) !== (reducer as unknown)) {
      return Promise.reject(new StoreError('unknown_reducer', `the reducer ${JSON.stringify(reducer.name)} is not this store's schema's`));
    }
    return this.submitNamed(reducer.name, args, opts) as Promise<Receipt<ResultOf<D>>>;
  }

  /**
   * The wire form of `submit`: a command whose reducer is known only by its logged name (a command carried from
   * elsewhere, a store test with its own schema). Application code submits typed handles.
   */
  submitNamed(reducer: string, args: unknown, opts: SubmitOptions): Promise<Receipt> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    if (this.backend === this.engine && this.engine.appliedPosition > 0) return Promise.reject(this.clusterCopy());
    if (this.sealer) {
      let sealed: unknown;
      try {
        sealed = this.sealer(reducer, args, opts);
      } catch (err) {
        return Promise.reject(err);
      }
      if (sealed instanceof Promise) return sealed.then((a: unknown) => this.submitBuilt(reducer, a, opts));
      return this.submitBuilt(reducer, sealed, opts);
    }
    return this.submitBuilt(reducer, args, opts);
  }

  /**
   * Installs what every submitted command's args pass through before they are validated and logged (null: none).
   * The gateway seals content with it (recording/content-seal.ts); it may refuse by throwing or rejecting.
   */
  sealWith(sealer: ArgsSealer | null): void {
    this.sealer = sealer;
  }

  /** What a sealed full-text column is indexed as (store/derived.ts `opener`): the gateway's opener of sealed text. */
  indexTextWith(fn: IndexText | null): void {
    setIndexText(this.#db, fn);
  }

  /**
   * After content was destroyed (erasure): copies the WAL back into the database and truncates it, so deleted
   * pages (zeroed: the database runs with `secure_delete`) leave no older copy in the WAL file. Best effort: a
   * busy reader leaves the WAL for the next call.
   */
  scrubWal(): boolean {
    const r = this.#db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    return (r[0]?.busy ?? 1) === 0;
  }

  private submitBuilt(reducer: string, args: unknown, opts: SubmitOptions): Promise<Receipt> {
    const built = buildCommand({ reducers: this.reducers, node: this.node, clock: this.clock, nextId: () => this.ids.next() }, reducer, args, opts);
    if (built instanceof StoreError) return Promise.reject(built);
    return this.backend.submit(built.command, built.argsJson, built.fresh);
  }

  /** Read-only, tenant-scoped table views (null = unscoped, for operator tools). */
  read(tenant: string | null): ReadView<T> {
    const view: Record<string, TableAccessor> = {};
    for (const [name, stmts] of this.statements) view[name] = new TableAccessor(stmts, tenant, null, true);
    return view as unknown as ReadView<T>;
  }

  /**
   * The tenant-bound query layer (store/query.ts): filtered, ordered, keyset-paged reads and counts over tables,
   * full-text matches and a subject's log events, every statement confined to `tenant` by the store.
   */
  query(tenant: string): TenantQuery<T> {
    return new TenantQuery<T>(this.#queries, tenant);
  }

  /** Snapshot (with its seq) then ordered deltas; the tenant comes from the session. */
  subscribe(
    table: keyof T & string,
    filter: Filter,
    tenant: string | null,
    listener: DeltaListener,
  ): { snapshot: Snapshot; unsubscribe: () => void } {
    const stmts = this.statements.get(table);
    if (!stmts) throw new StoreError('invalid_command', `no table ${table}`);
    for (const col of Object.keys(filter)) {
      if (!stmts.def.columnKinds.has(col)) throw new StoreError('invalid_command', `${table} has no column ${col}`);
    }
    const accessor = new TableAccessor(stmts, tenant, null, true);
    // The snapshot is what SQLite holds now: batches committed but still waiting for their fsync included (seq is
    // the committed head), so their deltas, delivered once durable, are skipped for this subscriber.
    const rows = accessor.find(filter as Record<string, never>);
    const seq = this.engine.head.seq;
    const unsubscribe = this.hub.add(table, filter, stmts.def.tenantScoped ? tenant : null, listener, seq);
    return { snapshot: { seq, rows }, unsubscribe };
  }

  /**
   * Resumes a subscription from `since` (a seq its client saw): the deltas committed after it that match, then
   * live deltas — or a fresh snapshot, with why, when the change journal cannot tell (store/resume.ts).
   */
  resume(table: keyof T & string, filter: Filter, tenant: string | null, listener: DeltaListener, since: number): Resumed {
    const stmts = this.statements.get(table);
    if (!stmts) throw new StoreError('invalid_command', `no table ${table}`);
    for (const col of Object.keys(filter)) {
      if (!stmts.def.columnKinds.has(col)) throw new StoreError('invalid_command', `${table} has no column ${col}`);
    }
    const head = this.engine.head.seq;
    return resumeSubscription({ journal: this.journal, head, since, table, filter, tenant: stmts.def.tenantScoped ? tenant : null }, {
      snapshot: () => this.subscribe(table, filter, tenant, listener),
      live: () => this.hub.add(table, filter, stmts.def.tenantScoped ? tenant : null, listener, head),
    });
  }

  get subscriberCount(): number {
    return this.hub.size;
  }

  /** Signs a checkpoint of the head now (unless it is signed already). */
  checkpointNow(): void {
    this.signer.signNow();
  }

  verify(): VerifyReport {
    return verifyLog(this.#db, this.log, this.checkpoints, new Map([[this.node, this.key.publicKeyPem]]), this.attestations);
  }

  replay(target?: string): ReplayReport {
    return replayLog(this.#db, this.log, erase(this.schema), target);
  }

  digest(): TableDigest {
    return tableDigest(this.#db, Object.values(this.schema.tables));
  }

  events(fromSeq = 1, toSeq?: number): ReturnType<EventLog['iterate']> {
    return this.log.iterate(fromSeq, toSeq);
  }

  /** Applies what is queued, writes a final checkpoint and closes the database. Runs once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signer.stop();
    this.cluster?.close(); // stops consuming; what it read is applied by engine.close below
    this.engine.close();
    try {
      // Unhealthy (disk full): the final checkpoint cannot be written; the next start signs one.
      if (!this.engine.health) this.checkpointNow();
    } finally {
      this.healthListeners.clear();
      this.marker.close();
      this.flusher?.close?.();
      this.walCheckpointer.stop();
      this.#db.close();
      this.lock.close();
    }
  }
}
