import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { chainHash, commandBody, decodeEvent } from '../../../store/log.ts';
import { DB_FILE, reducerFactory, resolveDurability, Store, StoreError, type SchemaDef } from '../../../store/index.ts';
import { tally, tallySchema } from '../../helpers/tally-schema.ts';
import { openTestStore, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { number_added, tenant_created } from '../../../schema/reducers.ts';

const A = { tenant: 'a', caller: 'alice' };
const open = (dataDir: string, schema: SchemaDef = tallySchema as unknown as SchemaDef) =>
  Store.open({ dataDir, schema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, checkpointEvery: 10, node: 'n1' });

async function fill(dir: string, n: number): Promise<void> {
  const store = open(dir);
  try {
    for (let i = 0; i < n; i++) await store.submitNamed(i % 7 === 3 ? 'put_then_fail' : 'put', { id: `k${i}`, n: i }, A);
  } finally {
    store.close();
  }
}

test('verify passes on an untouched log and signs checkpoints every N events', async (t) => {
  const dir = tmpDir();
  await fill(dir, 35);
  const store = open(dir);
  t.after(() => store.close());
  const report = store.verify();
  assert.equal(report.ok, true, report.problems.join('\n'));
  assert.equal(report.events, 35);
  assert.ok(report.checkpoints >= 3, `expected ≥3 checkpoints, got ${report.checkpoints}`);
  assert.equal(report.firstBadSeq, null);
  store.close();
  const keyFile = path.join(dir, 'keys', 'node-ed25519.pem');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600, 'node key is private');
});

test('tampering with one stored event is caught by verify at that seq', async (t) => {
  const dir = tmpDir();
  await fill(dir, 30);
  const raw = new Database(path.join(dir, DB_FILE));
  raw.prepare(`UPDATE _events SET args = '{"id":"k17","n":1000000}' WHERE seq = 18`).run();
  raw.close();
  const store = open(dir);
  t.after(() => store.close());
  const report = store.verify();
  assert.equal(report.ok, false);
  assert.equal(report.firstBadSeq, 18);
  assert.match(report.problems[0] ?? '', /seq 18: .*tampered/);
});

test('rewriting the chain after a tamper is caught by the signed checkpoints', async (t) => {
  const dir = tmpDir();
  await fill(dir, 30);
  const raw = new Database(path.join(dir, DB_FILE));
  // The attacker edits seq 12 and recomputes every later hash so the chain links again.
  const rows = raw.prepare('SELECT * FROM _events ORDER BY seq').all() as Parameters<typeof decodeEvent>[0][];
  let prev = '0'.repeat(64);
  const upd = raw.prepare('UPDATE _events SET args = ?, prev_hash = ?, hash = ? WHERE seq = ?');
  for (const r of rows) {
    const ev = decodeEvent(r);
    if (ev.seq === 12) ev.args = { id: 'k11', n: -1 };
    const hash = chainHash(prev, commandBody(ev, ev.outcome));
    upd.run(JSON.stringify(ev.args), prev, hash, ev.seq);
    prev = hash;
  }
  raw.close();
  const store = open(dir);
  t.after(() => store.close());
  const report = store.verify();
  assert.equal(report.ok, false);
  assert.equal(report.firstBadSeq, 20, 'the first signed checkpoint after the edit no longer matches');
  assert.match(report.problems.join('\n'), /checkpoint hash does not match/);
});

test('deleting the newest events is caught (checkpoint beyond head / applied_seq)', async (t) => {
  const dir = tmpDir();
  await fill(dir, 25);
  const raw = new Database(path.join(dir, DB_FILE));
  raw.prepare('DELETE FROM _events WHERE seq > 20').run();
  raw.prepare(`UPDATE _meta SET value = '20' WHERE key = 'applied_seq'`).run();
  raw.prepare('DELETE FROM _checkpoints WHERE seq > 20').run();
  raw.close();
  // Truncation at a checkpoint boundary is only detectable with an external anchor; a
  // torn truncation (applied_seq not adjusted) must be refused at start.
  const raw2 = new Database(path.join(dir, DB_FILE));
  raw2.prepare('DELETE FROM _events WHERE seq > 18').run();
  raw2.close();
  assert.throws(() => open(dir), (e: unknown) => e instanceof StoreError && e.code === 'log_inconsistent');
});

test('replay rebuilds the same tables and outcomes from the log', async (t) => {
  const dir = tmpDir();
  await fill(dir, 40);
  const store = open(dir);
  t.after(() => store.close());
  const report = store.replay();
  assert.equal(report.ok, true, JSON.stringify(report.outcomeMismatches));
  assert.equal(report.liveDigest, report.replayDigest);
  assert.equal(report.tables.tally?.live, report.tables.tally?.replayed);
});

test('replay catches a non-deterministic reducer and a table written outside the log', async (t) => {
  let counter = 0; // module state: exactly what reducers must not use
  const r = reducerFactory<{ tally: typeof tally }>();
  const bad = r('put_counted', z.object({ id: z.string() }), (ctx, a) => {
    counter++;
    ctx.db.tally.insert({ id: a.id, tenant: ctx.tenant, color: 'red', n: counter, tags: [], flag: false, note: null });
  });
  const schema = { version: 1, tables: { tally }, reducers: [bad] } as unknown as SchemaDef;
  const dir = tmpDir();
  const store = open(dir, schema);
  t.after(() => store.close());
  for (const id of ['a', 'b', 'c']) await store.submitNamed('put_counted', { id }, A);
  const report = store.replay();
  assert.equal(report.ok, false);
  assert.equal(report.tables.tally?.same, false);
  store.close();

  const dir2 = tmpDir();
  await fill(dir2, 5);
  const raw = new Database(path.join(dir2, DB_FILE));
  raw.prepare(`UPDATE tally SET n = 999 WHERE id = 'k1'`).run();
  raw.close();
  const s2 = open(dir2);
  t.after(() => s2.close());
  assert.equal(s2.verify().ok, true, 'the log itself is intact');
  assert.equal(s2.replay().ok, false, 'but the table no longer matches it');
});

test('a database locked by another process: a clear error at start', async (t) => {
  const dir = tmpDir();
  await fill(dir, 1);
  const holder = path.join(import.meta.dirname, '..', '..', 'helpers', 'hold-store.ts');
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', holder, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('holding') && resolve());
      child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    assert.throws(
      () => open(dir),
      (e: unknown) => e instanceof StoreError && e.code === 'database_locked' && /another switchboard/.test(e.message),
    );
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((r) => child.once('exit', r));
  const after = open(dir);
  t.after(() => after.close());
  assert.equal(after.head.seq, 1, 'usable again once the other process is gone');
});

test('a corrupt or truncated database file: refuse to start with a clear message, and leave it as it was', async () => {
  const garbage = tmpDir();
  fs.writeFileSync(path.join(garbage, DB_FILE), Buffer.alloc(8192, 0x5a));
  assert.throws(() => open(garbage), (e: unknown) => e instanceof StoreError && e.code === 'database_corrupt' && /not a valid Switchboard database/.test(e.message));

  const tiny = tmpDir();
  fs.writeFileSync(path.join(tiny, DB_FILE), 'SQLite format 3\0');
  assert.throws(() => open(tiny), (e: unknown) => e instanceof StoreError && e.code === 'database_corrupt' && /truncated/.test(e.message));

  const cut = tmpDir();
  await fill(cut, 300);
  const file = path.join(cut, DB_FILE);
  const size = fs.statSync(file).size;
  fs.truncateSync(file, Math.floor(size / 2));
  const before = fs.readFileSync(file);
  assert.throws(() => open(cut), (e: unknown) => e instanceof StoreError && e.code === 'database_corrupt');
  assert.deepEqual(fs.readFileSync(file), before, 'the damaged file is not modified');
});

test('the CLI names the first bad seq', async (t) => {
  const dir = tmpDir();
  const store = openTestStore({ dataDir: dir });
  t.after(() => store.close());
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  for (let i = 0; i < 10; i++) await store.submit(number_added, { number: `+1555000000${i}`, agent: 'default' }, T);
  store.close();
  const raw = new Database(path.join(dir, DB_FILE));
  raw.prepare(`UPDATE _events SET outcome = '{"ok":true}' WHERE seq = 4`).run();
  raw.close();
  const cli = path.join(import.meta.dirname, '..', '..', '..', 'cli', 'main.ts');
  const run = (): { code: number; out: string } => {
    try {
      return { code: 0, out: execFileSync(process.execPath, ['--import', 'tsx', cli, 'verify', '--data-dir', dir], { encoding: 'utf8' }) };
    } catch (err) {
      const e = err as { status: number; stdout: string };
      return { code: e.status, out: e.stdout };
    }
  };
  const { code, out } = run();
  assert.equal(code, 1);
  assert.match(out, /first bad seq: 4/);
});
