/**
 * Content sealing's primitives (recording/content-crypto.ts) and the keyring (recording/content-keys.ts): what a
 * sealed value reveals, what it is bound to, and that a destroyed key is gone for good.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ContentSealError, isSealed, openValue, sealValue } from '../../../recording/content-crypto.ts';
import { ContentKeyring } from '../../../recording/content-keys.ts';
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../../recording/master-key.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const key = randomBytes(32);

test('a sealed value opens to the same value; text stays a string, JSON an object; nothing of the words shows', () => {
  const text = 'my card is 4111 1111 1111 1111';
  const sealed = sealValue(key, 'call-1', 'text', text);
  assert.equal(typeof sealed, 'string');
  assert.ok(isSealed(sealed));
  assert.ok(!String(sealed).includes('4111') && !String(sealed).includes('card'));
  assert.equal(openValue(key, 'call-1', 'text', sealed), text);
  const args = { name: 'tokenise', digits: '4111111111111111' };
  const sealedArgs = sealValue(key, 'call-1', 'args', args);
  assert.ok(isSealed(sealedArgs) && !JSON.stringify(sealedArgs).includes('4111'));
  assert.deepEqual(openValue(key, 'call-1', 'args', sealedArgs), args);
  assert.equal(sealValue(key, 'call-1', 'args', null), null);
});

test('the same words sealed twice differ (a fresh IV each time), over many values', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(sealValue(key, 'call-1', 'text', 'yes') as string);
  assert.equal(seen.size, 2000);
});

test('a sealed value is bound to its call and field, and to its key: moved or altered, it refuses to open', () => {
  const sealed = sealValue(key, 'call-1', 'text', 'hello') as string;
  const refuses = (fn: () => unknown): void => assert.throws(fn, (e: unknown) => e instanceof ContentSealError && e.code === 'content_tampered');
  refuses(() => openValue(key, 'call-2', 'text', sealed));
  refuses(() => openValue(key, 'call-1', 'args', sealed));
  refuses(() => openValue(randomBytes(32), 'call-1', 'text', sealed));
  const flipped = sealed.slice(0, -3) + (sealed.at(-3) === 'A' ? 'B' : 'A') + sealed.slice(-2);
  refuses(() => openValue(key, 'call-1', 'text', flipped));
  // plain (older) values pass through unchanged
  assert.equal(openValue(key, 'call-1', 'text', 'plain words'), 'plain words');
});

test('the keyring: one key per call, kept wrapped outside the log; destroyed, it never comes back', async () => {
  const dir = tmpDir('sb-ck-');
  const ring = new ContentKeyring(new FsBlobStore(dir), loadOrCreateMasterKey(dir));
  const ref = { tenant: 'acme', callId: 'call-1' };
  const k1 = await ring.getOrCreate(ref);
  assert.deepEqual((await ring.getOrCreate(ref)).key, k1.key);
  assert.notDeepEqual((await ring.getOrCreate({ tenant: 'acme', callId: 'call-2' })).key, k1.key);
  // on disk the key is wrapped: its raw bytes are nowhere in the data dir
  const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => path.join(f.parentPath, f.name));
  for (const f of files) assert.equal(fs.readFileSync(f).indexOf(k1.key), -1, `${f} holds the raw key`);
  // a second keyring (another process, a restart) opens the same key
  const again = new ContentKeyring(new FsBlobStore(dir), loadOrCreateMasterKey(dir));
  assert.deepEqual((await again.get(ref))?.key, k1.key);
  assert.equal(await ring.destroy(ref, 1), k1.keyId);
  assert.equal(await again.destroyed(ref), true);
  const fresh = new ContentKeyring(new FsBlobStore(dir), loadOrCreateMasterKey(dir));
  assert.equal(await fresh.get(ref), null);
  await assert.rejects(Promise.resolve(fresh.getOrCreate(ref)), (e: unknown) => e instanceof ContentSealError && e.code === 'content_key_destroyed');
});
