/**
 * The consuming half of the cluster log (store/jetstream-log.ts): every node reads the whole stream in order and
 * hands each message's commands to its apply engine, with the message's stream seq as the position recorded in the
 * transaction that applies its last command (exactly-once apply after a crash: store/engine.ts).
 *
 *   stream ─► ordered consumer (from applied + 1) ─► decode ─► ApplyEngine.enqueueOrdered ─► receipts
 *                    ▲                                                                     └─► onApplied / advance
 *                    └── reopened after the last delivered message when it stops: missed heartbeats (its server
 *                        died), the consumer deleted, or the watchdog saw the stream move on without it
 *
 * - `delivered` = the last stream seq handed to the engine; `applied` = the last one whose commands are applied.
 * - A message delivered again (a consumer recreated after a reconnect) is skipped by seq; a command id already in
 *   the log is answered by the engine with its recorded outcome, never applied twice.
 * - A command the engine could not apply (not a storage fault, which the engine retries) halts the consumer: this
 *   node's copy would fork from the others' (`onHalt`).
 * - The NATS servers may lose messages they had acknowledged — a majority of them killed before writing them to disk
 *   (nats-server < 2.10 cannot sync every write) — and then give their numbers to other messages. The watchdog sees
 *   it: the stream holds another message at the seq this node delivered last (its first command id differs), or the
 *   stream stays shorter than that seq for REGRESSED_CHECKS checks (a new stream leader is briefly behind after an
 *   election; a lost message never comes back). This node's copy then holds events the log no longer has, so it
 *   halts (`onRegressed`) instead of skipping the reused numbers.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { ApplyEngine, Receipt } from './engine.ts';
import { StoreError } from './errors.ts';
import type { Json } from './canonical.ts';
import type { Command } from './log.ts';

/** How often the consumer watchdog compares the stream's last seq with what this node was delivered. */
const WATCH_MS = 1500;
/** Watchdog checks in a row that see the stream end before the last message delivered here: it lost messages. */
const REGRESSED_CHECKS = 5;
/** Commands read from the stream but not applied yet, past which the consumer waits for the engine. */
const MAX_UNAPPLIED = 8192;

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A log message's commands (the format is store/jetstream-publisher.ts's). */
export function decodeMessage(data: Uint8Array): Array<{ command: Command; argsJson: string }> {
  const body = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; c: Array<[string, number, string, string, string, string, string]> };
  if (body.v !== 1 || !Array.isArray(body.c)) throw new Error(`unknown log message version ${String(body.v)}`);
  return body.c.map(([id, ts, node, tenant, caller, reducer, argsJson]) => ({
    command: { id, ts, node, tenant, caller, reducer, args: JSON.parse(argsJson) as Json },
    argsJson,
  }));
}

/** The first command id of a log message, or null when it is not a command batch. */
function firstCommandId(data: Uint8Array): string | null {
  const raw = /^\{"v":1,"c":\[\[("(?:[^"\\]|\\.)*")/.exec(Buffer.from(data.subarray(0, 1024)).toString('utf8'))?.[1];
  try {
    return raw === undefined ? null : (JSON.parse(raw) as string);
  } catch {
    return null;
  }
}

export interface ConsumerOptions {
  js: JetStreamClient;
  jsm: Promise<JetStreamManager>;
  stream: string;
  engine: ApplyEngine;
  onError: (err: unknown) => void;
  /** A command of the stream was applied here (its receipt). */
  onApplied: (id: string, receipt: Receipt) => void;
  /** A command could not be applied here; the consumer halts after this (store/jetstream-log.ts refuses submits). */
  onHalt: (id: string, seq: number, err: Error) => void;
  /** This node has applied the stream up to `seq`. */
  onAdvance?: (seq: number) => void;
  /** The stream now ends at `last`, before `delivered`, the last message handed to this node (see the header). */
  onRegressed: (detail: string) => void;
}

export class StreamConsumer {
  private messages: ConsumerMessages | null = null;
  private consuming: Promise<void> = Promise.resolve();
  /** Stream seq whose commands this node has applied (in memory; `_meta.stream_seq` is the durable one). */
  private applied: number;
  /** The last stream seq handed to the engine (applied or queued). */
  private delivered = 0;
  /** The first command id of message `delivered` (null: not known, e.g. right after a restart). */
  private deliveredId: string | null = null;
  private readonly progress = new Set<() => void>();
  private watchdog: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: ConsumerOptions) {
    this.applied = opts.engine.appliedPosition;
  }

  /** The stream seq this node has applied up to. */
  get position(): number {
    return this.applied;
  }

  /** Resolves once this node has applied the stream up to `seq`; rejects when the consumer stops first. */
  waitApplied(seq: number): Promise<void> {
    if (this.applied >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.stopped) {
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

  /** Stops consuming (close or halt); settles once the consume loop ended. */
  stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    if (this.watchdog) clearInterval(this.watchdog);
    for (const check of [...this.progress]) check();
    return this.consuming;
  }

  /**
   * Consumes until stopped. When the ordered consumer gives up (it could not be recreated while the cluster had no
   * leader for the stream), a new one starts after the last message delivered: this node never silently stops.
   */
  async start(): Promise<void> {
    this.delivered = this.opts.engine.appliedPosition;
    let messages: ConsumerMessages | null = await this.openMessages();
    this.watch();
    this.consuming = (async () => {
      while (messages && !this.stopped) {
        this.messages = messages;
        try {
          await this.apply(messages);
        } catch (err) {
          if (!this.stopped) this.opts.onError(err);
        }
        messages = null;
        while (!messages && !this.stopped) {
          try {
            messages = await withTimeout(this.reopen(), 10_000, 'opening a consumer');
          } catch (err) {
            this.opts.onError(new Error(`cluster log: consuming again from message ${this.delivered + 1} failed, retrying (${(err as Error).message})`));
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        if (messages && this.stopped) messages.stop();
      }
    })();
  }

  /**
   * The consumer again after it stopped, once the stream still holds, at the last seq delivered here, the message this
   * node applied there: a stream that lost messages would otherwise hand this node others under reused numbers.
   * A stream shorter than that seq is waited for (a new leader catching up; the watchdog decides when it is a loss).
   */
  private async reopen(): Promise<ConsumerMessages | null> {
    const delivered = this.delivered;
    const expected = this.deliveredId;
    if (delivered > 0 && expected !== null) {
      const jsm = await this.opts.jsm;
      const last = (await jsm.streams.info(this.opts.stream)).state.last_seq;
      if (last < delivered) throw new Error(`the stream ends at message ${last}, before message ${delivered} this node applied: waiting for it`);
      const m = await jsm.streams.getMessage(this.opts.stream, { seq: delivered }).catch(() => null);
      const id = m ? firstCommandId(m.data) : null;
      if (id !== null && id !== expected) {
        this.opts.onRegressed(`holds another message at ${delivered} than the one this node applied there`);
        return null;
      }
    }
    return this.openMessages();
  }

  /** An ordered consumer of the stream from the message after the last one handed to the engine. */
  private async openMessages(): Promise<ConsumerMessages> {
    const next = this.delivered + 1;
    const consumer = await this.opts.js.consumers.get(
      this.opts.stream,
      next <= 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next },
    );
    // Short expiry and heartbeat: after a NATS server dies the ordered consumer notices within ~2 s and is recreated
    // from the last seq it delivered (the default, 30 s, would stall this node for a minute).
    const messages = await consumer.consume({ max_messages: 512, expires: 2000, idle_heartbeat: 1000 });
    // The client reports missed heartbeats (its server died, the stream moved) but keeps waiting on the dead
    // subscription: stop it, and start() opens a new one after the last message delivered.
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
   * A stream holding another message at the last seq delivered here, or shorter than it for REGRESSED_CHECKS checks,
   * lost acknowledged messages: `onRegressed`.
   */
  private watch(): void {
    let stalled = 0;
    let shorter = 0;
    let seen = this.delivered;
    let busy = false;
    this.watchdog = setInterval(() => {
      if (busy || this.stopped) return;
      busy = true;
      void (async () => {
        const jsm = await this.opts.jsm;
        const info = await jsm.streams.info(this.opts.stream);
        if (this.stopped) return;
        const delivered = this.delivered;
        shorter = info.state.last_seq < delivered ? shorter + 1 : 0;
        if (shorter >= REGRESSED_CHECKS) return this.opts.onRegressed(`now ends at message ${info.state.last_seq}, before message ${delivered} this node applied`);
        const expected = this.deliveredId;
        if (shorter === 0 && delivered > 0 && expected !== null) {
          const m = await jsm.streams.getMessage(this.opts.stream, { seq: delivered }).catch(() => null);
          const id = m ? firstCommandId(m.data) : null;
          if (id !== null && id !== expected && this.delivered === delivered && !this.stopped) {
            return this.opts.onRegressed(`holds another message at ${delivered} than the one this node applied there`);
          }
        }
        const behind = info.state.last_seq > this.delivered;
        stalled = behind && this.delivered === seen ? stalled + 1 : 0;
        seen = this.delivered;
        if (stalled >= 2) {
          stalled = 0;
          this.messages?.stop();
        }
      })()
        .catch(() => {})
        .finally(() => (busy = false));
    }, WATCH_MS);
    this.watchdog.unref();
  }

  /** Hands each message's commands to the engine in stream order. */
  private async apply(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.stopped) break;
      const seq = m.seq;
      if (seq <= this.delivered) continue; // delivered again by a consumer recreated after a reconnect
      this.delivered = seq;
      this.deliveredId = null;
      let commands: Array<{ command: Command; argsJson: string }>;
      try {
        commands = decodeMessage(m.data);
      } catch (err) {
        this.opts.onError(new Error(`log message ${seq} is not a command batch: skipped (${(err as Error).message})`));
        this.advance(seq);
        continue;
      }
      this.deliveredId = commands[0]?.command.id ?? null;
      let last: Promise<Receipt> | null = null;
      commands.forEach(({ command, argsJson }, i) => {
        const p = this.opts.engine.enqueueOrdered(command, argsJson, i === commands.length - 1 ? seq : undefined);
        p.then(
          (r) => this.opts.onApplied(command.id, r),
          (err: Error) => {
            if (!this.stopped) this.opts.onHalt(command.id, seq, err);
          },
        );
        last = p;
      });
      const done = (last as Promise<Receipt> | null)?.then(
        () => this.advance(seq),
        () => this.advance(seq),
      );
      if (this.opts.engine.pending > MAX_UNAPPLIED && done) await done;
    }
  }

  private advance(seq: number): void {
    if (seq <= this.applied) return;
    this.applied = seq;
    for (const check of [...this.progress]) check();
    this.opts.onAdvance?.(seq);
  }
}
