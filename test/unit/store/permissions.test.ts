/**
 * The data dir is private to the gateway's user whatever the umask: created
 * 0700 with the database, its WAL, shm and lock 0600 (a permissive umask
 * included); a data dir left 0755 / 0644 is tightened at open and the store
 * says what it changed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DB_FILE } from '../../../store/index.ts';
import { openTestStore, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { tenant_created } from '../../../schema/reducers.ts';

const mode = (p: string): string => (fs.statSync(p).mode & 0o777).toString(8);

function withUmask<R>(mask: number, fn: () => R): R {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

test('a new data dir is 0700 and the database, WAL, shm and lock are 0600, even under umask 000', async (t) => {
  const dir = path.join(tmpDir(), 'nested', 'data');
  const store = withUmask(0o000, () => openTestStore({ dataDir: dir }));
  t.after(() => store.close());
  await withUmask(0o000, () => store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  assert.equal(mode(dir), '700');
  const files = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}.lock`];
  assert.deepEqual(files.map((f) => [f, mode(path.join(dir, f))]), files.map((f) => [f, '600']));
  assert.equal(mode(path.join(dir, 'keys')), '700');
  assert.deepEqual(store.tightened, [], 'nothing to tighten on a new data dir');
  for (const e of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const m = fs.statSync(path.join(dir, e)).mode & 0o077;
    assert.equal(m, 0, `${e} is private`);
  }
});

test('an existing data dir left 0755 with 0644 files is tightened at open, and the store lists what it changed', async (t) => {
  const dir = tmpDir();
  const first = openTestStore({ dataDir: dir });
  await first.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  first.close();
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, DB_FILE), 0o644);
  fs.mkdirSync(path.join(dir, 'recordings', 'acme'), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(dir, 'recordings'), 0o755);
  fs.writeFileSync(path.join(dir, 'recordings', 'acme', 'r.sbrec'), 'x', { mode: 0o644 });
  const store = openTestStore({ dataDir: dir });
  t.after(() => store.close());
  assert.deepEqual([mode(dir), mode(path.join(dir, DB_FILE)), mode(path.join(dir, 'recordings')), mode(path.join(dir, 'recordings', 'acme', 'r.sbrec'))], ['700', '600', '700', '600']);
  assert.deepEqual(
    [...store.tightened].sort(),
    [dir, path.join(dir, DB_FILE), path.join(dir, 'recordings'), path.join(dir, 'recordings', 'acme'), path.join(dir, 'recordings', 'acme', 'r.sbrec')].sort(),
  );
  assert.equal(mode(path.join(dir, `${DB_FILE}-wal`)), '600');
});
