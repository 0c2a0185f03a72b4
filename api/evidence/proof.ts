/**
 * A call's hash-chain proof: the call's events, and just enough of the log
 * around them to tie each one to a checkpoint the node signed, without
 * revealing any other event's body.
 *
 * The log chains `digest(n) = sha256(body(n))`, `hash(n) = sha256(hash(n-1) ‖
 * digest(n))` (hex ‖ hex as ASCII; see store/log.ts). A proof holds:
 *
 *   events       every event of the call in the tenant (seq order): the full
 *                LogEvent plus `body`, the exact string that was hashed, so
 *                `sha256(prevHash ‖ sha256(body)) = hash` can be recomputed.
 *   links        for every seq in the union of (s, c(s)] over the call's
 *                events s, where c(s) is the first checkpoint at or after s:
 *                {seq, digest, hash} only. Walking from an event's hash through
 *                the digests of the following links recomputes each link's
 *                hash and lands on the checkpoint's hash. Events of other calls
 *                and tenants appear here as digests, never as bodies.
 *   checkpoints  the checkpoints reached, {seq, node, hash, signature (base64
 *                Ed25519), payload}, payload being the exact canonical JSON
 *                `{"hash":…,"node":…,"seq":…}` that was signed.
 *
 * The number of links from an event to a checkpoint fixes its position: the
 * signed seq of the checkpoint minus the steps walked. Which events belong to
 * a call: those the schema's `call_events` log index finds (args.call_id,
 * call_received's result, and events naming the call's consents, recordings or
 * agent actions by id), read through the tenant-bound query layer, so only the
 * tenant's own events are ever bodies in a proof.
 */
import crypto from 'node:crypto';
import { CALL_EVENTS, type SwitchboardTables } from '../../schema/index.ts';
import { checkpointPayload } from '../../store/checkpoint.ts';
import { bodyDigest, commandBody, linkHash } from '../../store/log.ts';
import type { ChainLink, EventWithBody, SignedCheckpoint, Store } from '../../store/index.ts';

export const CALL_PROOF_FORMAT = 'switchboard-call-proof/1';

/** A LogEvent plus `body`, canonicalJson({command, outcome}): the bytes whose sha256 is the event's digest. */
export type ProofEvent = EventWithBody;
export type ProofLink = ChainLink;
/** `signature` is base64 Ed25519 over `payload`. */
export type ProofCheckpoint = SignedCheckpoint;

export interface CallProof {
  format: typeof CALL_PROOF_FORMAT;
  node: string;
  tenant: string;
  callId: string;
  events: ProofEvent[];
  links: ProofLink[];
  checkpoints: ProofCheckpoint[];
}

export interface ProofReport {
  ok: boolean;
  problems: string[];
}

/**
 * The proof for `callId` as seen by `tenant`, or null when the tenant has no
 * such call. Signs a checkpoint first when none covers the call's newest event.
 */
export function buildCallProof(store: Store<SwitchboardTables>, tenant: string, callId: string): CallProof | null {
  const q = store.query(tenant);
  if (!q.from('calls').where({ id: callId }).first()) return null;
  const events: ProofEvent[] = q.eventsWithBodies(CALL_EVENTS, callId);
  const newest = events.at(-1);
  if (!newest) return null;
  if (!q.checkpointFrom(newest.seq)) store.checkpointNow();

  const checkpoints = new Map<number, ProofCheckpoint>();
  const ranges: Array<[number, number]> = [];
  for (const ev of events) {
    const cp = q.checkpointFrom(ev.seq);
    if (!cp) throw new Error(`evidence: no checkpoint of node ${store.node} covers event ${ev.seq}`);
    checkpoints.set(cp.seq, cp);
    const last = ranges.at(-1);
    if (ev.seq >= cp.seq) continue;
    if (last && ev.seq + 1 <= last[1] + 1) last[1] = Math.max(last[1], cp.seq);
    else ranges.push([ev.seq + 1, cp.seq]);
  }
  const links: ProofLink[] = ranges.flatMap(([from, to]) => q.chainLinks(from, to));
  return {
    format: CALL_PROOF_FORMAT,
    node: store.node,
    tenant,
    callId,
    events,
    links,
    checkpoints: [...checkpoints.values()].sort((a, b) => a.seq - b.seq),
  };
}

/**
 * Re-checks a proof against the node's public key: each event's body against
 * its fields and hash, each checkpoint's payload and signature, and the walk
 * from each event through the links to a checkpoint's signed hash.
 */
export function verifyCallProof(proof: CallProof, publicKeyPem: string): ProofReport {
  const problems: string[] = [];
  try {
    check(proof, crypto.createPublicKey(publicKeyPem), problems);
  } catch (err) {
    problems.push(`malformed proof or key: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { ok: problems.length === 0, problems };
}

function ascending(seqs: number[], what: string, problems: string[]): void {
  for (let i = 1; i < seqs.length; i++) {
    if (!((seqs[i] ?? 0) > (seqs[i - 1] ?? 0))) problems.push(`${what}: seq ${seqs[i]} is out of order or repeated`);
  }
}

function check(proof: CallProof, key: crypto.KeyObject, problems: string[]): void {
  if (proof.format !== CALL_PROOF_FORMAT) problems.push(`unknown proof format ${JSON.stringify(proof.format)}`);
  if (proof.events.length === 0) problems.push('the proof holds no events');
  ascending(proof.events.map((e) => e.seq), 'events', problems);
  ascending(proof.links.map((l) => l.seq), 'links', problems);
  ascending(proof.checkpoints.map((c) => c.seq), 'checkpoints', problems);

  const signed = new Map<number, string>();
  for (const cp of proof.checkpoints) {
    if (cp.node !== proof.node) problems.push(`checkpoint ${cp.seq}: signed by node ${cp.node}, not ${proof.node}`);
    if (cp.payload !== checkpointPayload(cp.node, cp.seq, cp.hash).toString('utf8')) {
      problems.push(`checkpoint ${cp.seq}: payload does not match its node, seq and hash`);
    } else if (!crypto.verify(null, Buffer.from(cp.payload, 'utf8'), key, Buffer.from(cp.signature, 'base64'))) {
      problems.push(`checkpoint ${cp.seq}: signature does not verify with the node's public key`);
    } else signed.set(cp.seq, cp.hash);
  }

  const links = new Map(proof.links.map((l) => [l.seq, l]));
  const eventHash = new Map<number, string>();
  for (const ev of proof.events) {
    if (ev.tenant !== proof.tenant) problems.push(`event ${ev.seq}: belongs to tenant ${ev.tenant}, not ${proof.tenant}`);
    if (commandBody(ev, ev.outcome) !== ev.body) problems.push(`event ${ev.seq}: its fields differ from its body`);
    if (linkHash(ev.prevHash, bodyDigest(ev.body)) !== ev.hash) problems.push(`event ${ev.seq}: body and prev_hash do not hash to its hash`);
    else eventHash.set(ev.seq, ev.hash);
  }

  const lastLink = proof.links.at(-1)?.seq ?? 0;
  for (const [seq, start] of eventHash) {
    let hash = start;
    let k = seq;
    while (!signed.has(k)) {
      k += 1;
      const link = links.get(k);
      if (!link || k > lastLink) {
        problems.push(`event ${seq}: the chain breaks at seq ${k} before reaching a signed checkpoint`);
        break;
      }
      hash = linkHash(hash, link.digest);
      if (hash !== link.hash) problems.push(`link ${k}: hash differs from the chain recomputed from event ${seq}`);
      const other = eventHash.get(k);
      if (other !== undefined && other !== hash) problems.push(`event ${k}: hash differs from the chain recomputed from event ${seq}`);
    }
    if (signed.has(k) && signed.get(k) !== hash) problems.push(`checkpoint ${k}: signed hash differs from the chain recomputed from event ${seq}`);
  }
}
