/**
 * Snapshots through NATS (the file side is store/snapshot.ts): a JetStream stream `<log stream>_SNAPSHOTS` (file
 * storage, the log's replicas) holds the latest snapshot of the database as chunks and a manifest.
 *
 *   publish: chunks (≤ CHUNK bytes) on `<S>.chunk.<position>` ─► manifest on `<S>.manifest` (last one wins)
 *            ─► the previous snapshot's chunks purged
 *   fetch:   the last message on `<S>.manifest` ─► its chunks by stream seq ─► a file, checked by store/snapshot.ts
 *
 * Published every `snapshotEvery` applied stream messages by any node (and on demand: `Store.publishSnapshot`); a
 * manifest names its chunk count and sha256, so a reader never mistakes a half-published snapshot for a whole one.
 */
import fs from 'node:fs';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ensureSideStream } from './jetstream-streams.ts';
import type { SnapshotManifest } from './snapshot.ts';

const CHUNK = 256 * 1024;

/** `chunks`: the stream seqs of the snapshot's chunks, in order (read back one by one: nats-server 2.9 has no multi-filter consumers). */
export type PublishedManifest = SnapshotManifest & { chunks: number[] };

export const snapshotStream = (logStream: string): string => `${logStream}_SNAPSHOTS`;

/** The latest manifest, or null when no snapshot was published. */
export async function latestManifest(nc: NatsConnection, logStream: string): Promise<PublishedManifest | null> {
  const name = snapshotStream(logStream);
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  try {
    const m = await jsm.streams.getMessage(name, { last_by_subj: `${name}.manifest` });
    return m ? (JSON.parse(Buffer.from(m.data).toString('utf8')) as PublishedManifest) : null;
  } catch (err) {
    if (/not found|no message/i.test((err as Error).message)) return null;
    throw err;
  }
}

export async function publishSnapshot(nc: NatsConnection, logStream: string, replicas: number, file: string, manifest: SnapshotManifest): Promise<PublishedManifest> {
  const name = snapshotStream(logStream);
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  await ensureSideStream(jsm, name, replicas);
  const previous = await latestManifest(nc, logStream);
  const js = jetstream(nc, { timeout: 10_000 });
  const data = fs.readFileSync(file);
  const subject = `${name}.chunk.${manifest.position}`;
  if (previous?.position === manifest.position) await jsm.streams.purge(name, { filter: subject });
  const chunks: number[] = [];
  for (let at = 0; at < data.length || chunks.length === 0; at += CHUNK) {
    chunks.push((await js.publish(subject, data.subarray(at, at + CHUNK))).seq);
  }
  const published: PublishedManifest = { ...manifest, chunks };
  await js.publish(`${name}.manifest`, JSON.stringify(published));
  if (previous && previous.position !== manifest.position) await jsm.streams.purge(name, { filter: `${name}.chunk.${previous.position}` }).catch(() => {});
  return published;
}

/** Writes the snapshot `manifest` describes into `file` (checked afterwards by store/snapshot.ts checkSnapshot). */
export async function fetchSnapshot(nc: NatsConnection, logStream: string, manifest: PublishedManifest, file: string): Promise<void> {
  const name = snapshotStream(logStream);
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const parts: Buffer[] = [];
  for (const seq of manifest.chunks) {
    const m = await jsm.streams.getMessage(name, { seq });
    if (!m || m.subject !== `${name}.chunk.${manifest.position}`) throw new Error(`snapshot chunk ${seq} is missing`);
    parts.push(Buffer.from(m.data));
  }
  fs.writeFileSync(file, Buffer.concat(parts), { mode: 0o600 });
}
