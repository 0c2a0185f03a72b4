/**
 * The publishing half of the cluster log (store/jetstream-log.ts): the outbox of commands this node submitted, sent
 * to the stream as group-committed messages.
 *
 *   enqueue ─► outbox ─► flush: one message per batch (≤ MAX_MESSAGE_BYTES / MAX_MESSAGE_COMMANDS),
 *                               ≤ window messages in flight ─► js.publish(subject, msgID) ─► acknowledged by a quorum
 *
 * - A message is `{"v":1,"c":[[id, ts, node, tenant, caller, reducer, argsJson], …]}` (args kept canonical; decoded
 *   by store/jetstream-consumer.ts).
 * - msgID = the batch's first command id (+ count and digest of the ids when it holds more than one), so a retried
 *   publish of the same batch is deduplicated by the stream (its duplicate window).
 * - An acknowledged publish settles nothing here: the submitters settle when the consumer applies their commands.
 *   A publish not acknowledged within the deadline (or while the log is known to be unavailable: no quorum) calls
 *   `onFailed` with the batch's command ids.
 */
import { hash } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Command } from './log.ts';

const MAX_MESSAGE_BYTES = 512 * 1024;
const MAX_MESSAGE_COMMANDS = 1024;

export interface Outgoing {
  command: Command;
  argsJson: string;
  encoded: string;
}

/** One command in a log message (see the header). */
export function encodeCommand(c: Command, argsJson: string): string {
  return JSON.stringify([c.id, c.ts, c.node, c.tenant, c.caller, c.reducer, argsJson]);
}

function messageId(batch: Outgoing[]): string {
  const first = (batch[0] as Outgoing).command.id;
  if (batch.length === 1) return first;
  return `${first}+${batch.length}-${hash('sha256', batch.map((o) => o.command.id).join('\n'), 'hex').slice(0, 16)}`;
}

export interface PublisherOptions {
  js: JetStreamClient;
  subject: string;
  /** Publishes in flight at once. */
  window: number;
  /** How long one batch's publish may be retried before its submitters are refused, ms. */
  deadlineMs: number;
  /** The batch was not acknowledged in time, or `unavailable` said to stop trying (`last` = the last publish error). */
  onFailed: (ids: string[], last: unknown) => void;
  /** Each publish attempt's result (store/jetstream-health.ts). */
  onAttempt: (acknowledged: boolean) => void;
  /** True while the log is known to be unavailable: a failing publish stops retrying before its deadline. */
  unavailable: () => boolean;
}

export class Publisher {
  private readonly outbox: Outgoing[] = [];
  private inFlight = 0;
  private scheduled = false;
  private closed = false;

  constructor(private readonly opts: PublisherOptions) {}

  /** Queues one command; it goes out with whatever else is queued in this turn of the event loop. */
  enqueue(command: Command, argsJson: string): void {
    this.outbox.push({ command, argsJson, encoded: encodeCommand(command, argsJson) });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Drops what is queued and stops retrying (the caller refuses the waiting submitters). */
  close(): void {
    this.closed = true;
    this.outbox.length = 0;
  }

  /** Sends what the outbox holds, one message per batch, while the window has room. */
  private flush(): void {
    this.scheduled = false;
    while (!this.closed && this.inFlight < this.opts.window && this.outbox.length > 0) {
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
    const deadline = Date.now() + this.opts.deadlineMs;
    let last: unknown;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.opts.js.publish(this.opts.subject, data, { msgID, timeout: Math.max(1000, Math.min(5000, deadline - Date.now())) });
        this.opts.onAttempt(true);
        return; // acknowledged by a quorum: the submitters settle when the consumer applies their commands
      } catch (err) {
        last = err;
        this.opts.onAttempt(false);
        if (this.closed || this.opts.unavailable()) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (this.closed) return;
    this.opts.onFailed(
      batch.map((o) => o.command.id),
      last,
    );
  }
}
