/**
 * Node identity and signed checkpoints. Each node has an Ed25519 key pair,
 * created on first start under `<dataDir>/keys/` with mode 0600. Every N events
 * or T ms the node signs `canonicalJson({node, seq, hash})` of its log head;
 * `verify` checks those signatures against the node's public key, so rewriting
 * the log and recomputing the chain is caught unless the key was stolen too.
 * `_nodes` holds this node's key and, in cluster mode, the keys pinned by the
 * other nodes' attestations of their checkpoints (store/attestations.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { canonicalJson } from './canonical.ts';

export interface NodeKey {
  node: string;
  privateKey: crypto.KeyObject;
  publicKeyPem: string;
}

export interface Checkpoint {
  seq: number;
  hash: string;
  node: string;
  signature: string;
  /** Wall-clock time the checkpoint was signed (not part of any reducer). */
  signedAt: number;
}

export const CHECKPOINT_DDL = [
  `CREATE TABLE IF NOT EXISTS _checkpoints (
     seq INTEGER NOT NULL, node TEXT NOT NULL, hash TEXT NOT NULL, signature TEXT NOT NULL,
     signed_at INTEGER NOT NULL, PRIMARY KEY (seq, node))`,
  `CREATE TABLE IF NOT EXISTS _nodes (node TEXT PRIMARY KEY, public_key TEXT NOT NULL)`,
];

export function loadOrCreateNodeKey(keysDir: string, node: string): NodeKey {
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(keysDir, 0o700);
  const file = path.join(keysDir, 'node-ed25519.pem');
  let pem: string;
  if (fs.existsSync(file)) {
    pem = fs.readFileSync(file, 'utf8');
    fs.chmodSync(file, 0o600);
  } else {
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, pem, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
  const privateKey = crypto.createPrivateKey(pem);
  const publicKeyPem = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { node, privateKey, publicKeyPem };
}

export function checkpointPayload(node: string, seq: number, hash: string): Buffer {
  return Buffer.from(canonicalJson({ node, seq, hash }));
}

export function signCheckpoint(key: NodeKey, seq: number, hash: string, signedAt: number): Checkpoint {
  const signature = crypto.sign(null, checkpointPayload(key.node, seq, hash), key.privateKey).toString('base64');
  return { seq, hash, node: key.node, signature, signedAt };
}

export function verifyCheckpoint(cp: Checkpoint, publicKeyPem: string): boolean {
  try {
    return crypto.verify(
      null,
      checkpointPayload(cp.node, cp.seq, cp.hash),
      crypto.createPublicKey(publicKeyPem),
      Buffer.from(cp.signature, 'base64'),
    );
  } catch {
    return false;
  }
}

export class CheckpointTable {
  private readonly insert: Database.Statement;
  private readonly all: Database.Statement;
  private readonly last: Database.Statement;
  private readonly from: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO _checkpoints (seq, node, hash, signature, signed_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.all = db.prepare('SELECT seq, node, hash, signature, signed_at AS signedAt FROM _checkpoints ORDER BY seq');
    this.last = db.prepare('SELECT MAX(seq) AS seq FROM _checkpoints WHERE node = ?');
    this.from = db.prepare('SELECT seq, node, hash, signature FROM _checkpoints WHERE node = ? AND seq >= ? ORDER BY seq LIMIT 1');
  }

  registerNode(key: NodeKey): void {
    const existing = this.db.prepare('SELECT public_key FROM _nodes WHERE node = ?').get(key.node) as
      | { public_key: string }
      | undefined;
    if (existing && existing.public_key !== key.publicKeyPem) {
      throw new Error(
        `node ${key.node}: its key file does not match the public key recorded in the database; refusing to sign with a different key`,
      );
    }
    if (!existing) this.db.prepare('INSERT INTO _nodes (node, public_key) VALUES (?, ?)').run(key.node, key.publicKeyPem);
  }

  /** Called after each checkpoint written (inside the batch's transaction: look at the table after it, not in it). */
  onWrite: (() => void) | null = null;

  write(cp: Checkpoint): void {
    this.insert.run(cp.seq, cp.node, cp.hash, cp.signature, cp.signedAt);
    this.onWrite?.();
  }

  lastSeq(node: string): number {
    return ((this.last.get(node) as { seq: number | null }).seq ?? 0) as number;
  }

  /** The first checkpoint `node` signed at or after `seq`. */
  firstFrom(node: string, seq: number): { seq: number; node: string; hash: string; signature: string } | undefined {
    return this.from.get(node, seq) as { seq: number; node: string; hash: string; signature: string } | undefined;
  }

  list(): Checkpoint[] {
    return this.all.all() as Checkpoint[];
  }

  publicKeys(): Map<string, string> {
    const rows = this.db.prepare('SELECT node, public_key FROM _nodes').all() as { node: string; public_key: string }[];
    return new Map(rows.map((r) => [r.node, r.public_key]));
  }
}
