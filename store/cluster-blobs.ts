/**
 * The blob store of a cluster node: the JetStream object store (store/jetstream-blobs.ts) on the store's own NATS
 * connection, in the bucket named after its log stream (`<stream>_BLOBS`) with the log's replicas. The object
 * store's module (and the NATS clients with it) is imported on this path only.
 */
import { StoreError } from './errors.ts';
import type { JetStreamBlobStore } from './jetstream-blobs.ts';
import type { Tables } from './reducer.ts';
import { clusterPlug, type Store } from './store.ts';

export async function clusterBlobStore<T extends Tables>(store: Store<T>): Promise<JetStreamBlobStore> {
  const log = clusterPlug(store).cluster();
  if (!log) throw new StoreError('invalid_command', 'the object store is used in cluster mode only (SWITCHBOARD_CLUSTER_NATS)');
  const { nc, stream, replicas } = log.connection;
  // Imported here, in cluster mode only: a node without it never loads the NATS clients.
  const { blobBucket, JetStreamBlobStore } = await import('./jetstream-blobs.ts');
  return JetStreamBlobStore.open(nc, blobBucket(stream), replicas);
}
