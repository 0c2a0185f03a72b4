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
 * a call: those `CALL_EVENTS_SQL` finds (args.call_id, call_received's result)
 * plus those naming the call's consents, recordings or agent actions by id
 * (consent_decided, recording_finalized, agent_action_completed, …), which
 * carry no call_id; the latter is a scan of the log from the call's first event.
 */
import crypto from 'node:crypto';
import { CALL_EVENTS_SQL, type SwitchboardTables } from '../../schema/index.ts';
import { checkpointPayload } from '../../store/checkpoint.ts';
import { bodyDigest, commandBody, commandBodyFrom, decodeEvent, linkHash, type LogEvent } from '../../store/log.ts';
import type { Store } from '../../store/index.ts';

export const CALL_PROOF_FORMAT = 'switchboard-call-proof/1';

export interface ProofEvent extends LogEvent {
  /** canonicalJson({command, outcome}): the bytes whose sha256 is the event's digest. */
  body: string;
}

export interface ProofLink {
  seq: number;
  digest: string;
  hash: string;
}

export interface ProofCheckpoint {
  seq: number;
  node: string;
  hash: string;
  /** Base64 Ed25519 signature over `payload`. */
  signature: string;
  payload: string;
}

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

type RawEvent = Parameters<typeof decodeEvent>[0];

const rawBody = (raw: RawEvent): string =>
  commandBodyFrom({ id: raw.id, ts: raw.ts, node: raw.node, tenant: raw.tenant, caller: raw.caller, reducer: raw.reducer, args: null }, raw.args, raw.outcome);

/** The seqs of the call's events, ascending (the call, its consents, recordings and actions). */
function callEventSeqs(store: Store<SwitchboardTables>, callId: string): number[] {
  return store.db.prepare(CALL_EVENTS_SQL).pluck().all({ call: callId }) as number[];
}

/**
 * The proof for `callId` as seen by `tenant`, or null when the tenant has no
 * such call. Signs a checkpoint first when none covers the call's newest event.
 */
export function buildCallProof(store: Store<SwitchboardTables>, tenant: string, callId: string): CallProof | null {
  if (!store.read(tenant).calls.get(callId)) return null;
  const db = store.db;
  const bySeq = db.prepare('SELECT * FROM _events WHERE seq = ?');
  const range = db.prepare('SELECT * FROM _events WHERE seq BETWEEN ? AND ? ORDER BY seq');
  const cpAfter = db.prepare('SELECT seq, node, hash, signature FROM _checkpoints WHERE node = ? AND seq >= ? ORDER BY seq LIMIT 1');
  type CpRow = { seq: number; node: string; hash: string; signature: string };

  const events: ProofEvent[] = [];
  for (const seq of callEventSeqs(store, callId)) {
    const raw = bySeq.get(seq) as RawEvent | undefined;
    if (raw && raw.tenant === tenant) events.push({ ...decodeEvent(raw), body: rawBody(raw) });
  }
  const newest = events.at(-1);
  if (!newest) return null;
  if (!cpAfter.get(store.node, newest.seq)) store.checkpointNow();

  const checkpoints = new Map<number, ProofCheckpoint>();
  const ranges: Array<[number, number]> = [];
  for (const ev of events) {
    const cp = cpAfter.get(store.node, ev.seq) as CpRow | undefined;
    if (!cp) throw new Error(`evidence: no checkpoint of node ${store.node} covers event ${ev.seq}`);
    const payload = checkpointPayload(cp.node, cp.seq, cp.hash).toString('utf8');
    checkpoints.set(cp.seq, { seq: cp.seq, node: cp.node, hash: cp.hash, signature: cp.signature, payload });
    const last = ranges.at(-1);
    if (ev.seq >= cp.seq) continue;
    if (last && ev.seq + 1 <= last[1] + 1) last[1] = Math.max(last[1], cp.seq);
    else ranges.push([ev.seq + 1, cp.seq]);
  }
  const links: ProofLink[] = [];
  for (const [from, to] of ranges) {
    for (const raw of range.iterate(from, to) as Iterable<RawEvent>) links.push({ seq: raw.seq, digest: bodyDigest(rawBody(raw)), hash: raw.hash });
  }
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
