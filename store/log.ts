/**
 * The command log: ordered, hash-chained events. In the embedded backend it is
 * the `_events` table of the same SQLite file as the tables, appended inside the
 * same transaction that applies the commands (so a table never runs ahead of,
 * or behind, the log).
 *
 *   body(n)   = canonicalJson({ command, outcome })
 *   digest(n) = sha256(body(n))                       (hex)
 *   hash(n)   = sha256(hash(n-1) ‖ digest(n))        (hex ‖ hex, ASCII)
 *   hash(0)   = 64 × "0"
 *
 * Chaining the body's digest rather than the body lets a proof for one
 * call's events link them to a signed checkpoint through the digests of the
 * events in between, without revealing those events (other calls, other
 * tenants). An auditor recomputes it with `sha256sum` alone.
 */
import { hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { canonicalJson, type Json } from './canonical.ts';

export const GENESIS_HASH = '0'.repeat(64);

export interface Command {
  /** Idempotency key: uuid v7 by default, or a caller-chosen stable key. */
  id: string;
  ts: number;
  node: string;
  tenant: string;
  caller: string;
  reducer: string;
  args: Json;
}

export type Outcome =
  | { ok: true; result?: Json }
  | { ok: false; error: { code: string; message: string } };

export interface LogEvent extends Command {
  seq: number;
  outcome: Outcome;
  prevHash: string;
  hash: string;
}

export function commandBody(command: Command, outcome: Outcome): string {
  return commandBodyFrom(command, canonicalJson(command.args), canonicalJson(outcome));
}

/**
 * The same bytes as `canonicalJson({ command, outcome })`, assembled from the
 * already-canonical args and outcome (keys in sorted order) so the hot path
 * serialises each once. A unit test pins the equivalence.
 */
export function commandBodyFrom(c: Command, argsJson: string, outcomeJson: string): string {
  const str = JSON.stringify;
  if (!Number.isFinite(c.ts)) throw new TypeError('command ts must be finite');
  return `{"command":{"args":${argsJson},"caller":${str(c.caller)},"id":${str(c.id)},"node":${str(c.node)},"reducer":${str(c.reducer)},"tenant":${str(c.tenant)},"ts":${str(c.ts)}},"outcome":${outcomeJson}}`;
}

export function bodyDigest(body: string): string {
  return hash('sha256', body, 'hex');
}

export function chainHash(prevHash: string, body: string): string {
  return linkHash(prevHash, bodyDigest(body));
}

/** One link of the chain from the previous hash and an event's body digest. */
export function linkHash(prevHash: string, digest: string): string {
  // One-shot over the concatenation: the same bytes as update(prevHash).update(digest), without a Hash object.
  return hash('sha256', prevHash + digest, 'hex');
}

/** An `_events` row as stored (args and outcome as canonical JSON text). */
export interface RawEvent {
  seq: number;
  id: string;
  ts: number;
  node: string;
  tenant: string;
  caller: string;
  reducer: string;
  args: string;
  outcome: string;
  prev_hash: string;
  hash: string;
}

export const LOG_DDL = [
  `CREATE TABLE IF NOT EXISTS _events (
     seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts INTEGER NOT NULL, node TEXT NOT NULL,
     tenant TEXT NOT NULL, caller TEXT NOT NULL, reducer TEXT NOT NULL, args TEXT NOT NULL,
     outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
];

export function decodeEvent(raw: RawEvent): LogEvent {
  return {
    seq: raw.seq,
    id: raw.id,
    ts: raw.ts,
    node: raw.node,
    tenant: raw.tenant,
    caller: raw.caller,
    reducer: raw.reducer,
    args: JSON.parse(raw.args) as Json,
    outcome: JSON.parse(raw.outcome) as Outcome,
    prevHash: raw.prev_hash,
    hash: raw.hash,
  };
}

export class EventLog {
  private readonly insertStmt: Database.Statement;
  private readonly byIdStmt: Database.Statement;
  private readonly bySeqStmt: Database.Statement;
  private readonly headStmt: Database.Statement;
  private readonly rangeStmt: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO _events (seq, id, ts, node, tenant, caller, reducer, args, outcome, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.byIdStmt = db.prepare('SELECT seq, outcome FROM _events WHERE id = ?');
    this.bySeqStmt = db.prepare('SELECT * FROM _events WHERE seq = ?');
    this.headStmt = db.prepare('SELECT seq, hash FROM _events ORDER BY seq DESC LIMIT 1');
    this.rangeStmt = db.prepare('SELECT * FROM _events WHERE seq >= ? AND seq <= ? ORDER BY seq');
  }

  /** Appends with the args and outcome already in canonical JSON (the apply loop's path: no event object built). */
  appendRaw(c: Command, seq: number, argsJson: string, outcomeJson: string, prevHash: string, hash: string): void {
    this.insertStmt.run(seq, c.id, c.ts, c.node, c.tenant, c.caller, c.reducer, argsJson, outcomeJson, prevHash, hash);
  }

  append(event: LogEvent, argsJson = canonicalJson(event.args), outcomeJson = canonicalJson(event.outcome)): void {
    this.insertStmt.run(
      event.seq,
      event.id,
      event.ts,
      event.node,
      event.tenant,
      event.caller,
      event.reducer,
      argsJson,
      outcomeJson,
      event.prevHash,
      event.hash,
    );
  }

  /** The recorded outcome of a command id, if it was ever applied. */
  outcomeOf(id: string): { seq: number; outcome: Outcome } | undefined {
    const raw = this.byIdStmt.get(id) as { seq: number; outcome: string } | undefined;
    return raw && { seq: raw.seq, outcome: JSON.parse(raw.outcome) as Outcome };
  }

  get(seq: number): LogEvent | undefined {
    const raw = this.bySeqStmt.get(seq) as RawEvent | undefined;
    return raw && decodeEvent(raw);
  }

  head(): { seq: number; hash: string } {
    const raw = this.headStmt.get() as { seq: number; hash: string } | undefined;
    return raw ?? { seq: 0, hash: GENESIS_HASH };
  }

  /** Iterates events in seq order without loading the log into memory. */
  *iterate(fromSeq = 1, toSeq = Number.MAX_SAFE_INTEGER): Generator<LogEvent> {
    for (const raw of this.rangeStmt.iterate(fromSeq, toSeq)) yield decodeEvent(raw as RawEvent);
  }
}
