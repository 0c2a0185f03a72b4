/**
 * The cluster log backend: NATS JetStream orders the commands of every node; each node applies them to its own
 * SQLite with the same engine as the embedded store (store/engine.ts), so every node holds the same `_events`
 * hash chain, outcomes and tables.
 *
 *   submit ─► outbox ─► publish (one message per batch, ≤ WINDOW in flight) ─► stream SWITCHBOARD_LOG (R3, file)
 *                                                                                   │ ordered consumer, every node
 *   resolve ◄─ receipt of the command's local apply ◄─ ApplyEngine.enqueueOrdered ◄─┘ from stream_seq + 1
 *
 * - Group commit carries over: the commands submitted while the window is full (or in one turn of the event loop)
 *   go out as one message, msgID = the batch's first command id (+ count and digest of the ids when it holds more
 *   than one), so a retried publish of the same batch is deduplicated by the stream (its duplicate window).
 * - Exactly-once apply: each message's stream seq is written to `_meta.stream_seq` in the SQLite transaction that
 *   applies its last command; a restarted node resumes after it, and a command id already in the log (a
 *   re-delivered or re-published message, a retried submit) is not applied again: it returns its recorded outcome.
 * - `submit()` resolves when this node has applied the command (read-your-writes on the submitting node). A command
 *   id this node already applied is answered from its log without publishing.
 * - Durability is JetStream's: a publish is acknowledged once a quorum of the stream's replicas (2 of 3) holds it;
 *   nats-server 2.9 syncs its files on an interval, not per message. A publish not acknowledged within
 *   PUBLISH_DEADLINE_MS (no quorum, NATS down) fails the submit with a retryable `storage_unavailable`: the command
 *   may still be in the log — submitting again with the same command id returns its recorded outcome.
 * - Order: commands of one node keep their submission order unless a publish had to be retried.
 * - Not built yet: catching up from a snapshot when the stream was trimmed (start refuses with `log_inconsistent`
 *   when the stream no longer holds the next message this node needs).
 */
import { hash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { ApplyEngine, Receipt } from './engine.ts';
import { StoreError } from './errors.ts';
import type { Command, EventLog } from './log.ts';
import type { LogBackend } from './log-backend.ts';
import type { Json } from './canonical.ts';

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
}

export const DEFAULT_STREAM = 'SWITCHBOARD_LOG';
const PUBLISH_DEADLINE_MS = 15_000;
/** How long start waits for a usable JetStream (a meta leader, the stream) before it fails. */
const SETUP_MS = 10_000;
/** How often the consumer watchdog compares the stream's last seq with what this node was delivered. */
const WATCH_MS = 1500;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
const MAX_MESSAGE_BYTES = 512 * 1024;
const MAX_MESSAGE_COMMANDS = 1024;
/** Commands read from the stream but not applied yet, past which the consumer waits for the engine. */
const MAX_UNAPPLIED = 8192;

interface Outgoing {
  command: Command;
  argsJson: string;
  encoded: string;
}

interface Waiter {
  resolve: (r: Receipt) => void;
  reject: (e: Error) => void;
}

/** One message: `{"v":1,"c":[[id, ts, node, tenant, caller, reducer, argsJson], …]}` (args kept canonical). */
function encodeCommand(c: Command, argsJson: string): string {
  return JSON.stringify([c.id, c.ts, c.node, c.tenant, c.caller, c.reducer, argsJson]);
}

function decodeMessage(data: Uint8Array): Array<{ command: Command; argsJson: string }> {
  const body = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; c: Array<[string, number, string, string, string, string, string]> };
  if (body.v !== 1 || !Array.isArray(body.c)) throw new Error(`unknown log message version ${String(body.v)}`);
  return body.c.map(([id, ts, node, tenant, caller, reducer, argsJson]) => ({
    command: { id, ts, node, tenant, caller, reducer, args: JSON.parse(argsJson) as Json },
    argsJson,
  }));
}

function messageId(batch: Outgoing[]): string {
  const first = (batch[0] as Outgoing).command.id;
  if (batch.length === 1) return first;
  return `${first}+${batch.length}-${hash('sha256', batch.map((o) => o.command.id).join('\n'), 'hex').slice(0, 16)}`;
}

/**
 * The stream's info, creating the stream when there is none. A cluster that has just started has no JetStream meta
 * leader for a moment: timeouts and "unavailable" answers are retried for SETUP_MS.
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
        });
      }
    } catch (err) {
      const transient = /timeout|unavailable|no responders|503/i.test((err as Error).message);
      if (!transient || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export class JetStreamLog implements LogBackend {
  readonly kind = 'jetstream';
  private readonly outbox: Outgoing[] = [];
  private readonly waiters = new Map<string, Waiter[]>();
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  /** Set when this node stopped applying the log (halt): submits are refused with it. */
  private halted: StoreError | null = null;
  private messages: ConsumerMessages | null = null;
  private consuming: Promise<void> = Promise.resolve();
  /** Stream seq whose commands this node has applied (in memory; `_meta.stream_seq` is the durable one). */
  private applied: number;
  /** The last stream seq handed to the engine (applied or queued). */
  private delivered = 0;
  private readonly progress = new Set<() => void>();
  private watchdog: NodeJS.Timeout | null = null;
  private readonly jsm: Promise<JetStreamManager>;
  private readonly subject: string;
  private readonly window: number;
  /** Settles once the NATS connection closed (after close()). */
  closedPromise: Promise<void> = Promise.resolve();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly engine: ApplyEngine,
    private readonly log: EventLog,
    private readonly stream: string,
    opts: ClusterOptions,
    private readonly onError: (err: unknown) => void,
  ) {
    this.subject = `${stream}.commands`;
    this.window = opts.window ?? 64;
    this.applied = engine.appliedPosition;
    this.jsm = jetstreamManager(nc, { timeout: 5000 });
    this.jsm.catch(() => {});
  }

  /**
   * Connects, makes sure the stream exists, and consumes it from this node's position until it has applied what the
   * stream held at start (so reads are current once the store is returned). Errors name `opts.variable`.
   */
  static async open(engine: ApplyEngine, log: EventLog, opts: ClusterOptions, onError: (err: unknown) => void): Promise<JetStreamLog> {
    const variable = opts.variable ?? 'SWITCHBOARD_CLUSTER_NATS';
    const stream = opts.stream ?? DEFAULT_STREAM;
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: opts.servers, timeout: opts.connectTimeoutMs ?? 5000, maxReconnectAttempts: -1, name: `switchboard` });
    } catch (err) {
      throw new StoreError('storage_unavailable', `${variable}: cannot connect to NATS at ${opts.servers.join(', ')} (${(err as Error).message})`);
    }
    try {
      const info = await ensureStream(nc, stream, opts);
      const next = engine.appliedPosition + 1;
      if (info.state.messages > 0 && info.state.first_seq > next) {
        throw new StoreError(
          'log_inconsistent',
          `${variable}: stream ${stream} starts at message ${info.state.first_seq} but this node has applied up to ${next - 1}; catching up from a snapshot is not built: start on a data dir restored from a node that is current`,
        );
      }
      const self = new JetStreamLog(nc, jetstream(nc, { timeout: 10_000 }), engine, log, stream, opts, onError);
      await self.startConsumer();
      await self.waitApplied(info.state.last_seq);
      return self;
    } catch (err) {
      await nc.close().catch(() => {});
      if (err instanceof StoreError) throw err;
      throw new StoreError('storage_unavailable', `${variable}: NATS at ${opts.servers.join(', ')} has no usable JetStream (${(err as Error).message})`);
    }
  }

  /** The stream seq this node has applied up to. */
  get position(): number {
    return this.applied;
  }

  submit(command: Command, argsJson: string, fresh: boolean): Promise<Receipt> {
    if (this.closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    if (this.halted) return Promise.reject(this.halted);
    if (!fresh) {
      const prior = this.log.outcomeOf(command.id);
      if (prior) return Promise.resolve({ seq: prior.seq, outcome: prior.outcome as Receipt['outcome'], duplicate: true });
    }
    return new Promise<Receipt>((resolve, reject) => {
      const same = this.waiters.get(command.id);
      if (same) {
        // The same id already waits for its apply: answered with that outcome, as a duplicate.
        same.push({ resolve: (r) => resolve({ ...r, duplicate: true }), reject });
        return;
      }
      this.waiters.set(command.id, [{ resolve, reject }]);
      this.outbox.push({ command, argsJson, encoded: encodeCommand(command, argsJson) });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Resolves once this node has applied the stream up to `seq`. */
  waitApplied(seq: number): Promise<void> {
    if (this.applied >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.closed) {
          this.progress.delete(check);
          reject(new StoreError('store_closed', 'the store is closed'));
        } else if (this.applied >= seq) {
          this.progress.delete(check);
          resolve();
        }
      };
      this.progress.add(check);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.messages?.stop();
    if (this.watchdog) clearInterval(this.watchdog);
    const err = new StoreError('store_closed', 'the store closed before the command was applied here: it may still be in the log; submit it again with the same id to learn its outcome', true);
    this.outbox.length = 0;
    for (const [, ws] of this.waiters) for (const w of ws) w.reject(err);
    this.waiters.clear();
    for (const check of [...this.progress]) check();
    this.closedPromise = this.consuming.then(() => this.nc.close()).catch(() => {});
  }

  /** Sends what the outbox holds, one message per batch, while the window has room. */
  private flush(): void {
    this.scheduled = false;
    while (!this.closed && this.inFlight < this.window && this.outbox.length > 0) {
      const batch: Outgoing[] = [];
      let bytes = 16;
      while (this.outbox.length > 0 && batch.length < MAX_MESSAGE_COMMANDS) {
        const next = this.outbox[0] as Outgoing;
        if (batch.length > 0 && bytes + next.encoded.length + 1 > MAX_MESSAGE_BYTES) break;
        bytes += next.encoded.length + 1;
        batch.push(this.outbox.shift() as Outgoing);
      }
      this.inFlight += 1;
      void this.publish(batch).finally(() => {
        this.inFlight -= 1;
        this.flush();
      });
    }
  }

  private async publish(batch: Outgoing[]): Promise<void> {
    const data = `{"v":1,"c":[${batch.map((o) => o.encoded).join(',')}]}`;
    const msgID = messageId(batch);
    const deadline = Date.now() + PUBLISH_DEADLINE_MS;
    let last: unknown;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.js.publish(this.subject, data, { msgID, timeout: Math.max(1000, Math.min(5000, deadline - Date.now())) });
        return; // acknowledged by a quorum: the submitters settle when the consumer applies their commands
      } catch (err) {
        last = err;
        if (this.closed) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (this.closed) return;
    const err = new StoreError(
      'storage_unavailable',
      `the cluster log (NATS JetStream, stream ${this.stream}) did not acknowledge the command (${(last as Error | undefined)?.message ?? 'timeout'}): it may or may not be committed; submit it again with the same id`,
      true,
    );
    for (const o of batch) this.rejectWaiters(o.command.id, err);
  }

  /** An ordered consumer of the stream from the message after the last one handed to the engine. */
  private async openMessages(): Promise<ConsumerMessages> {
    const next = this.delivered + 1;
    const consumer = await this.js.consumers.get(
      this.stream,
      next <= 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next },
    );
    // Short expiry and heartbeat: after a NATS server dies the ordered consumer notices within ~2 s and is recreated
    // from the last seq it delivered (the default, 30 s, would stall this node for a minute).
    const messages = await consumer.consume({ max_messages: 512, expires: 2000, idle_heartbeat: 1000 });
    // The client reports missed heartbeats (its server died, the stream moved) but keeps waiting on the dead
    // subscription: stop it, and startConsumer opens a new one after the last message delivered.
    void (async () => {
      for await (const st of messages.status()) {
        const { type, count } = st as { type: string; count?: number };
        if ((type === 'heartbeats_missed' && (count ?? 0) >= 2) || type === 'consumer_deleted' || type === 'consumer_not_found') {
          messages.stop();
          return;
        }
      }
    })().catch(() => {});
    return messages;
  }

  /**
   * A watchdog beside the client's own heartbeat checks: every WATCH_MS it asks the stream's last seq, and when the
   * stream holds messages past the last one delivered here and nothing was delivered for two checks in a row, the
   * consumer is stopped and opened again (the client sometimes keeps waiting on a subscription a dead server held).
   */
  private watch(): void {
    let stalled = 0;
    let seen = this.delivered;
    let busy = false;
    this.watchdog = setInterval(() => {
      if (busy || this.closed || this.halted) return;
      busy = true;
      void this.jsm
        .then((jsm) => jsm.streams.info(this.stream))
        .then((info) => {
          const behind = info.state.last_seq > this.delivered;
          stalled = behind && this.delivered === seen ? stalled + 1 : 0;
          seen = this.delivered;
          if (stalled >= 2) {
            stalled = 0;
            this.messages?.stop();
          }
        })
        .catch(() => {})
        .finally(() => (busy = false));
    }, WATCH_MS);
    this.watchdog.unref();
  }

  /**
   * Consumes until close. When the ordered consumer gives up (it could not be recreated while the cluster had no
   * leader for the stream), a new one starts after the last message delivered: this node never silently stops.
   */
  private async startConsumer(): Promise<void> {
    this.delivered = this.engine.appliedPosition;
    let messages: ConsumerMessages | null = await this.openMessages();
    this.watch();
    this.consuming = (async () => {
      while (messages && !this.closed && !this.halted) {
        this.messages = messages;
        try {
          await this.apply(messages);
        } catch (err) {
          if (!this.closed) this.onError(err);
        }
        messages = null;
        while (!messages && !this.closed && !this.halted) {
          try {
            messages = await withTimeout(this.openMessages(), 10_000, 'opening a consumer');
          } catch (err) {
            this.onError(new Error(`cluster log: consuming again from message ${this.delivered + 1} failed, retrying (${(err as Error).message})`));
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        if (messages && (this.closed || this.halted)) messages.stop();
      }
    })();
  }

  /** Hands each message's commands to the engine in stream order. */
  private async apply(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.closed || this.halted) break;
      const seq = m.seq;
      if (seq <= this.delivered) continue; // delivered again by a consumer recreated after a reconnect
      this.delivered = seq;
      let commands: Array<{ command: Command; argsJson: string }>;
      try {
        commands = decodeMessage(m.data);
      } catch (err) {
        this.onError(new Error(`log message ${seq} is not a command batch: skipped (${(err as Error).message})`));
        this.advance(seq);
        continue;
      }
      let last: Promise<Receipt> | null = null;
      commands.forEach(({ command, argsJson }, i) => {
        const p = this.engine.enqueueOrdered(command, argsJson, i === commands.length - 1 ? seq : undefined);
        p.then(
          (r) => this.resolveWaiters(command.id, r),
          (err: Error) => {
            this.rejectWaiters(command.id, err);
            if (!this.closed) this.halt(seq, err);
          },
        );
        last = p;
      });
      const done = (last as Promise<Receipt> | null)?.then(
        () => this.advance(seq),
        () => this.advance(seq),
      );
      if (this.engine.pending > MAX_UNAPPLIED && done) await done;
    }
  }

  /**
   * A command of the stream could not be applied here (the batch failed for a reason other than a storage fault,
   * which the engine retries): this node's copy would fork from the others', so it stops consuming and takes no
   * more commands. A restart resumes after the last applied message.
   */
  private halt(seq: number, err: Error): void {
    if (this.halted) return;
    this.halted = new StoreError('storage_failed', `this node stopped applying the cluster log at stream message ${seq} (${err.message}): restart it to resume from message ${this.engine.appliedPosition + 1}`);
    this.onError(this.halted);
    this.messages?.stop();
    for (const [id] of [...this.waiters]) this.rejectWaiters(id, this.halted);
  }

  private advance(seq: number): void {
    if (seq <= this.applied) return;
    this.applied = seq;
    for (const check of [...this.progress]) check();
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
