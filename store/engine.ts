/**
 * The apply loop. Submitted commands queue up; one batch at a time is applied
 * strictly in order inside one SQLite transaction (group commit): each command
 * applied all or nothing (store/applier.ts), its event appended with the next
 * seq and chained hash, `applied_seq` advanced. Submitters' promises settle only after COMMIT returns,
 * i.e. once the batch is durable under the configured synchronous mode.
 *
 *   submit ─► queue ─► [BEGIN · (reducer · event)* · changes · applied_seq · COMMIT] ─► resolve ─► deltas
 *
 * (`changes`: the batch's row changes, journalled for resuming subscriptions — store/changes.ts.)
 *
 * Each event's hash chains it to the one before:
 *   hash = sha256(prevHash ‖ sha256(canonicalJson({ command, outcome })))   (both digests hex; log.ts chainHash)
 *
 * A reducer rejection (ctx.fail, a bug, an invalid row) undoes that command's
 * own row changes only (recorded as it wrote them and reverted newest first —
 * no savepoint; store/applier.ts); it is logged like any outcome. A storage fault (disk full, I/O error,
 * busy: `SQLITE_FULL`, `SQLITE_IOERR*`, `SQLITE_BUSY`) aborts the whole batch —
 * SQLite rolls it back, nothing of it is written — and the store turns
 * unhealthy (`health`, `onHealth`): the batch goes back to the head of the
 * queue and is retried every `retryMs` until it commits. Its submitters wait
 * and get their outcome once it commits. The retry applies the same commands
 * at the same seqs onto the same committed head (seq, hash and applied_seq in
 * memory advance only after COMMIT returned; tables hold no state outside
 * SQLite), so the outcomes, ids and hash chain are exactly those the failed
 * attempt would have written. While unhealthy new commands queue behind it up
 * to `maxQueued`; past that, and for anything still queued at close(), the
 * submitter gets a retryable StoreError `storage_unavailable` (never committed).
 * Any other error aborting a batch (a bug, corruption) is not retried: its
 * submitters get `storage_failed`.
 *
 * The engine is also the embedded log backend (store/log-backend.ts): its queue
 * is the order. In cluster mode the JetStream log (store/jetstream-log.ts) feeds
 * it the stream's commands instead (`enqueueOrdered`, never refused for a full
 * queue, duplicate ids always looked up), each message's stream seq recorded as
 * `_meta.stream_seq` in the transaction that applies its last command.
 */
import type Database from 'better-sqlite3';
import { CommandApplier } from './applier.ts';
import type { RowChange, TableStatements } from './accessor.ts';
import { canonicalJson, type Json } from './canonical.ts';
import { StoreError } from './errors.ts';
import { chainHash, commandBodyFrom, type Command, type EventLog, type Outcome } from './log.ts';
import type { ReducerDef, Tables } from './reducer.ts';
import type { Flusher } from './wal-sync.ts';
import type { LogBackend } from './log-backend.ts';

/**
 * What `submit` resolves with. `R` is the reducer's result type where the caller submitted by a typed handle
 * (`ResultOf<typeof handle>`): the logged outcome, with `result` typed (absent for a reducer that returns nothing).
 */
export interface Receipt<R = Json | undefined> {
  seq: number;
  outcome: { ok: true; result: R } | { ok: false; error: { code: string; message: string } };
  /** True when this command id had already been applied: the recorded outcome is returned. */
  duplicate: boolean;
}

/** The log's outcome as a receipt types it (`result` reads undefined for a reducer that returns nothing; the object is the logged one). */
function asReceiptOutcome(o: Outcome): Receipt['outcome'] {
  return o as Receipt['outcome'];
}

export interface CommittedBatch {
  /** Changes of each successfully applied command, in commit order. */
  commands: Array<{ seq: number; changes: RowChange[] }>;
  lastSeq: number;
  lastHash: string;
  /** performance.now() when COMMIT returned (delivery metadata for subscribers; never in the log). */
  committedAt: number;
  /** performance.now() when the batch started applying (for commit latency metrics). */
  startedAt: number;
  /** Commands in the batch, applied or rejected. */
  size: number;
  /** Cluster mode: the external log position this batch recorded (absent when it did not move). */
  position?: number;
}

interface Pending {
  command: Command;
  /** canonicalJson(command.args), computed once at submit. */
  argsJson: string;
  /**
   * The id was minted by this store (uuid v7) rather than chosen by the caller: it cannot be in the log
   * already, so the duplicate lookup is skipped (the log's UNIQUE id still guards it).
   */
  fresh: boolean;
  /**
   * Cluster mode only: the position (stream seq) of the log message this command is the last of. The batch that
   * applies it records the position in `_meta` in the same transaction (exactly-once apply after a crash).
   */
  position?: number;
  resolve: (r: Receipt) => void;
  reject: (e: Error) => void;
  waiters?: Array<{ resolve: (r: Receipt) => void; reject: (e: Error) => void }>;
}

export interface EngineHooks {
  /** Called inside the batch transaction after its last event, e.g. to write a checkpoint. */
  beforeCommit?: (lastSeq: number, lastHash: string) => void;
  /** Called inside the batch transaction with its row changes (the change journal, store/changes.ts). */
  journal?: (commands: CommittedBatch['commands'], lastSeq: number) => void;
  /** Called once the batch is durable, before submitters are resolved. Must not throw. */
  afterCommit?: (batch: CommittedBatch) => void;
  /** fsync off the event loop (wal-sync.ts): batches settle once it returns. Absent: COMMIT itself was durable. */
  flusher?: Flusher;
  /** The store turned unhealthy (a fault) or healthy again (null). Must not throw. */
  onHealth?: (fault: StoreFault | null) => void;
  /** How often a batch that hit a storage fault is retried, ms (default 1000). */
  retryMs?: number;
  /** Commands allowed to wait while unhealthy; beyond, submit is refused (default 20,000). */
  maxQueued?: number;
  /** Wall clock for `since` (default Date.now). */
  clock?: () => number;
}

/** Why the store cannot commit now (disk full, I/O error); null when healthy. */
export interface StoreFault {
  /** `disk_full` | `io_error` | `busy`; cluster mode: `log_unavailable` (no quorum: store/jetstream-health.ts). */
  kind: 'disk_full' | 'io_error' | 'busy' | 'log_unavailable';
  /** SQLite's error code and message, e.g. `SQLITE_FULL: database or disk is full` (or why the log is unavailable). */
  reason: string;
  /** Wall-clock ms of the first failed attempt. */
  since: number;
  /** Commands waiting for the fault to clear. */
  waiting: number;
}

/** The SQLite codes of a storage fault that may clear by itself (space freed, device back, lock released). */
export function faultKind(err: unknown): StoreFault['kind'] | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (code === 'SQLITE_FULL') return 'disk_full';
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') return 'io_error';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return 'busy';
  return null;
}

interface Committed {
  batch: Pending[];
  receipts: Receipt[];
  committed: CommittedBatch;
}

const MAX_BATCH = 2048;

/** `_meta` key of the position in an external log (the JetStream stream seq) applied up to; absent when embedded. */
export const POSITION_KEY = 'stream_seq';

export class ApplyEngine implements LogBackend {
  readonly kind = 'embedded';
  private queue: Pending[] = [];
  private inQueue = new Map<string, Pending>();
  private scheduled = false;
  private closed = false;
  /** Committed batches waiting for the next fsync, and those the fsync in flight covers. */
  private unsynced: Committed[] = [];
  private syncing: Committed[] | null = null;
  /** Set when an fsync failed: the store accepts nothing more. */
  private failure: StoreError | null = null;
  /** Set while a storage fault blocks commits: the queue's head is the failed batch, retried by `retryTimer`. */
  private fault: StoreFault | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private seq: number;
  private hash: string;
  /** Position in an external ordered log applied up to (cluster mode); 0 when embedded. */
  private position: number;
  private setPosition: Database.Statement | null = null;
  private readonly setApplied: Database.Statement;
  private readonly applier: CommandApplier;
  private readonly runBatch: (batch: Pending[], receipts: Receipt[], committed: CommittedBatch) => void;

  constructor(
    private readonly db: Database.Database,
    private readonly log: EventLog,
    statements: ReadonlyMap<string, TableStatements>,
    reducers: ReadonlyMap<string, ReducerDef<Tables>>,
    head: { seq: number; hash: string; position?: number },
    private readonly hooks: EngineHooks = {},
  ) {
    this.seq = head.seq;
    this.hash = head.hash;
    this.position = head.position ?? 0;
    this.applier = new CommandApplier(statements, reducers);
    this.runBatch = db.transaction((batch: Pending[], receipts: Receipt[], committed: CommittedBatch) => this.applyInTransaction(batch, receipts, committed));
    this.setApplied = db.prepare(`INSERT INTO _meta (key, value) VALUES ('applied_seq', ?)
      ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.hash };
  }

  /** The external log position applied up to (cluster mode: the stream seq); 0 when embedded. */
  get appliedPosition(): number {
    return this.position;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** The storage fault blocking commits, or null when healthy. */
  get health(): StoreFault | null {
    return this.fault && { ...this.fault, waiting: this.queue.length };
  }

  submit(command: Command, argsJson = canonicalJson(command.args), fresh = false): Promise<Receipt> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Receipt>((resolve, reject) => {
      const same = this.inQueue.get(command.id);
      if (same) {
        (same.waiters ??= []).push({ resolve, reject });
        return;
      }
      if (this.fault && this.queue.length >= (this.hooks.maxQueued ?? 20_000)) {
        reject(this.unavailable(`${this.queue.length} commands already wait`));
        return;
      }
      const p: Pending = { command, argsJson, fresh, resolve, reject };
      this.queue.push(p);
      this.inQueue.set(command.id, p);
      if (!this.scheduled && !this.fault) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  /**
   * Cluster mode: a command read from the ordered log, applied in the order given (fresh = false: a command id
   * already in the log returns its recorded outcome). Never refused for a full queue: the log has it already.
   * `position`, on a message's last command, is recorded with the batch that applies it.
   */
  enqueueOrdered(command: Command, argsJson: string, position?: number): Promise<Receipt> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Receipt>((resolve, reject) => {
      const same = this.inQueue.get(command.id);
      if (same) {
        (same.waiters ??= []).push({ resolve, reject });
        return; // its position (if any) is covered by a later message's: a re-delivery dedupes by id
      }
      const p: Pending = { command, argsJson, fresh: false, resolve, reject, ...(position !== undefined ? { position } : {}) };
      this.queue.push(p);
      this.inQueue.set(command.id, p);
      if (!this.scheduled && !this.fault) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  /** Applies everything queued now (also used by close()); stops at a storage fault, leaving the rest queued. */
  drain(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      // The batch leaves the queue only once applied (a subscriber may queue more behind it meanwhile).
      const n = Math.min(MAX_BATCH, this.queue.length);
      if (!this.applyBatch(this.queue.slice(0, n))) return;
      this.queue.splice(0, n);
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.drain(); // one last attempt when a fault is pending
    this.closed = true;
    if (this.fault) {
      // Still unhealthy: nothing queued was committed, and now never will be by this process.
      const err = new StoreError('storage_unavailable', `the store closed while it could not write (${this.fault.reason}): not committed`, true);
      for (const p of this.queue.splice(0)) {
        this.inQueue.delete(p.command.id);
        this.settle(p, undefined, err);
      }
    }
    // What the fsync in flight and the queue behind it cover is made durable here, blocking, and settled.
    const waiting = [...(this.syncing ?? []), ...this.unsynced.splice(0)];
    this.syncing = null;
    if (waiting.length === 0 || !this.hooks.flusher || this.failure) return;
    try {
      this.hooks.flusher.flushSync();
    } catch (err) {
      return this.syncFailed(waiting, err as Error);
    }
    for (const c of waiting) this.finish(c);
  }

  /**
   * Applies one batch (the queue's first `batch.length` commands). Returns false when a storage fault left it
   * uncommitted: it stays at the head of the queue and is retried.
   */
  private applyBatch(batch: Pending[]): boolean {
    const receipts: Receipt[] = [];
    const committed: CommittedBatch = { commands: [], lastSeq: this.seq, lastHash: this.hash, committedAt: 0, startedAt: performance.now(), size: batch.length };
    try {
      this.runBatch(batch, receipts, committed);
    } catch (err) {
      // better-sqlite3 has rolled the transaction back; make sure, since a failed ROLLBACK would leave it open.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // Reported below with the batch's own error; the next BEGIN fails loudly if it is still open.
        }
      }
      const e = err as { code?: string; message?: string };
      const kind = faultKind(err);
      if (kind) {
        this.enterFault(kind, `${e.code ?? ''}: ${e.message ?? ''}`);
        return false;
      }
      const failure = new StoreError('storage_failed', `batch not committed: ${e.code ?? ''} ${e.message ?? ''}`.trim(), true);
      for (const p of batch) {
        this.inQueue.delete(p.command.id);
        this.settle(p, undefined, failure);
      }
      return true;
    }
    this.seq = committed.lastSeq;
    this.hash = committed.lastHash;
    if (committed.position !== undefined) this.position = committed.position;
    if (this.fault) this.leaveFault();
    const done: Committed = { batch, receipts, committed };
    if (this.hooks.flusher) {
      this.unsynced.push(done);
      this.startSync();
    } else this.finish(done);
    return true;
  }

  private enterFault(kind: StoreFault['kind'], reason: string): void {
    const first = this.fault === null;
    if (first) this.fault = { kind, reason, since: (this.hooks.clock ?? Date.now)(), waiting: 0 };
    else Object.assign(this.fault as StoreFault, { kind, reason });
    if (first) this.notify();
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.drain();
    }, this.hooks.retryMs ?? 1000);
    this.retryTimer.unref();
  }

  private leaveFault(): void {
    this.fault = null;
    this.notify();
    // What queued up behind the fault is applied on the next turn of the loop.
    if (!this.scheduled && !this.closed) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private notify(): void {
    try {
      this.hooks.onHealth?.(this.health);
    } catch {
      // onHealth must not throw; the apply loop goes on either way.
    }
  }

  private unavailable(detail: string): StoreError {
    return new StoreError('storage_unavailable', `the store cannot write (${this.fault?.reason ?? 'storage fault'}): ${detail}; not committed, retry later`, true);
  }

  /** One fsync at a time, covering every batch committed before it started. */
  private startSync(): void {
    const flusher = this.hooks.flusher;
    if (!flusher || this.syncing || this.unsynced.length === 0 || this.failure) return;
    const covered = this.unsynced.splice(0);
    this.syncing = covered;
    flusher.flush((err) => {
      if (this.syncing !== covered) return; // close() synced and settled them already
      this.syncing = null;
      if (err) return this.syncFailed([...covered, ...this.unsynced.splice(0)], err);
      for (const c of covered) this.finish(c);
      this.startSync();
    });
  }

  private syncFailed(waiting: Committed[], err: Error): void {
    this.failure = new StoreError('storage_failed', `fsync of the log failed (${(err as { code?: string }).code ?? err.message}): the store stopped; restart the gateway`, false);
    for (const c of waiting) {
      for (const p of c.batch) {
        this.inQueue.delete(p.command.id);
        this.settle(p, undefined, this.failure);
      }
    }
  }

  /** The batch is durable: deltas, then its submitters. */
  private finish({ batch, receipts, committed }: Committed): void {
    committed.committedAt = performance.now();
    try {
      this.hooks.afterCommit?.(committed);
    } catch {
      // afterCommit must not throw; a subscriber error never un-commits a batch.
    }
    batch.forEach((p, i) => {
      this.inQueue.delete(p.command.id);
      this.settle(p, receipts[i]);
    });
  }

  /** The body of the batch transaction; results land in `receipts` and `committed`. */
  private applyInTransaction(batch: Pending[], receipts: Receipt[], committed: CommittedBatch): void {
    let seq = this.seq;
    let hash = this.hash;
    let position = this.position;
    for (const p of batch) {
      if (p.position !== undefined && p.position > position) position = p.position;
      const prior = p.fresh ? undefined : this.log.outcomeOf(p.command.id);
      if (prior) {
        receipts.push({ seq: prior.seq, outcome: asReceiptOutcome(prior.outcome), duplicate: true });
        continue;
      }
      seq += 1;
      const changes: RowChange[] = [];
      const outcome = this.applier.apply(p.command, seq, changes);
      const outcomeJson = canonicalJson(outcome);
      const prevHash = hash;
      hash = chainHash(prevHash, commandBodyFrom(p.command, p.argsJson, outcomeJson));
      this.log.appendRaw(p.command, seq, p.argsJson, outcomeJson, prevHash, hash);
      receipts.push({ seq, outcome: asReceiptOutcome(outcome), duplicate: false });
      if (outcome.ok && changes.length > 0) committed.commands.push({ seq, changes });
    }
    if (seq !== this.seq) {
      this.setApplied.run(String(seq));
      this.hooks.journal?.(committed.commands, seq);
      this.hooks.beforeCommit?.(seq, hash);
    }
    if (position !== this.position) {
      this.setPosition ??= this.db.prepare(`INSERT INTO _meta (key, value) VALUES ('${POSITION_KEY}', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
      this.setPosition.run(String(position));
      committed.position = position;
    }
    committed.lastSeq = seq;
    committed.lastHash = hash;
  }

  private settle(p: Pending, receipt: Receipt | undefined, err?: Error): void {
    for (const w of p.waiters ?? []) {
      if (receipt) w.resolve({ ...receipt, duplicate: true });
      else w.reject(err ?? new Error('not committed'));
    }
    p.waiters = undefined;
    if (receipt) p.resolve(receipt);
    else p.reject(err ?? new Error('not committed'));
  }
}
