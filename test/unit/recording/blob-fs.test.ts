/**
 * FsBlobStore: key validation refuses traversal, puts are atomic (readers and
 * a kill -9 mid-put never see a partial blob), ranges, idempotent delete, and
 * a full disk (a real 64 KiB tmpfs) surfaces as NO_SPACE leaving the old blob.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BlobStoreError, FsBlobStore } from '../../../recording/blob-fs.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { mountTinyTmpfs } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./blob-put-child.ts', import.meta.url));

function code(c: string) {
  return (e: unknown) => e instanceof BlobStoreError && e.code === c;
}

test('keys that could escape the store are refused before touching the disk', async () => {
  const dataDir = tmpDir('sb-blob-');
  const store = new FsBlobStore(dataDir);
  const bad = [
    '', '..', '../x', 'a/../../x', 'a/..', '/etc/passwd', './x', 'a/./b', '.hidden', 'a/.x', 'a//b', 'a/', 'a\\..\\b',
    'x\u0000y', 'x y', '~/x', 'a/b/c/d/e/f/g/h/i', 'x'.repeat(129), 'C:x',
  ];
  for (const key of bad) {
    await assert.rejects(store.put(key, Buffer.from('x')), code('INVALID_KEY'), JSON.stringify(key));
  }
  for (const uri of ['fs:../x', 'fs:/etc/passwd', 'fs:', 'file:x', 'x', 's3:a/b']) {
    await assert.rejects(store.get(uri), (e: unknown) => e instanceof BlobStoreError && /INVALID_(URI|KEY)/.test(e.code), uri);
    await assert.rejects(store.delete(uri), BlobStoreError, uri);
  }
  assert.equal(fs.existsSync(path.join(dataDir, 'recordings')), false, 'nothing was created');
  assert.equal(fs.existsSync(path.join(dataDir, 'x')), false);
});

test('put / get / getRange / exists / delete (idempotent)', async () => {
  const store = new FsBlobStore(tmpDir('sb-blob-'));
  const data = Buffer.from('0123456789abcdef');
  const uri = await store.put('acme/2024/call_1.rec', data);
  assert.equal(uri, 'fs:acme/2024/call_1.rec');
  assert.equal(store.pathOf(uri), path.join(store.root, 'acme/2024/call_1.rec'));
  assert.ok((await store.get(uri)).equals(data));
  assert.equal(await store.size(uri), 16);
  assert.equal((await store.getRange(uri, 2, 5)).toString(), '2345');
  assert.equal((await store.getRange(uri, 10, 1000)).toString(), 'abcdef', 'end clamped');
  await assert.rejects(store.getRange(uri, 16, 20), RangeError);
  await assert.rejects(store.getRange(uri, 5, 4), RangeError);
  assert.equal(fs.statSync(store.pathOf(uri)).mode & 0o777, 0o600);
  assert.equal(await store.exists(uri), true);
  await store.put('acme/2024/call_1.rec', Buffer.from('replaced'));
  assert.equal((await store.get(uri)).toString(), 'replaced');
  await store.delete(uri);
  assert.equal(await store.exists(uri), false);
  await store.delete(uri); // again: no error
  await assert.rejects(store.get(uri), code('NOT_FOUND'));
  await assert.rejects(store.getRange(uri, 0, 1), code('NOT_FOUND'));
  assert.deepEqual(fs.readdirSync(path.join(store.root, 'acme/2024')), [], 'no temp files left behind');
});

test('concurrent readers never see a partial blob while it is replaced', async () => {
  const store = new FsBlobStore(tmpDir('sb-blob-'));
  const size = 2 * 1024 * 1024;
  const uri = await store.put('k', Buffer.alloc(size, 0));
  let reads = 0;
  let writing = true;
  const reader = (async () => {
    while (writing) {
      const b = await store.get(uri);
      assert.equal(b.length, size);
      assert.ok(b.equals(Buffer.alloc(size, b[0] as number)), 'one version, whole');
      reads++;
    }
  })();
  for (let v = 1; v <= 15; v++) await store.put('k', Buffer.alloc(size, v));
  writing = false;
  await reader;
  assert.ok(reads > 0);
  assert.ok((await store.get(uri)).equals(Buffer.alloc(size, 15)));
});

test('kill -9 during puts leaves the last complete blob, and sweepTemp clears the leftovers', async () => {
  const dataDir = tmpDir('sb-blob-kill-');
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let last = 0;
  for await (const line of readline.createInterface({ input: child.stdout })) {
    last = Number(line.split(' ')[1]);
    if (last >= 3) break;
  }
  await new Promise((r) => setTimeout(r, 15)); // land somewhere inside the next put
  child.kill('SIGKILL');
  await exited;
  const store = new FsBlobStore(dataDir);
  const blob = await store.get('fs:acme/call-1/recording.sbrec');
  const v = blob[0] as number;
  assert.equal(blob.length, 8 * 1024 * 1024);
  assert.ok(blob.equals(Buffer.alloc(blob.length, v)), 'whole, one version');
  assert.ok(v >= last, `version ${v}, last acknowledged ${last}`);
  const left = fs.readdirSync(path.join(store.root, 'acme/call-1')).filter((n) => n.endsWith('.tmp')).length;
  assert.equal(await store.sweepTemp(), left);
  assert.deepEqual(fs.readdirSync(path.join(store.root, 'acme/call-1')), ['recording.sbrec']);
});

test('disk full: NO_SPACE with a clear message, the previous blob intact, no temp file left', async (t) => {
  const fsMount = mountTinyTmpfs('64k');
  if (typeof fsMount === 'string') return t.skip(fsMount);
  try {
    const store = new FsBlobStore(fsMount.dir);
    const uri = await store.put('acme/r1', Buffer.alloc(8 * 1024, 1));
    await assert.rejects(store.put('acme/r1', Buffer.alloc(200 * 1024, 2)), (e: unknown) => {
      assert.ok(e instanceof BlobStoreError);
      assert.equal(e.code, 'NO_SPACE');
      assert.match(e.message, /no space left on the recordings disk storing acme\/r1 \(204800 bytes\)/);
      return true;
    });
    assert.ok((await store.get(uri)).equals(Buffer.alloc(8 * 1024, 1)));
    assert.deepEqual(fs.readdirSync(path.join(store.root, 'acme')), ['r1']);
  } finally {
    fsMount.unmount();
  }
});
