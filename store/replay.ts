/**
 * `replay`: rebuilds every table from the log into a fresh database, running
 * the same `applyCommand` the live engine runs, then compares each outcome with
 * the recorded one and the rebuilt table digest with the live digest. A
 * mismatch means a reducer is not deterministic or a table was written outside
 * the log.
 */
import Database from 'better-sqlite3';
import { TableStatements } from './accessor.ts';
import { canonicalJson } from './canonical.ts';
import { createDerived } from './derived.ts';
import { tableDigest } from './digest.ts';
import { CommandApplier } from './applier.ts';
import type { EventLog } from './log.ts';
import type { ReducerDef, SchemaDef, Tables } from './reducer.ts';
import { addedColumnsDdl, q, tableDdl } from './table.ts';

export interface ReplayReport {
  ok: boolean;
  events: number;
  outcomeMismatches: Array<{ seq: number; recorded: string; replayed: string }>;
  liveDigest: string;
  replayDigest: string;
  tables: Record<string, { live: number; replayed: number; same: boolean }>;
}

export function createTables(db: Database.Database, schema: SchemaDef): Map<string, TableStatements> {
  for (const def of Object.values(schema.tables)) {
    for (const sql of tableDdl(def)) db.exec(sql);
    const existing = new Set((db.prepare(`PRAGMA table_info(${q(def.name)})`).all() as Array<{ name: string }>).map((r) => r.name));
    for (const sql of addedColumnsDdl(def, existing)) db.exec(sql);
  }
  createDerived(db, schema.derived ?? [], new Map(Object.values(schema.tables).map((def) => [def.name, def])));
  return new Map(Object.entries(schema.tables).map(([name, def]) => [name, new TableStatements(db, def)]));
}

export function replayLog(live: Database.Database, log: EventLog, schema: SchemaDef, target = ':memory:'): ReplayReport {
  const fresh = new Database(target);
  try {
    fresh.pragma('journal_mode = WAL');
    fresh.pragma('synchronous = OFF');
    const statements = createTables(fresh, schema);
    const reducers = new Map<string, ReducerDef<Tables>>(schema.reducers.map((r) => [r.name, r as ReducerDef<Tables>]));
    const applier = new CommandApplier(statements, reducers);
    const mismatches: ReplayReport['outcomeMismatches'] = [];
    let events = 0;
    const BATCH = 5000;
    let pending: ReturnType<typeof log.get>[] = [];
    const flush = (): void => {
      fresh.transaction(() => {
        for (const ev of pending) {
          if (!ev) continue;
          const outcome = applier.apply(ev, ev.seq, []);
          const a = canonicalJson(ev.outcome);
          const b = canonicalJson(outcome);
          if (a !== b && mismatches.length < 100) mismatches.push({ seq: ev.seq, recorded: a, replayed: b });
        }
      })();
      pending = [];
    };
    for (const ev of log.iterate()) {
      events++;
      pending.push(ev);
      if (pending.length >= BATCH) flush();
    }
    flush();
    const defs = Object.values(schema.tables);
    const a = tableDigest(live, defs);
    const b = tableDigest(fresh, defs);
    const tables: ReplayReport['tables'] = {};
    for (const name of Object.keys(a.tables)) {
      const l = a.tables[name];
      const r = b.tables[name];
      tables[name] = { live: l?.rows ?? 0, replayed: r?.rows ?? 0, same: l?.digest === r?.digest };
    }
    return {
      ok: mismatches.length === 0 && a.digest === b.digest,
      events,
      outcomeMismatches: mismatches,
      liveDigest: a.digest,
      replayDigest: b.digest,
      tables,
    };
  } finally {
    fresh.close();
  }
}
