/**
 * A digest of every table's contents: sha256 over the tables in name order,
 * each row in primary-key order as canonical JSON. Two databases with the same
 * digest hold the same state; `replay` compares the live digest with one
 * rebuilt from the log.
 */
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { canonicalJson } from './canonical.ts';
import { decodeRow, q, type AnyTableDef } from './table.ts';

export interface TableDigest {
  digest: string;
  tables: Record<string, { rows: number; digest: string }>;
}

export function tableDigest(db: Database.Database, tables: Iterable<AnyTableDef>): TableDigest {
  const all = createHash('sha256');
  const out: TableDigest['tables'] = {};
  for (const def of [...tables].sort((a, b) => a.name.localeCompare(b.name))) {
    const h = createHash('sha256');
    let rows = 0;
    const stmt = db.prepare(`SELECT * FROM ${q(def.name)} ORDER BY ${q(def.primaryKey)}`);
    for (const raw of stmt.iterate()) {
      h.update(canonicalJson(decodeRow(def, raw as Record<string, unknown>)));
      h.update('\n');
      rows++;
    }
    const digest = h.digest('hex');
    out[def.name] = { rows, digest };
    all.update(`${def.name}:${digest}\n`);
  }
  return { digest: all.digest('hex'), tables: out };
}
