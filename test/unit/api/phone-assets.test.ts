/**
 * The softphone bundle is built once and cached by the content hash of phone/ (api/phone-assets.ts): a second
 * load reads the cache file (which stays as it was), a prebuilt cache is preferred, and a changed source gets a
 * new hash and a new file. Observed through the cache files, not durations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Fastify from 'fastify';
import { mountPhone } from '../../../api/phone.ts';
import { DIST_PHONE_CACHE, PHONE_DIR, loadPhoneAssets, phoneSourceHash } from '../../../api/phone-assets.ts';
import { tmpDir } from '../../helpers/tmp.ts';

function copyPhone(): string {
  const dir = tmpDir('sb-phone-src-');
  for (const f of fs.readdirSync(PHONE_DIR)) if (fs.statSync(path.join(PHONE_DIR, f)).isFile()) fs.copyFileSync(path.join(PHONE_DIR, f), path.join(dir, f));
  return dir;
}

test('built once, then read from the cache by content hash; a changed source builds a new one', async () => {
  const src = copyPhone();
  const prebuilt = tmpDir('sb-phone-dist-');
  const cache = tmpDir('sb-phone-cache-');
  const first = await loadPhoneAssets({ sourceDir: src, cacheDirs: [path.join(prebuilt, 'none'), cache] });
  assert.equal(first.built, true);
  assert.equal(first.cacheDir, cache);
  const app = path.join(cache, `app-${first.hash}.js`);
  assert.deepEqual(fs.readFileSync(app), first.app);
  assert.deepEqual(fs.readFileSync(path.join(cache, `sdk-${first.hash}.js`)), first.sdk);
  assert.equal(fs.statSync(app).mode & 0o777, 0o600);
  assert.ok(first.app.length > 1000 && first.sdk.length > 1000);

  // The second start: the file is read, not written again (same inode, same mtime, nothing else in the dir).
  const before = fs.statSync(app);
  const second = await loadPhoneAssets({ sourceDir: src, cacheDirs: [path.join(prebuilt, 'none'), cache] });
  assert.equal(second.built, false);
  assert.equal(second.hash, first.hash);
  const after = fs.statSync(app);
  assert.equal(after.ino, before.ino);
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.deepEqual(fs.readdirSync(cache).sort(), [`app-${first.hash}.js`, `sdk-${first.hash}.js`]);

  // A prebuilt copy (dist/phone) comes first.
  fs.mkdirSync(path.join(prebuilt, 'phone'));
  fs.writeFileSync(path.join(prebuilt, 'phone', `app-${first.hash}.js`), 'prebuilt app');
  fs.writeFileSync(path.join(prebuilt, 'phone', `sdk-${first.hash}.js`), 'prebuilt sdk');
  const third = await loadPhoneAssets({ sourceDir: src, cacheDirs: [path.join(prebuilt, 'phone'), cache] });
  assert.equal(third.built, false);
  assert.equal(third.app.toString(), 'prebuilt app');

  // A changed source: a new hash, built and cached beside the old one.
  fs.appendFileSync(path.join(src, 'sdk.ts'), '\nexport const CACHE_TEST_MARKER = 42;\n');
  const changed = await loadPhoneAssets({ sourceDir: src, cacheDirs: [path.join(prebuilt, 'phone'), cache] });
  assert.notEqual(changed.hash, first.hash);
  assert.equal(changed.built, true);
  assert.match(changed.sdk.toString(), /CACHE_TEST_MARKER/);
  assert.ok(fs.existsSync(path.join(cache, `sdk-${changed.hash}.js`)));
  assert.equal(phoneSourceHash(src), changed.hash);
});

test('GET /phone/app.js serves the cached bundle of the current sources', async () => {
  const cache = tmpDir('sb-phone-cache-');
  const app = Fastify();
  await mountPhone(app, cache);
  const hash = phoneSourceHash();
  const res = await app.inject({ method: 'GET', url: '/phone/sdk.js' });
  assert.equal(res.statusCode, 200);
  const file = [path.join(DIST_PHONE_CACHE, `sdk-${hash}.js`), path.join(cache, `sdk-${hash}.js`)].find((f) => fs.existsSync(f));
  assert.ok(file, 'the bundle is in dist/phone or the data dir cache');
  assert.deepEqual(res.rawPayload, fs.readFileSync(file));
  await app.close();
});
