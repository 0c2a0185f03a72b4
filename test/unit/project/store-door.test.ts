/**
 * One door for SQL: only store/ touches the SQLite handle or writes SQL. Every other production folder reads
 * through `store.read(tenant)` / `store.query(tenant)` and writes through reducers; the derived indexes are
 * declared as data (schema/search.ts) and the store owns their SQL. This check greps the production sources
 * (comments stripped) for:
 *
 *   - `<something store-ish>.db` or `.db.prepare/exec/pragma/…` on a handle (a reducer's `ctx.db.<table>` is fine),
 *   - `.prepare(` at all, and `.exec(` given a string that holds SQL,
 *   - SQL DDL in a string (CREATE TABLE / VIRTUAL TABLE / INDEX / TRIGGER / VIEW),
 *   - SQL naming the store's private tables (`_events`, `_meta`, `_checkpoints`, `_nodes`, `_derived`),
 *   - imports of better-sqlite3 or of store/testing.ts (the tests' escape hatch).
 *
 * Tests, bench and scripts may reach under the store (through store/testing.ts); they are not scanned.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sourceFiles } from '../../../scripts/sources.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const PRODUCTION = ['agents', 'api', 'bridge', 'campaigns', 'cli', 'consent', 'ingress', 'media', 'recording', 'schema', 'speech'];

const SQL = String.raw`\b(?:SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH|BEGIN|COMMIT|ROLLBACK|VACUUM|ATTACH)\b`;
const RULES: Array<{ what: string; re: RegExp }> = [
  { what: 'a store\'s SQLite handle (.db)', re: /\b(?:store|this\.store|ctx\.store|app\.store|deps\.store|s)\??\.db\b/i },
  { what: 'a database method on .db', re: /\.db\??\.(?:prepare|exec|pragma|transaction|function|aggregate|backup|serialize|close|loadExtension|inTransaction)\b/ },
  { what: 'prepare()', re: /\.prepare\s*\(/ },
  { what: 'exec() of SQL', re: new RegExp(String.raw`\.exec\s*\(\s*[\`'"][^\`'"]*` + SQL, 'i') },
  { what: 'SQL on the store\'s private tables', re: /\b(?:FROM|JOIN|INTO|ON|UPDATE|TABLE|INDEXED BY)\s+["`]?_(?:events|meta|checkpoints|nodes|derived)\b/i },
  { what: 'SQL DDL in a string', re: /[`'"]\s*CREATE\s+(?:VIRTUAL\s+TABLE|TABLE|UNIQUE\s+INDEX|INDEX|TRIGGER|VIEW)\b/i },
  { what: 'better-sqlite3', re: /from\s+['"]better-sqlite3['"]|require\(\s*['"]better-sqlite3['"]\s*\)/ },
  { what: 'store/testing.ts (tests only)', re: /from\s+['"][^'"]*store\/testing(?:\.ts)?['"]/ },
];

/** Comments out, strings kept: a header comment may speak of SQL; code may not run it. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:\\'"`])\/\/.*$/gm, '$1');
}

/** `file:line: rule: text` for every line of `src` that breaks a rule. */
export function doorViolations(file: string, src: string): string[] {
  const out: string[] = [];
  stripComments(src)
    .split('\n')
    .forEach((line, i) => {
      for (const rule of RULES) if (rule.re.test(line)) out.push(`${file}:${i + 1}: ${rule.what}: ${line.trim().slice(0, 160)}`);
    });
  return out;
}

function sources(dir: string): string[] {
  return sourceFiles([path.relative(ROOT, dir)], { root: ROOT }).map((f) => f.abs);
}

test('no production folder outside store/ touches the SQLite handle or writes SQL', () => {
  const files = PRODUCTION.flatMap((d) => sources(path.join(ROOT, d)));
  assert.ok(files.length > 100, `scanned ${files.length} files`);
  const found = files.flatMap((f) => doorViolations(path.relative(ROOT, f), readFileSync(f, 'utf8')));
  assert.deepEqual(found, [], `read through store.query(tenant) / store.read(tenant); declare derived indexes in schema/:\n${found.join('\n')}`);
});

test('the check catches what the code did before the store had one door', () => {
  // Lines as they stood in api/queries/calls.ts, api/evidence/proof.ts and schema/search.ts.
  const before = [
    `    this.db = store.db;`,
    `  return store.db.prepare(CALL_EVENTS_SQL).pluck().all({ call: callId }) as number[];`,
    `  if (!stmt) byKey.set(key, (stmt = db.prepare(sql())));`,
    "    `CREATE INDEX _events_subject ON _events (${SUBJECT}) WHERE ${SUBJECT} IS NOT NULL`,",
    "  SELECT seq FROM _events WHERE reducer = 'call_received' AND json_extract(outcome, '$.result.call_id') = @call",
    "    `CREATE VIRTUAL TABLE ${TRANSCRIPT_FTS} USING fts5(text, segment_id UNINDEXED, call_id UNINDEXED)`,",
    `import type Database from 'better-sqlite3';`,
    `  db.exec('DELETE FROM calls');`,
    `import { databaseOf } from '../store/testing.ts';`,
  ];
  for (const line of before) assert.equal(doorViolations('x.ts', line).length > 0, true, `not caught: ${line}`);
  // What production code does and may keep doing.
  const fine = [
    `    ctx.db.calls.update(a.call_id, { state: 'ended' });`,
    `  const m = /^Bearer\\s+(\\S+)$/i.exec(auth.trim());`,
    `  const rows = store.query(p.tenant).from('calls').where({ state: 'active' }).all();`,
    `  const call = store.read(tenant).calls.get(id);`,
    `/** Reads go through store.query; the store runs SELECT … FROM _events for it. */`,
  ];
  for (const line of fine) assert.deepEqual(doorViolations('x.ts', line), [], line);
});
