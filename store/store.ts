/**
 * The store facade: opens the database, creates the schema's tables beside the
 * log, runs the apply engine, signs checkpoints, serves tenant-scoped reads
 * (`read`: typed table views; `query`: the tenant-bound query layer) and
 * subscriptions, and exposes verify / replay / digest for operators. The
 * SQLite handle is private (`#db`): code outside store/ never touches it.
 * `Store.open` is the embedded store; `Store.openCluster` runs the same store
 * on the JetStream log of cluster mode (store/log-backend.ts): submit hands the
 * command to the backend, everything else is the same.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { TableAccessor, type TableStatements } from './accessor.ts';
import { canonicalJson, type Json } from './canonical.ts';
import { CHECKPOINT_DDL, CheckpointTable, loadOrCreateNodeKey, signCheckpoint, type NodeKey } from './checkpoint.ts';
import { openDatabase, resolveDurability, type Durability } from './database.ts';
import { tableDigest, type TableDigest } from './digest.ts';
import { ApplyEngine, POSITION_KEY, type Receipt, type StoreFault } from './engine.ts';
import type { ClusterOptions, JetStreamLog } from './jetstream-log.ts';
import type { LogBackend } from './log-backend.ts';
import { walFlusher, type Flusher } from './wal-sync.ts';
import { CommandIdSource } from './command-id.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { FaultMarker, type RecordedFault } from './fault-marker.ts';
import { secureDataDir } from './permissions.ts';
import { StoreError } from './errors.ts';
import { EventLog, LOG_DDL, type Command } from './log.ts';
import type { ArgsOf, DbOf, ReducerDef, ReducerHandle, ResultOf, SchemaDef, Tables } from './reducer.ts';
import { createTables, replayLog, type ReplayReport } from './replay.ts';
import { SubscriptionHub, type DeltaListener, type Filter, type Snapshot } from './subscriptions.ts';
import { verifyLog, type VerifyReport } from './verify.ts';
import { TenantQuery, type QueryContext } from './query.ts';
import type { AnyTableDef } from './table.ts';

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

export const DB_FILE = 'switchboard.db';

/** Set by Store's static block: the handle behind a store, for store/testing.ts only. */
let rawHandle: (store: Store<never>) => Database.Database = () => {
  throw new Error('store not initialised');
};

/** Test-only escape hatch (store/testing.ts re-exports it): the SQLite handle of a store. */
export function databaseOf<T extends Tables>(store: Store<T>): Database.Database {
  return rawHandle(store as unknown as Store<never>);
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
  private readonly statements: Map<string, TableStatements>;
  private readonly reducers: Map<string, ReducerDef<Tables>>;
  private readonly hub: SubscriptionHub;
  private readonly key: NodeKey;
  private readonly clock: () => number;
  private readonly timer: NodeJS.Timeout | null = null;
  private readonly walCheckpointer: WalCheckpointer;
  private readonly flusher: Flusher | null;
  private readonly walFile: string;
  private readonly ids = new CommandIdSource();
  private readonly healthListeners = new Set<(fault: StoreFault | null) => void>();
  private readonly marker: FaultMarker;
  private lastCheckpointSeq: number;
  private previousHandled = false;
  private closed = false;

  /** The SQLite handle: nothing outside store/ touches it (reads go through `query`, writes through reducers). */
  readonly #db: Database.Database;
  /** What `query(tenant)` views share: tables, derived indexes and the statement cache. */
  readonly #queries: QueryContext;

  static {
    rawHandle = (store) => store.#db;
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
    for (const sql of [...LOG_DDL, ...CHECKPOINT_DDL]) db.exec(sql);
    const meta = db.prepare('SELECT value FROM _meta WHERE key = ?');
    const setMeta = db.prepare('INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    const storedVersion = meta.get('schema_version') as { value: string } | undefined;
    if (storedVersion && Number(storedVersion.value) > schema.version) {
      throw new StoreError('invalid_command', `database schema version ${storedVersion.value} is newer than this build (${schema.version})`);
    }
    if (storedVersion && Number(storedVersion.value) < schema.version) {
      // Tables are a view of the log: an older database is upgraded by replaying its
      // log under the new reducers into a new data dir, never by editing rows in place.
      throw new StoreError(
        'invalid_command',
        `database schema version ${storedVersion.value} is older than this build (${schema.version}); in-place migrations are not built: start on a new data dir`,
      );
    }
    const storedNode = (meta.get('node') as { value: string } | undefined)?.value;
    this.node = opts.node ?? storedNode ?? `node-${crypto.randomBytes(4).toString('hex')}`;
    let statements: Map<string, TableStatements> | undefined;
    db.transaction(() => {
      statements = createTables(db, erase(schema));
      setMeta.run('schema_version', String(schema.version));
      if (!storedNode) setMeta.run('node', this.node);
    })();
    this.statements = statements ?? createTables(db, erase(schema));
    this.reducers = new Map(schema.reducers.map((r) => [r.name, r as ReducerDef<Tables>]));
    this.log = new EventLog(db);
    this.checkpoints = new CheckpointTable(db);
    this.key = loadOrCreateNodeKey(path.join(dataDir, 'keys'), this.node);
    this.checkpoints.registerNode(this.key);
    const defs = Object.values(schema.tables) as AnyTableDef[];
    this.#queries = {
      db,
      tables: new Map(defs.map((def) => [def.name, def])),
      derived: new Map((schema.derived ?? []).map((d) => [d.name, d])),
      checkpoints: this.checkpoints,
      node: this.node,
      cache: new Map(),
    };
    this.lastCheckpointSeq = this.checkpoints.lastSeq(this.node);

    const head = this.log.head();
    const applied = Number((meta.get('applied_seq') as { value: string } | undefined)?.value ?? 0);
    if (applied !== head.seq) {
      throw new StoreError('log_inconsistent', `applied_seq ${applied} differs from the log head ${head.seq}: run 'switchboard verify'`);
    }
    this.hub = new SubscriptionHub(onError);
    this.marker = new FaultMarker(dataDir);
    const every = opts.checkpointEvery ?? 1000;
    this.walFile = path.join(dataDir, `${DB_FILE}-wal`);
    this.flusher = this.durability.syncOffLoop ? (opts.flusher ?? walFlusher(this.walFile)) : null;
    const position = Number((meta.get(POSITION_KEY) as { value: string } | undefined)?.value ?? 0);
    this.engine = new ApplyEngine(db, this.log, this.statements, this.reducers, { ...head, position }, {
      ...(this.flusher ? { flusher: this.flusher } : {}),
      clock: this.clock,
      ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
      ...(opts.maxQueued !== undefined ? { maxQueued: opts.maxQueued } : {}),
      onHealth: (fault) => {
        // A checkpoint written inside the rolled-back batch is gone with it.
        if (fault) this.lastCheckpointSeq = this.checkpoints.lastSeq(this.node);
        if (fault) this.marker.record(fault);
        else if (!this.previousFault) this.marker.clear();
        for (const l of this.healthListeners) {
          try {
            l(fault);
          } catch (err) {
            onError(err);
          }
        }
      },
      beforeCommit: (seq, hash) => {
        if (seq - this.lastCheckpointSeq >= every) {
          this.checkpoints.write(signCheckpoint(this.key, seq, hash, this.clock()));
          this.lastCheckpointSeq = seq;
        }
      },
      afterCommit: (batch) => {
        this.hub.dispatch(batch);
        opts.onCommit?.({ commands: batch.size, ms: batch.committedAt - batch.startedAt });
      },
    });
    this.backend = this.engine;
    this.walCheckpointer = new WalCheckpointer({ file: path.join(dataDir, DB_FILE), synchronous: this.durability.synchronous, onError });
    const ms = opts.checkpointMs ?? 5000;
    if (ms > 0) {
      this.timer = setInterval(() => {
        try {
          this.checkpointNow();
        } catch (err) {
          onError(err);
        }
      }, ms);
      this.timer.unref();
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
   * Cluster mode: opens the node's SQLite as `open` does, then runs it on the JetStream log (store/jetstream-log.ts):
   * connects, creates the stream if none exists, and applies what this node has not yet applied from the stream
   * before returning. A bad or unreachable NATS is a StoreError naming `cluster.variable`. The NATS clients are
   * imported here, on this path only: a node without cluster mode never loads them.
   */
  static async openCluster<T extends Tables>(opts: StoreOptions<T> & { cluster: ClusterOptions }): Promise<Store<T>> {
    const store = Store.open(opts);
    try {
      const { JetStreamLog } = await import('./jetstream-log.ts');
      store.cluster = await JetStreamLog.open(store.engine, store.log, opts.cluster, store.onError);
      store.backend = store.cluster;
      return store;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /**
   * A cluster node's data dir opened without the cluster: reads, verify and replay work; a write would fork this
   * copy from the cluster's log, so it is refused.
   */
  clusterCopy(): StoreError {
    return new StoreError(
      'invalid_command',
      `this data dir is a cluster node's copy of the log (applied up to stream message ${this.engine.appliedPosition}): it takes writes only in cluster mode (SWITCHBOARD_CLUSTER_NATS)`,
    );
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
   */
  get health(): StoreFault | null {
    return this.engine.health;
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
    const def = this.reducers.get(reducer);
    if (!def) return Promise.reject(new StoreError('unknown_reducer', `no reducer named ${JSON.stringify(reducer)}`));
    const parsed = def.args.safeParse(args);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ');
      return Promise.reject(new StoreError('invalid_args', `${reducer}: ${msg}`));
    }
    if (!opts.tenant || !opts.caller) {
      return Promise.reject(new StoreError('invalid_command', 'a command needs a tenant and a caller'));
    }
    const id = opts.id ?? this.ids.next();
    if (id.length === 0 || id.length > 200) return Promise.reject(new StoreError('invalid_command', 'command id must be 1–200 characters'));
    let normalized: Json;
    let argsJson: string;
    try {
      argsJson = canonicalJson(parsed.data);
      normalized = JSON.parse(argsJson) as Json;
    } catch (err) {
      return Promise.reject(new StoreError('invalid_args', `${reducer}: args are not JSON (${(err as Error).message})`));
    }
    const command: Command = { id, ts: this.clock(), node: this.node, tenant: opts.tenant, caller: opts.caller, reducer, args: normalized };
    return this.backend.submit(command, argsJson, opts.id === undefined);
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

  get subscriberCount(): number {
    return this.hub.size;
  }

  checkpointNow(): void {
    const { seq, hash } = this.engine.head;
    if (seq <= this.lastCheckpointSeq) return;
    this.checkpoints.write(signCheckpoint(this.key, seq, hash, this.clock()));
    this.lastCheckpointSeq = seq;
  }

  verify(): VerifyReport {
    return verifyLog(this.#db, this.log, this.checkpoints, new Map([[this.node, this.key.publicKeyPem]]));
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
    if (this.timer) clearInterval(this.timer);
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
