/**
 * `verify`: walks the whole log checking seq contiguity, each event's prevHash
 * link and recomputed hash, that `applied_seq` equals the head, and every
 * checkpoint's Ed25519 signature and hash. Reports the first bad seq.
 * Cluster mode: also every other node's attestation this node received
 * (store/attestations.ts): its signature, its key against the node's pinned
 * key, and its hash against this node's event hash at that seq.
 */
import type Database from 'better-sqlite3';
import { checkAttestations, type AttestationReport, type AttestationTable } from './attestations.ts';
import { verifyCheckpoint, type CheckpointTable } from './checkpoint.ts';
import { chainHash, commandBody, GENESIS_HASH, type EventLog } from './log.ts';

export interface VerifyReport {
  ok: boolean;
  events: number;
  headSeq: number;
  headHash: string;
  checkpoints: number;
  /** The first seq at which the chain or a checkpoint does not hold. */
  firstBadSeq: number | null;
  problems: string[];
  /** The attestations of checkpoints by the cluster's nodes (none when embedded). */
  attestations: AttestationReport;
}

export function verifyLog(
  db: Database.Database,
  log: EventLog,
  checkpoints: CheckpointTable,
  trustedKeys: ReadonlyMap<string, string> = new Map(),
  attestations?: AttestationTable,
): VerifyReport {
  const problems: string[] = [];
  let firstBadSeq: number | null = null;
  const bad = (seq: number, msg: string): void => {
    if (firstBadSeq === null || seq < firstBadSeq) firstBadSeq = seq;
    if (problems.length < 50) problems.push(`seq ${seq}: ${msg}`);
  };
  const hashes = new Map<number, string>();
  const attested = attestations?.list() ?? [];
  const wanted = new Set([...checkpoints.list(), ...attested].map((c) => c.seq));
  let expectSeq = 1;
  let prev = GENESIS_HASH;
  let events = 0;
  for (const ev of log.iterate()) {
    events++;
    if (ev.seq !== expectSeq) {
      bad(expectSeq, `missing event (next stored seq is ${ev.seq})`);
      expectSeq = ev.seq;
    }
    if (ev.prevHash !== prev) bad(ev.seq, 'prevHash does not link to the previous event');
    const recomputed = chainHash(ev.prevHash, commandBody(ev, ev.outcome));
    if (recomputed !== ev.hash) bad(ev.seq, 'stored hash does not match the event contents (tampered)');
    prev = recomputed;
    if (wanted.has(ev.seq)) hashes.set(ev.seq, recomputed);
    expectSeq++;
  }
  const headSeq = expectSeq - 1;
  const applied = db.prepare("SELECT value FROM _meta WHERE key = 'applied_seq'").get() as { value: string } | undefined;
  const appliedSeq = applied ? Number(applied.value) : 0;
  if (appliedSeq !== headSeq) bad(Math.min(appliedSeq, headSeq) + 1, `applied_seq ${appliedSeq} differs from log head ${headSeq}`);

  const stored = checkpoints.publicKeys();
  for (const [node, pem] of trustedKeys) {
    if (stored.has(node) && stored.get(node) !== pem) problems.push(`node ${node}: the database's public key differs from the trusted key`);
  }
  const list = checkpoints.list();
  for (const cp of list) {
    const key = trustedKeys.get(cp.node) ?? stored.get(cp.node);
    if (!key) bad(cp.seq, `checkpoint by unknown node ${cp.node}`);
    else if (!verifyCheckpoint(cp, key)) bad(cp.seq, `checkpoint signature by ${cp.node} is invalid`);
    const h = hashes.get(cp.seq);
    if (cp.seq > headSeq) bad(cp.seq, `checkpoint beyond the log head ${headSeq} (events were removed)`);
    else if (h !== undefined && h !== cp.hash) bad(cp.seq, 'checkpoint hash does not match the log (log rewritten)');
  }
  const pins = new Map([...stored, ...trustedKeys]);
  const attestationReport = checkAttestations(attested, pins, (seq) => hashes.get(seq), headSeq, bad);
  const ok = problems.length === 0 && firstBadSeq === null;
  return { ok, events, headSeq, headHash: prev, checkpoints: list.length, firstBadSeq, problems, attestations: attestationReport };
}
