/**
 * Cluster mode's open path (`Store.openCluster`): the node's SQLite opened as the embedded store opens it, then run
 * on the JetStream log (store/jetstream-log.ts) instead of its own queue.
 *
 *   empty data dir and a trimmed stream? ─► restore the latest snapshot (store/jetstream-snapshots.ts), checked
 *        │                                  against its manifest (store/snapshot.ts) — a mismatch is refused
 *        ▼
 *   Store.open(dataDir) ─► JetStreamLog.open(engine, log): connect · stream exists · consume from stream_seq + 1
 *                          until what the stream held at open is applied ─► plug.attach: submit goes to the stream
 *
 * A bad or unreachable NATS is a StoreError naming the variable the servers came from; the store opened for it is
 * closed again. A cluster node's data dir opened without the cluster takes no writes (`clusterCopyError`).
 * Each node publishes the checkpoints it signs to `<stream>_ATTESTATIONS` and stores every node's
 * (store/jetstream-attestations.ts), so `verify` on any node checks the others' signatures of its chain.
 * Snapshots are published on demand (`publishSnapshot`) and every `cluster.snapshotEvery` applied messages.
 */
import fs from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { AttestationTable } from './attestations.ts';
import type { CheckpointTable, NodeKey } from './checkpoint.ts';
import type { ApplyEngine, StoreFault } from './engine.ts';
import { StoreError } from './errors.ts';
import type { EventLog } from './log.ts';
import { DEFAULT_STREAM, JetStreamLog, type ClusterOptions } from './jetstream-log.ts';
import { AttestationSync } from './jetstream-attestations.ts';
import { fetchSnapshot, latestManifest, publishSnapshot, type PublishedManifest } from './jetstream-snapshots.ts';
import { connectNats } from './nats-connect.ts';
import type { Tables } from './reducer.ts';
import { checkSnapshot, type SnapshotManifest } from './snapshot.ts';
import { clusterPlug, DB_FILE, Store, type StoreOptions } from './store.ts';

/** What this module plugs the JetStream log into (set by store/store.ts's static block; store/ only). */
export interface ClusterPlug {
  engine: ApplyEngine;
  log: EventLog;
  onError: (err: unknown) => void;
  /** The cluster log's availability changed (Store.health / onHealth report it). */
  onLogHealth: (fault: StoreFault | null) => void;
  attach(cluster: JetStreamLog): void;
  cluster(): JetStreamLog | null;
  /** This node's checkpoints and key, and the attestations it receives (store/jetstream-attestations.ts). */
  checkpoints: CheckpointTable;
  attestations: AttestationTable;
  key: NodeKey;
  /** Copies the database into `file` (store/snapshot.ts takeSnapshot). */
  snapshot(file: string): SnapshotManifest;
}

export async function openCluster<T extends Tables>(opts: StoreOptions<T> & { cluster: ClusterOptions }): Promise<Store<T>> {
  const restored = await restoreIfTrimmed(opts.dataDir, opts.cluster, opts.node);
  const store = Store.open(opts);
  try {
    const plug = clusterPlug(store);
    const log = await JetStreamLog.open(plug.engine, plug.log, opts.cluster, plug.onError, plug.onLogHealth);
    plug.attach(log);
    log.snapshotter = () => publishSnapshotOf(store);
    const { nc, stream, replicas } = log.connection;
    const attestations = new AttestationSync({ nc, logStream: stream, replicas, key: plug.key, checkpoints: plug.checkpoints, table: plug.attestations, onError: plug.onError });
    log.companions.push(attestations);
    attestations.start();
    store.restoredFrom = restored;
    return store;
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * A data dir without a database joining a stream that no longer starts at message 1: the latest snapshot becomes its
 * database (when it reaches the stream's first message). Returns the manifest restored, or null.
 */
async function restoreIfTrimmed(dataDir: string, cluster: ClusterOptions, node: string | undefined): Promise<SnapshotManifest | null> {
  const file = path.join(dataDir, DB_FILE);
  if (fs.existsSync(file)) return null;
  const stream = cluster.stream ?? DEFAULT_STREAM;
  const nc = await connectNats(cluster);
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const info = await jsm.streams.info(stream).catch(() => null);
    if (!info || info.state.first_seq <= 1 || info.state.messages === 0) return null;
    const manifest = await latestManifest(nc, stream);
    if (!manifest || manifest.position + 1 < info.state.first_seq) {
      throw new StoreError(
        'log_inconsistent',
        `${cluster.variable ?? 'SWITCHBOARD_CLUSTER_NATS'}: stream ${stream} starts at message ${info.state.first_seq} and ${manifest ? `the latest snapshot is at ${manifest.position}` : 'no snapshot was published'}: this node cannot catch up (publish a snapshot from a current node)`,
      );
    }
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const part = `${file}.snapshot`;
    await fetchSnapshot(nc, stream, manifest, part);
    try {
      checkSnapshot(part, manifest, node);
    } catch (err) {
      fs.rmSync(part, { force: true });
      throw err;
    }
    fs.renameSync(part, file);
    return manifest;
  } finally {
    await nc.close().catch(() => {});
  }
}

/** Takes a snapshot of `store`'s database now and publishes it (cluster mode only). */
export async function publishSnapshotOf<T extends Tables>(store: Store<T>): Promise<PublishedManifest> {
  const plug = clusterPlug(store);
  const log = plug.cluster();
  if (!log) throw new StoreError('invalid_command', 'snapshots are published in cluster mode only');
  const file = path.join(store.dataDir, `snapshot-${process.pid}.tmp.db`);
  try {
    const manifest = plug.snapshot(file);
    const { nc, stream, replicas } = log.connection;
    return await publishSnapshot(nc, stream, replicas, file, manifest);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** The refusal of a write to a cluster node's copy of the log opened without the cluster (it would fork it). */
export { clusterCopyError } from './errors.ts';
