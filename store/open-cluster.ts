/**
 * Cluster mode's open path (`Store.openCluster`): the node's SQLite opened as the embedded store opens it, then run
 * on the JetStream log (store/jetstream-log.ts) instead of its own queue.
 *
 *   Store.open(dataDir) ─► JetStreamLog.open(engine, log): connect · stream exists · consume from stream_seq + 1
 *                          until what the stream held at open is applied ─► plug.attach: submit goes to the stream
 *
 * A bad or unreachable NATS is a StoreError naming the variable the servers came from; the store opened for it is
 * closed again. A cluster node's data dir opened without the cluster takes no writes (`clusterCopyError`).
 */
import { StoreError } from './errors.ts';
import { JetStreamLog, type ClusterOptions } from './jetstream-log.ts';
import type { Tables } from './reducer.ts';
import { clusterPlug, Store, type StoreOptions } from './store.ts';

export async function openCluster<T extends Tables>(opts: StoreOptions<T> & { cluster: ClusterOptions }): Promise<Store<T>> {
  const store = Store.open(opts);
  try {
    const plug = clusterPlug(store);
    plug.attach(await JetStreamLog.open(plug.engine, plug.log, opts.cluster, plug.onError, plug.onLogHealth));
    return store;
  } catch (err) {
    store.close();
    throw err;
  }
}

/** The refusal of a write to a cluster node's copy of the log opened without the cluster (it would fork it). */
export function clusterCopyError(position: number): StoreError {
  return new StoreError(
    'invalid_command',
    `this data dir is a cluster node's copy of the log (applied up to stream message ${position}): it takes writes only in cluster mode (SWITCHBOARD_CLUSTER_NATS)`,
  );
}
