/**
 * The change journal: the row changes of recent commits, with their seq, on disk — what lets a subscription
 * resume after a reconnect or a restart (`{type:'subscribe', …, since}`, api/subscribe.ts) with exactly the deltas
 * it missed. The log holds commands, not row changes; re-deriving changes would mean rebuilding the tables as they
 * were at `since`, so the engine writes each committed command's changes here instead.
 *
 *   BEGIN · (reducer · event · changes)* · applied_seq · COMMIT        (the batch transaction, store/engine.ts)
 *
 *   _changes(seq, idx, tbl, op, old, new)     one row per change, in apply order; old/new as JSON
 *   _meta.changes_floor = F                   every change committed with a seq > F is in the journal
 *
 * Written in the batch transaction, the journal holds exactly what committed — a `kill -9` loses neither rows nor
 * their changes, and a batch rolled back by a storage fault leaves nothing here. Bounded: once the head is
 * `window + PRUNE_STEP` past the floor, changes at or below `head − window` are deleted in that same transaction and
 * the floor raised. A database from before the journal starts it at its head (floor = head): older resumes are
 * answered with a snapshot. In cluster mode every node applies the same log, so a seq names the same changes on
 * every node; only the floor may differ (a node restored from another's snapshot has that node's journal).
 *
 * `read` returns a table's changes in (since, to], or why it cannot: `too_old` (since < floor), `too_many_changes`
 * (more than `limit`: a snapshot is cheaper than replaying them).
 */
import type Database from 'better-sqlite3';
import type { ChangeOp, Row, RowChange } from './accessor.ts';

export const CHANGES_DDL = [
  `CREATE TABLE IF NOT EXISTS _changes (
     seq INTEGER NOT NULL, idx INTEGER NOT NULL, tbl TEXT NOT NULL, op TEXT NOT NULL, old TEXT, new TEXT,
     PRIMARY KEY (seq, idx)) WITHOUT ROWID`,
  'CREATE INDEX IF NOT EXISTS _changes_tbl_seq ON _changes (tbl, seq)',
];

const FLOOR_KEY = 'changes_floor';
/** Default number of seqs whose changes are kept. */
export const DEFAULT_CHANGE_WINDOW = 50_000;
/** Pruning runs once the journal has grown this many seqs past its window (amortised, never per batch). */
const PRUNE_STEP = 1_000;
/** Default cap on the changes one resume replays; more is answered with a snapshot. */
export const DEFAULT_RESUME_LIMIT = 20_000;

export type ResumeRefusal = 'too_old' | 'too_many_changes';
export type JournalRead = { ok: true; changes: Array<{ seq: number; change: RowChange }> } | { ok: false; reason: ResumeRefusal };

interface RawChange {
  seq: number;
  tbl: string;
  op: string;
  old: string | null;
  new: string | null;
}

export class ChangeJournal {
  private readonly insertStmt: Database.Statement;
  private readonly readStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;
  private readonly setFloorStmt: Database.Statement;
  private readonly floorStmt: Database.Statement;
  private floorSeq: number;

  constructor(
    db: Database.Database,
    head: number,
    private readonly window = DEFAULT_CHANGE_WINDOW,
  ) {
    for (const sql of CHANGES_DDL) db.exec(sql);
    this.insertStmt = db.prepare('INSERT INTO _changes (seq, idx, tbl, op, old, new) VALUES (?, ?, ?, ?, ?, ?)');
    this.readStmt = db.prepare('SELECT seq, tbl, op, old, new FROM _changes WHERE tbl = ? AND seq > ? AND seq <= ? ORDER BY seq, idx LIMIT ?');
    this.pruneStmt = db.prepare('DELETE FROM _changes WHERE seq <= ?');
    this.setFloorStmt = db.prepare(`INSERT INTO _meta (key, value) VALUES ('${FLOOR_KEY}', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
    this.floorStmt = db.prepare(`SELECT value FROM _meta WHERE key = '${FLOOR_KEY}'`);
    const stored = this.floorStmt.get() as { value: string } | undefined;
    if (stored) this.floorSeq = Number(stored.value);
    else {
      this.floorSeq = head;
      this.setFloorStmt.run(String(head));
    }
  }

  /** Every change committed after this seq is in the journal. */
  get floor(): number {
    return this.floorSeq;
  }

  /**
   * Inside the batch transaction: records the batch's changes and prunes past the window. A storage fault rolls
   * this back with the batch, and `resync` then takes the floor back from the database.
   */
  append(commands: ReadonlyArray<{ seq: number; changes: RowChange[] }>, lastSeq: number): void {
    for (const { seq, changes } of commands) {
      changes.forEach((c, idx) => {
        this.insertStmt.run(seq, idx, c.table, c.op, c.old ? JSON.stringify(c.old) : null, c.new ? JSON.stringify(c.new) : null);
      });
    }
    if (lastSeq - this.floorSeq >= this.window + PRUNE_STEP) {
      const floor = lastSeq - this.window;
      this.pruneStmt.run(floor);
      this.setFloorStmt.run(String(floor));
      this.floorSeq = floor;
    }
  }

  /** After a batch was rolled back (storage fault): the floor is what the database says, not what the batch set. */
  resync(): void {
    this.floorSeq = Number((this.floorStmt.get() as { value: string } | undefined)?.value ?? this.floorSeq);
  }

  /** `table`'s changes committed in (since, to], in commit order, or why a snapshot is needed instead. */
  read(table: string, since: number, to: number, limit = DEFAULT_RESUME_LIMIT): JournalRead {
    if (since < this.floorSeq) return { ok: false, reason: 'too_old' };
    const raw = this.readStmt.all(table, since, to, limit + 1) as RawChange[];
    if (raw.length > limit) return { ok: false, reason: 'too_many_changes' };
    return {
      ok: true,
      changes: raw.map((r) => ({
        seq: r.seq,
        change: { table: r.tbl, op: r.op as ChangeOp, old: r.old === null ? null : (JSON.parse(r.old) as Row), new: r.new === null ? null : (JSON.parse(r.new) as Row) },
      })),
    };
  }
}
