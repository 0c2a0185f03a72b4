/**
 * Snapshots of a cluster node's SQLite (the file side; store/jetstream-snapshots.ts carries them through NATS): the
 * whole database at one stream position, so a node that joins after the stream was trimmed starts from it instead
 * of from message 1.
 *
 *   take:    VACUUM INTO a temp file (one consistent copy, taken between two batches) ─► manifest
 *            { position = _meta.stream_seq, seq, hash = the log head in the copy, sha256 of the file, … }
 *   restore: sha256 of the file = the manifest's · the hash chain recomputed over every event of the copy
 *            (verifyLog) ends at the manifest's head · its stream_seq = the manifest's position
 *            ─► else refused (`log_inconsistent`); the copy's node name is dropped (the restoring node has its own)
 *            and so are its checkpoints and pinned key under the restoring node's name; the attestations the taker
 *            received (store/attestations.ts) come with the copy, with their stream position
 *
 * What it proves: the copy is internally consistent and is the one the manifest describes. It cannot prove that the
 * node which took it applied the stream faithfully before the trim — the messages it applied are gone; the chain and
 * the other nodes' checkpoints signed in it are what remains to compare (docs: README "Cluster mode").
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { CheckpointTable } from './checkpoint.ts';
import { POSITION_KEY } from './engine.ts';
import { StoreError } from './errors.ts';
import { EventLog } from './log.ts';
import { verifyLog } from './verify.ts';

export interface SnapshotManifest {
  v: 1;
  /** The stream seq the copy has applied up to: the restoring node consumes from position + 1. */
  position: number;
  /** The log head in the copy. */
  seq: number;
  hash: string;
  /** The node that took it. */
  node: string;
  bytes: number;
  sha256: string;
  takenAt: number;
}

function meta(db: Database.Database, key: string): string | undefined {
  return (db.prepare('SELECT value FROM _meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

/** Copies `db` into `file` (VACUUM INTO: one consistent copy) and describes it. */
export function takeSnapshot(db: Database.Database, file: string, node: string, now: number): SnapshotManifest {
  fs.rmSync(file, { force: true });
  db.prepare('VACUUM INTO ?').run(file);
  const copy = new Database(file, { readonly: true });
  try {
    const head = new EventLog(copy).head();
    const data = fs.readFileSync(file);
    return {
      v: 1,
      position: Number(meta(copy, POSITION_KEY) ?? 0),
      seq: head.seq,
      hash: head.hash,
      node,
      bytes: data.length,
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      takenAt: now,
    };
  } finally {
    copy.close();
  }
}

/** Checks a fetched snapshot file against its manifest (see the header); refuses with `log_inconsistent`. */
export function checkSnapshot(file: string, manifest: SnapshotManifest, restoringNode?: string): void {
  const refuse = (why: string): never => {
    throw new StoreError('log_inconsistent', `snapshot at stream message ${manifest.position} (taken by ${manifest.node}) refused: ${why}`);
  };
  const data = fs.readFileSync(file);
  if (crypto.createHash('sha256').update(data).digest('hex') !== manifest.sha256) refuse('its file is not the one its manifest describes (sha256)');
  const db = new Database(file);
  try {
    const log = new EventLog(db);
    const report = verifyLog(db, log, new CheckpointTable(db));
    if (!report.ok) refuse(`its hash chain does not verify (${report.problems.slice(0, 3).join('; ')})`);
    const head = log.head();
    if (head.seq !== manifest.seq || head.hash !== manifest.hash) refuse(`its chain ends at ${head.seq} ${head.hash}, the manifest says ${manifest.seq} ${manifest.hash}`);
    if (Number(meta(db, POSITION_KEY) ?? 0) !== manifest.position) refuse('its stream position differs from the manifest');
    // the restoring node keeps its own name and key: the copy's are the taker's
    db.prepare("DELETE FROM _meta WHERE key = 'node'").run();
    if (restoringNode) {
      // a wiped node restoring under its old name has a new key: its old checkpoints and key are not carried over
      db.prepare('DELETE FROM _checkpoints WHERE node = ?').run(restoringNode);
      db.prepare('DELETE FROM _nodes WHERE node = ?').run(restoringNode);
    }
  } finally {
    db.close();
  }
}
