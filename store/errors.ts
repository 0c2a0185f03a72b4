/**
 * Typed errors of the store. A `ReducerError` is a caller error raised inside a
 * reducer through `ctx.fail()`: it becomes the command's logged outcome. A
 * `StoreError` is raised to the submitter or the operator and is never logged.
 */
export class ReducerError extends Error {
  override readonly name = 'ReducerError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type StoreErrorCode =
  | 'unknown_reducer'
  | 'invalid_args'
  /** The command carries content of a call whose content key was destroyed (erased): refused by the submit path's sealer. */
  | 'content_erased'
  | 'invalid_command'
  | 'database_locked'
  | 'database_corrupt'
  | 'store_closed'
  | 'storage_failed'
  /** A storage fault (disk full, I/O error) blocks commits for now: the command was not committed. */
  | 'storage_unavailable'
  /** Cluster mode: the replicated log has no quorum (store/jetstream-health.ts): the command was not submitted. */
  | 'log_unavailable'
  | 'log_inconsistent';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** Whether submitting the same command again may succeed. */
    readonly retryable = false,
  ) {
    super(message);
  }
}

/** A cluster node's data dir opened without the cluster: reads, verify and replay work; a write would fork it. */
export function clusterCopyError(position: number): StoreError {
  return new StoreError(
    'invalid_command',
    `this data dir is a cluster node's copy of the log (applied up to stream message ${position}): it takes writes only in cluster mode (SWITCHBOARD_CLUSTER_NATS)`,
  );
}
