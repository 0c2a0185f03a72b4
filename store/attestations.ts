/**
 * Attestations: the checkpoints other nodes of a cluster signed, as this node received them (cluster mode; the
 * stream that carries them is store/jetstream-attestations.ts). A checkpoint position then carries the signatures
 * of several nodes, each over `{node, seq, hash}` (store/checkpoint.ts), and `verify` checks every one against this
 * node's own hash chain: two nodes that applied different histories cannot both hold attestations that match.
 *
 *   node X signs a checkpoint (seq, hash) ─► stream <LOG>_ATTESTATIONS, subject <S>.node.<X>
 *        └──────────────────────────────────► every node: _attestations (node, seq, hash, key, signature)
 *   verify: signature under the key it carries · that key = the node's pinned key · hash = this node's at seq
 *
 * Design: attestations are per-node facts, not log state, so they live OUTSIDE the hash chain and the table digest,
 * the way `_checkpoints` do; a second stream carries them. The alternative — attestations as commands in the log,
 * checked by a (deterministic) reducer — would put N more commands in the log for every checkpoint of every node,
 * would make the log's hash chain depend on when each node happened to sign, and could not attest the very
 * position the attestation itself moves; a stream beside the log costs one message per checkpoint and no reducer.
 *
 * Pinning (trust on first use): `_nodes` maps a node name to its public key. This node's own key is written there at
 * open (CheckpointTable.registerNode); another node's key is pinned by the first attestation from that name whose
 * signature is valid under the key it carries, in stream order (so every node pins the same keys). A later
 * attestation under another key for a pinned name is not counted: `verify` reports it as a key change. A node whose
 * data dir (and so its key) was lost comes back under a new key: the others report that change until its name is
 * changed or its old `keys/` dir is given back to it (README "Cluster mode").
 */
import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import { verifyCheckpoint } from './checkpoint.ts';

export interface Attestation {
  node: string;
  seq: number;
  hash: string;
  /** The SPKI PEM of the key the attestation was signed with, as its sender gave it. */
  publicKey: string;
  signature: string;
  signedAt: number;
}

export const ATTESTATION_DDL = [
  `CREATE TABLE IF NOT EXISTS _attestations (
     node TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, public_key TEXT NOT NULL, signature TEXT NOT NULL,
     signed_at INTEGER NOT NULL, stream_seq INTEGER NOT NULL, PRIMARY KEY (node, seq, hash, public_key, signature))`,
];

/** `_meta` key: the attestations stream's seq this node has stored up to. */
const POSITION = 'attestations_stream_seq';

/** A short, stable name for a public key in reports. */
export function keyFingerprint(pem: string): string {
  return `sha256:${crypto.createHash('sha256').update(pem.trim()).digest('hex').slice(0, 16)}`;
}

export class AttestationTable {
  private readonly insert: Database.Statement;
  private readonly pin: Database.Statement;
  private readonly setPosition: Database.Statement;
  private readonly getPosition: Database.Statement;
  private readonly ownAfter: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO _attestations (node, seq, hash, public_key, signature, signed_at, stream_seq) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.pin = db.prepare('INSERT OR IGNORE INTO _nodes (node, public_key) VALUES (?, ?)');
    this.setPosition = db.prepare('INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.getPosition = db.prepare('SELECT value FROM _meta WHERE key = ?');
    this.ownAfter = db.prepare('SELECT seq, hash, signature, signed_at AS signedAt FROM _checkpoints WHERE node = ? AND seq > ? ORDER BY seq');
  }

  /** The attestations stream's seq stored up to (0: none). */
  get position(): number {
    return Number((this.getPosition.get(POSITION) as { value: string } | undefined)?.value ?? 0);
  }

  /**
   * Stores the attestations read from the stream up to `streamSeq` in one transaction; the first valid one of a name
   * not yet in `_nodes` pins its key. `null` entries (messages that are not attestations) only move the position.
   */
  store(received: Array<{ streamSeq: number; attestation: Attestation | null }>, upTo: number): void {
    this.db.transaction(() => {
      for (const { streamSeq, attestation: a } of received) {
        if (!a) continue;
        this.insert.run(a.node, a.seq, a.hash, a.publicKey, a.signature, a.signedAt, streamSeq);
        if (verifyCheckpoint({ node: a.node, seq: a.seq, hash: a.hash, signature: a.signature, signedAt: a.signedAt }, a.publicKey)) {
          this.pin.run(a.node, a.publicKey);
        }
      }
      this.setPosition.run(POSITION, String(upTo));
    })();
  }

  /** This node's own checkpoints after `seq` (to publish as attestations). */
  ownCheckpointsAfter(node: string, seq: number): Array<{ seq: number; hash: string; signature: string; signedAt: number }> {
    return this.ownAfter.all(node, seq) as Array<{ seq: number; hash: string; signature: string; signedAt: number }>;
  }

  list(): Attestation[] {
    return this.db
      .prepare('SELECT node, seq, hash, public_key AS publicKey, signature, signed_at AS signedAt FROM _attestations ORDER BY seq, node, stream_seq')
      .all() as Attestation[];
  }
}

export interface KeyChange {
  node: string;
  seq: number;
  pinned: string;
  presented: string;
}

export interface AttestationReport {
  /** Attestations counted: valid signature under the node's pinned key, hash equal to this node's at that seq. */
  count: number;
  /** Counted attestations per node. */
  nodes: Record<string, number>;
  /** Per attested position (ascending), the nodes whose attestation of it was counted. */
  positions: Array<{ seq: number; nodes: string[] }>;
  /** Attestations of positions this node has not applied yet: not checked. */
  beyondHead: number;
  /** Attestations under another key than the one pinned for their node: not counted (see the header). */
  keyChanges: KeyChange[];
}

/**
 * Checks every stored attestation. `hashAt(seq)` is this node's event hash at `seq` (undefined beyond its head);
 * `pins` the pinned keys; `bad(seq, msg)` records a failure.
 */
export function checkAttestations(
  list: Attestation[],
  pins: ReadonlyMap<string, string>,
  hashAt: (seq: number) => string | undefined,
  headSeq: number,
  bad: (seq: number, msg: string) => void,
): AttestationReport {
  const report: AttestationReport = { count: 0, nodes: {}, positions: [], beyondHead: 0, keyChanges: [] };
  const at = new Map<number, Set<string>>();
  for (const a of list) {
    const valid = verifyCheckpoint({ node: a.node, seq: a.seq, hash: a.hash, signature: a.signature, signedAt: a.signedAt }, a.publicKey);
    if (!valid) {
      bad(a.seq, `attestation by ${a.node} of seq ${a.seq}: its signature is invalid (tampered or not signed by ${keyFingerprint(a.publicKey)})`);
      continue;
    }
    const pinned = pins.get(a.node);
    const samekey = pinned !== undefined && pinned.trim() === a.publicKey.trim();
    if (a.seq > headSeq) {
      report.beyondHead++;
      continue;
    }
    const mine = hashAt(a.seq);
    if (mine !== a.hash) {
      bad(a.seq, `node ${a.node} attested seq ${a.seq} with hash ${a.hash}, this node's hash there is ${mine ?? 'missing'}: the two nodes signed different histories`);
      continue;
    }
    if (!samekey) {
      report.keyChanges.push({ node: a.node, seq: a.seq, pinned: pinned ? keyFingerprint(pinned) : 'none', presented: keyFingerprint(a.publicKey) });
      continue;
    }
    report.count++;
    report.nodes[a.node] = (report.nodes[a.node] ?? 0) + 1;
    const nodes = at.get(a.seq) ?? new Set<string>();
    nodes.add(a.node);
    at.set(a.seq, nodes);
  }
  report.positions = [...at.entries()].sort((x, y) => x[0] - y[0]).map(([seq, nodes]) => ({ seq, nodes: [...nodes].sort() }));
  return report;
}
