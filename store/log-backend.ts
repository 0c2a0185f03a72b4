/**
 * The seam between "commands in one order" and "apply": what `Store.submit` hands a validated command to. Everything
 * above it (reducers, subscriptions, verify, replay, checkpoints, every caller of `submit`) is the same whichever
 * backend orders the commands; everything below it applies them with the same engine (store/engine.ts), so the
 * hash chain and outcomes depend only on the order.
 *
 *                       ┌─ embedded (default): ApplyEngine itself — the local queue is the order; the `_events`
 *   Store.submit ──► LogBackend                table of the node's SQLite is the log (group commit, one transaction)
 *                       └─ jetstream (cluster): JetStreamLog — batches published to one replicated stream; every
 *                                             node consumes it in order into ApplyEngine.enqueueOrdered
 *                                             (store/jetstream-log.ts)
 *
 * Either way `submit` resolves once the local node has applied the command (read-your-writes on the submitting
 * node), with its receipt: a command id already in the log returns its recorded outcome (`duplicate: true`).
 */
import type { Receipt } from './engine.ts';
import type { Command } from './log.ts';

export interface LogBackend {
  readonly kind: 'embedded' | 'jetstream';
  /**
   * Orders and applies one command. `argsJson` is canonicalJson(command.args); `fresh` = its id was minted by this
   * store (it cannot be in the log yet, so the duplicate lookup may be skipped).
   */
  submit(command: Command, argsJson: string, fresh: boolean): Promise<Receipt>;
  /** Stops taking commands; what is queued locally is applied or refused (store/engine.ts close). */
  close(): void;
}
