/**
 * One suite for every blob store (store/blob-store.ts): the local dir (recording/blob-fs.ts) and the JetStream object
 * store (store/jetstream-blobs.ts) must behave alike — put/get round trips (small, empty, several MiB), streamed put
 * and get, ranges, replace, list by prefix, idempotent delete, NOT_FOUND, and uris of another scheme or keys that
 * could escape refused before any I/O.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BlobStoreError, type BlobStore } from '../../../store/blob-store.ts';

const code = (c: string) => (e: unknown) => e instanceof BlobStoreError && e.code === c;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

async function* pieces(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** Registers the suite's tests; `open` gives a fresh, empty store. */
export function blobStoreSuite(name: string, open: () => Promise<BlobStore>): void {
  test(`${name}: put / get / exists / replace / delete (idempotent) / NOT_FOUND`, async () => {
    const store = await open();
    const uri = await store.put('acme/rec_1.wav.sbrec', Buffer.from('0123456789'));
    assert.equal(uri, `${store.scheme}:acme/rec_1.wav.sbrec`);
    assert.equal(store.uriFor('acme/rec_1.wav.sbrec'), uri);
    assert.equal(store.keyOf(uri), 'acme/rec_1.wav.sbrec');
    assert.equal((await store.get(uri)).toString(), '0123456789');
    assert.equal(await store.exists(uri), true);
    await store.put('acme/rec_1.wav.sbrec', Buffer.from('replaced'));
    assert.equal((await store.get(uri)).toString(), 'replaced');
    await store.delete(uri);
    assert.equal(await store.exists(uri), false);
    await store.delete(uri);
    await assert.rejects(store.get(uri), code('NOT_FOUND'));
    await assert.rejects(collect(store.stream(uri)), code('NOT_FOUND'));
    const empty = await store.put('acme/empty', Buffer.alloc(0));
    assert.equal((await store.get(empty)).length, 0);
  });

  test(`${name}: several MiB streamed in and out, byte for byte; ranges`, async () => {
    const store = await open();
    const data = randomBytes(3 * 1024 * 1024 + 123);
    const uri = await store.putStream('big/blob', pieces(data, 100_000));
    assert.equal(sha(await store.get(uri)), sha(data));
    assert.equal(sha(await collect(store.stream(uri))), sha(data));
    assert.ok(store.getRange, 'a range read');
    assert.ok((await store.getRange(uri, 5, 9)).equals(data.subarray(5, 10)));
    const mid = 1024 * 1024 - 7;
    assert.ok((await store.getRange(uri, mid, mid + 300_000)).equals(data.subarray(mid, mid + 300_001)), 'across the store\'s own chunks');
    assert.ok((await store.getRange(uri, data.length - 3, data.length + 100)).equals(data.subarray(data.length - 3)), 'end clamped');
    await assert.rejects(store.getRange(uri, data.length, data.length + 1), RangeError);
  });

  test(`${name}: list by prefix, sorted, without deleted blobs`, async () => {
    const store = await open();
    for (const k of ['w/acme/r1/seg-001/000002', 'w/acme/r1/seg-000/000001', 'w/acme/r1/seg-000/000000', 'w/acme/r2/seg-000/000000', 'bundles/x.mjs']) {
      await store.put(k, Buffer.from(k));
    }
    assert.deepEqual(await store.list('w/acme/r1/'), ['w/acme/r1/seg-000/000000', 'w/acme/r1/seg-000/000001', 'w/acme/r1/seg-001/000002']);
    await store.delete(store.uriFor('w/acme/r1/seg-000/000001'));
    assert.deepEqual(await store.list('w/acme/r1/seg-000/'), ['w/acme/r1/seg-000/000000']);
    assert.deepEqual(await store.list('nothing/'), []);
    assert.equal((await store.list('')).length, 4);
  });

  test(`${name}: bad keys and foreign uris are refused`, async () => {
    const store = await open();
    for (const key of ['', '..', '../x', 'a/../../x', '/etc/passwd', '.hidden', 'a//b', 'a/', 'x y', 'a/b/c/d/e/f/g/h/i']) {
      await assert.rejects(store.put(key, Buffer.from('x')), code('INVALID_KEY'), JSON.stringify(key));
    }
    const other = store.scheme === 'fs' ? 'nats:a/b' : 'fs:a/b';
    await assert.rejects(store.get(other), code('INVALID_URI'));
    await assert.rejects(store.delete(other), code('INVALID_URI'));
  });
}
