/**
 * The cluster log backend: NATS JetStream orders the commands of every node; each node applies them to its own
 * SQLite with the same engine as the embedded store (store/engine.ts), so every node holds the same `_events`
 * hash chain, outcomes and tables.
 *
 *   submit ─► Publisher (store/jetstream-publisher.ts) ─► stream SWITCHBOARD_LOG (R3, file)
 *                                                              │ StreamConsumer (store/jetstream-consumer.ts),
 *   resolve ◄─ receipt of the command's local apply ◄──────────┘ every node, in order, from stream_seq + 1
 *
 * This module connects, makes sure the stream exists, and joins the two halves: the submitters waiting for their
 * command's local apply (`waiters`, by command id), answered by the consumer's receipts or refused by the
 * publisher's failures, a halt or close.
 * - Group commit carries over: the commands submitted while the window is full (or in one turn of the event loop)
 *   go out as one message, deduplicated by the stream by its message id.
 * - Exactly-once apply: each message's stream seq is written to `_meta.stream_seq` in the SQLite transaction that
 *   applies its last command; a restarted node resumes after it, and a command id already in the log (a
 *   re-delivered or re-published message, a retried submit) is not applied again: it returns its recorded outcome.
 * - `submit()` resolves when this node has applied the command (read-your-writes on the submitting node). A command
 *   id this node already applied is answered from its log without publishing.
 * - Durability is JetStream's: a publish is acknowledged once a quorum of the stream's replicas (2 of 3) holds it;
 *   nats-server 2.9 syncs its files on an interval, not per message (2.10+ can: `sync_interval: always`, which
 *   `cluster up` sets when the server takes it). With 2.9, a majority of the servers killed within a few ms of a write
 *   may come back without it: the stream then ends before what nodes applied, and those nodes halt with
 *   `log_inconsistent` (store/jetstream-consumer.ts) rather than apply reused message numbers. A publish not acknowledged within
 *   PUBLISH_DEADLINE_MS (NATS down) fails the submit with a retryable `storage_unavailable`: the command may still
 *   be in the log — submitting again with the same command id returns its recorded outcome.
 * - Quorum loss (store/jetstream-health.ts): once the stream is known to have no leader, publishes stop retrying and
 *   their submitters, and every new submit, get a retryable `log_unavailable` at once; `fault` (Store.health) says
 *   so until the stream has a leader again.
 * - Order: commands of one node keep their submission order unless a publish had to be retried.
 * - A trimmed stream (maxAgeMs / maxBytes): a node with an empty data dir starts from the latest snapshot
 *   (store/open-cluster.ts); a node whose database is behind the stream's first message is refused
 *   (`log_inconsistent`).
 */
import { connectNats } from './nats-connect.ts';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { ApplyEngine, Receipt, StoreFault } from './engine.ts';
import { StoreError } from './errors.ts';
import type { Command, EventLog } from './log.ts';
import type { LogBackend } from './log-backend.ts';
import { Publisher } from './jetstream-publisher.ts';
import { StreamConsumer } from './jetstream-consumer.ts';
import { LogHealth } from './jetstream-health.ts';

export interface ClusterOptions {
  /** NATS server URLs (any servers of the cluster; the client learns the others). */
  servers: string[];
  /** Stream name (default SWITCHBOARD_LOG); its subject is `<name>.commands`. */
  stream?: string;
  /** Replicas of a stream this node creates (default 3: a 3-server cluster; 1 for a single server). */
  replicas?: number;
  /** Publishes in flight at once (default 64). */
  window?: number;
  /** How long the first connection may take before start fails (default 5000 ms). */
  connectTimeoutMs?: number;
  /** The variable the servers came from, named in errors (default SWITCHBOARD_CLUSTER_NATS). */
  variable?: string;
  /** Credentials (store/nats-connect.ts): user/password or a token, or a creds file's content (JWT + nkey seed). */
  auth?: { user?: string; pass?: string; token?: string; creds?: Uint8Array; variable?: string };
  /** Limits of a stream this node creates (0 / unset = unlimited): older messages are trimmed past them. */
  maxAgeMs?: number;
  maxBytes?: number;
  /** Publish a snapshot of the database every N applied stream messages (store/jetstream-snapshots.ts); 0 = never. */
  snapshotEvery?: number;
  /** TLS: a CA bundle to trust, and a client certificate and key for mutual TLS (PEM file paths). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; variable?: string };
}

export const DEFAULT_STREAM = 'SWITCHBOARD_LOG';
const PUBLISH_DEADLINE_MS = 15_000;
/** How long start waits for a usable JetStream (a meta leader, the stream) before it fails. */
const SETUP_MS = 10_000;
/** Answers of a NATS cluster that is still forming (no meta leader yet, or peers not all known to it). */
export const TRANSIENT_SETUP = /timeout|unavailable|no responders|503|no suitable peers/i;

interface Waiter {
  resolve: (r: Receipt) => void;
  reject: (e: Error) => void;
}

/**
 * The stream's info, creating the stream when there is none. A cluster that has just started has no JetStream meta
 * leader for a moment, and then a leader that does not yet know every peer (an R3 stream has "no suitable peers for
 * placement"): timeouts, "unavailable" and placement answers are retried for SETUP_MS.
 */
async function ensureStream(nc: NatsConnection, stream: string, opts: ClusterOptions): Promise<StreamInfo> {
  const deadline = Date.now() + SETUP_MS;
  for (;;) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: opts.connectTimeoutMs ?? 5000 });
      try {
        return await jsm.streams.info(stream);
      } catch (err) {
        if (!/not found/i.test((err as Error).message)) throw err;
        return await jsm.streams.add({
          name: stream,
          subjects: [`${stream}.commands`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          num_replicas: opts.replicas ?? 3,
          duplicate_window: 120_000_000_000, // 2 min, in ns
          ...(opts.maxAgeMs ? { max_age: opts.maxAgeMs * 1_000_000 } : {}),
          ...(opts.maxBytes ? { max_bytes: opts.maxBytes } : {}),
        });
      }
    } catch (err) {
      const transient = TRANSIENT_SETUP.test((err as Error).message);
      if (!transient || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export class JetStreamLog implements LogBackend {
  readonly kind = 'jetstream';
  private readonly waiters = new Map<string, Waiter[]>();
  private closed = false;
  /** Set when this node stopped applying the log (halt): submits are refused with it. */
  private halted: StoreError | null = null;
  private readonly publisher: Publisher;
  private readonly consumer: StreamConsumer;
  private readonly health: LogHealth;
  private readonly replicas: number;
  private readonly jsm: Promise<JetStreamManager>;
  /** Settles once the NATS connection closed (after close()). */
  closedPromise: Promise<void> = Promise.resolve();

  private constructor(
    private readonly nc: NatsConnection,
    engine: ApplyEngine,
    private readonly log: EventLog,
    private readonly stream: string,
    opts: ClusterOptions,
    private readonly onError: (err: unknown) => void,
    onHealth: (fault: StoreFault | null) => void,
  ) {
    const js = jetstream(nc, { timeout: 10_000 });
    this.jsm = jetstreamManager(nc, { timeout: 5000 });
    this.jsm.catch(() => {});
    const probe = jetstreamManager(nc, { timeout: 1500 });
    probe.catch(() => {});
    this.replicas = opts.replicas ?? 3;
    this.health = new LogHealth({ jsm: probe, stream, servers: opts.servers, onChange: onHealth, waiting: () => this.waiters.size });
    this.publisher = new Publisher({
      js,
      subject: `${stream}.commands`,
      window: opts.window ?? 64,
      deadlineMs: PUBLISH_DEADLINE_MS,
      onFailed: (ids, last) => {
        const fault = this.health.fault;
        const err = new StoreError(
          fault ? 'log_unavailable' : 'storage_unavailable',
          `the cluster log (NATS JetStream, stream ${this.stream}) did not acknowledge the command (${fault ? fault.reason : ((last as Error | undefined)?.message ?? 'timeout')}): it may or may not be committed; submit it again with the same id`,
          true,
        );
        for (const id of ids) this.rejectWaiters(id, err);
      },
      onAttempt: (ok) => (ok ? this.health.acknowledged() : this.health.failed()),
      unavailable: () => this.health.fault !== null,
    });
    this.consumer = new StreamConsumer({
      js,
      jsm: this.jsm,
      stream,
      engine,
      onError,
      onApplied: (id, r) => this.resolveWaiters(id, r),
      onHalt: (id, seq, err) => {
        this.rejectWaiters(id, err);
        this.halt(new StoreError('storage_failed', `this node stopped applying the cluster log at stream message ${seq} (${err.message}): restart it to resume from message ${engine.appliedPosition + 1}`));
      },
      onAdvance: (seq) => this.maybeSnapshot(seq, opts.snapshotEvery ?? 0),
      onRegressed: (detail) =>
        this.halt(
          new StoreError(
            'log_inconsistent',
            `stream ${stream} ${detail}: the NATS servers lost messages they had acknowledged (a majority of them stopped before writing them to disk; nats-server < 2.10 cannot sync every write) and number new messages over them. This node's copy holds events the log no longer has, so it stopped applying the log: compare its head with the other nodes', then wipe its data dir to rebuild it from the stream`,
          ),
        ),
    });
  }

  /**
   * Connects, makes sure the stream exists, and consumes it from this node's position until it has applied what the
   * stream held at start (so reads are current once the store is returned). Errors name `opts.variable`.
   */
  static async open(
    engine: ApplyEngine,
    log: EventLog,
    opts: ClusterOptions,
    onError: (err: unknown) => void,
    onHealth: (fault: StoreFault | null) => void,
  ): Promise<JetStreamLog> {
    const variable = opts.variable ?? 'SWITCHBOARD_CLUSTER_NATS';
    const stream = opts.stream ?? DEFAULT_STREAM;
    const nc = await connectNats(opts);
    try {
      const info = await ensureStream(nc, stream, opts);
      const next = engine.appliedPosition + 1;
      if (info.state.messages > 0 && info.state.first_seq > next) {
        throw new StoreError(
          'log_inconsistent',
          `${variable}: stream ${stream} starts at message ${info.state.first_seq} but this node has applied up to ${next - 1}: start it on an empty data dir to restore the latest snapshot (or a copy of a current node's)`,
        );
      }
      const self = new JetStreamLog(nc, engine, log, stream, opts, onError, onHealth);
      await self.consumer.start();
      await self.consumer.waitApplied(info.state.last_seq);
      return self;
    } catch (err) {
      await nc.close().catch(() => {});
      if (err instanceof StoreError) throw err;
      throw new StoreError('storage_unavailable', `${variable}: NATS at ${opts.servers.join(', ')} has no usable JetStream (${(err as Error).message})`);
    }
  }

  /** The stream seq this node has applied up to. */
  get position(): number {
    return this.consumer.position;
  }

  /** What else runs on this connection and stops with it (store/open-cluster.ts: the attestations). */
  readonly companions: Array<{ stop(): void }> = [];

  /** Publishes a snapshot (set by store/open-cluster.ts); run every `snapshotEvery` applied messages. */
  snapshotter: (() => Promise<unknown>) | null = null;
  private snapshotAt = 0;
  private snapshotting = false;

  private maybeSnapshot(seq: number, every: number): void {
    if (every <= 0 || !this.snapshotter || this.snapshotting || this.closed) return;
    if (this.snapshotAt === 0) this.snapshotAt = seq;
    if (seq - this.snapshotAt < every) return;
    this.snapshotting = true;
    this.snapshotAt = seq;
    void this.snapshotter()
      .catch((err: unknown) => this.onError(new Error(`cluster log: publishing a snapshot failed (${(err as Error).message})`)))
      .finally(() => (this.snapshotting = false));
  }

  /** The NATS connection (snapshots use it) and the log stream's name. */
  get connection(): { nc: NatsConnection; stream: string; replicas: number } {
    return { nc: this.nc, stream: this.stream, replicas: this.replicas };
  }

  /** Null while the log takes commands; `log_unavailable` while it has no quorum (store/jetstream-health.ts). */
  get fault(): StoreFault | null {
    return this.halted || this.closed ? null : this.health.fault;
  }

  submit(command: Command, argsJson: string, fresh: boolean): Promise<Receipt> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    if (this.halted) return Promise.reject(this.halted);
    if (!fresh) {
      const prior = this.log.outcomeOf(command.id);
      if (prior) return Promise.resolve({ seq: prior.seq, outcome: prior.outcome as Receipt['outcome'], duplicate: true });
    }
    const fault = this.health.fault;
    if (fault) {
      return Promise.reject(new StoreError('log_unavailable', `the cluster log is unavailable (${fault.reason}): the command was not submitted; retry later`, true));
    }
    return new Promise<Receipt>((resolve, reject) => {
      const same = this.waiters.get(command.id);
      if (same) {
        // The same id already waits for its apply: answered with that outcome, as a duplicate.
        same.push({ resolve: (r) => resolve({ ...r, duplicate: true }), reject });
        return;
      }
      this.waiters.set(command.id, [{ resolve, reject }]);
      this.publisher.enqueue(command, argsJson);
    });
  }

  /** Resolves once this node has applied the stream up to `seq`. */
  waitApplied(seq: number): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    return this.consumer.waitApplied(seq);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.companions) c.stop();
    this.publisher.close();
    this.health.stop();
    const stopped = this.consumer.stop();
    const err = new StoreError('store_closed', 'the store closed before the command was applied here: it may still be in the log; submit it again with the same id to learn its outcome', true);
    for (const [, ws] of this.waiters) for (const w of ws) w.reject(err);
    this.waiters.clear();
    this.closedPromise = stopped.then(() => this.nc.close()).catch(() => {});
  }

  /**
   * A command of the stream could not be applied here (the batch failed for a reason other than a storage fault,
   * which the engine retries): this node's copy would fork from the others', so it stops consuming and takes no
   * more commands. A restart resumes after the last applied message.
   */
  private halt(reason: StoreError): void {
    if (this.halted || this.closed) return;
    this.halted = reason;
    this.onError(this.halted);
    void this.consumer.stop();
    for (const [id] of [...this.waiters]) this.rejectWaiters(id, this.halted);
  }

  private resolveWaiters(id: string, r: Receipt): void {
    const ws = this.waiters.get(id);
    if (!ws) return;
    this.waiters.delete(id);
    for (const w of ws) w.resolve(r);
  }

  private rejectWaiters(id: string, err: Error): void {
    const ws = this.waiters.get(id);
    if (!ws) return;
    this.waiters.delete(id);
    for (const w of ws) w.reject(err);
  }
}
