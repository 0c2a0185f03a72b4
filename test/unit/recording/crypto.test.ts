/**
 * Envelope encryption: round trips at chunk boundaries, range decryption equal
 * to the plaintext slice (also straight from a blob store, reading only the
 * chunks needed), any tampered byte / truncation / reordering / wrong key is
 * an error, and the master key file's creation, mode and stability.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import {
  decryptRange, decryptRangeFrom, decryptRecording, encryptRecording, loadOrCreateMasterKey, masterKeyFromBytes,
  readEnvelope, RecordingCryptoError,
} from '../../../recording/crypto.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const master = masterKeyFromBytes(randomBytes(32));

test('round trip at every size around the chunk boundaries', () => {
  const chunkSize = 1024;
  for (const n of [0, 1, 15, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3 * chunkSize + 7]) {
    const plain = randomBytes(n);
    const blob = encryptRecording(plain, master, { chunkSize });
    assert.ok(decryptRecording(blob, master).equals(plain), `size ${n}`);
    const env = readEnvelope(blob);
    assert.equal(env.header.keyId, master.keyId);
    assert.equal(env.header.plaintextBytes, n);
    assert.equal(env.chunks, Math.max(1, Math.ceil(n / chunkSize)));
    assert.equal(blob.length, env.blobBytes);
  }
  const big = randomBytes(300_000);
  const blob = encryptRecording(big, master);
  assert.equal(readEnvelope(blob).header.chunkSize, 64 * 1024);
  assert.ok(decryptRecording(blob, master).equals(big));
  assert.ok(!blob.includes(big.subarray(1000, 1032)), 'ciphertext does not contain the plaintext');
  assert.notDeepEqual(encryptRecording(big, master).subarray(-64), blob.subarray(-64), 'fresh data key and nonces per recording');
});

test('decryptRange equals the plaintext slice, including across chunk boundaries and clamped ends', () => {
  const plain = randomBytes(10_000);
  const blob = encryptRecording(plain, master, { chunkSize: 1000 });
  const cases: Array<[number, number]> = [[0, 0], [0, 999], [999, 1000], [1000, 1999], [1234, 5678], [9999, 9999], [9000, 50_000], [0, 9999]];
  let seed = 7;
  for (let i = 0; i < 200; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const a = seed % 10_000;
    cases.push([a, a + (seed % 3000)]);
  }
  for (const [s, e] of cases) {
    assert.ok(decryptRange(blob, master, s, e).equals(plain.subarray(s, Math.min(e, 9999) + 1)), `range ${s}-${e}`);
  }
  assert.throws(() => decryptRange(blob, master, 10_000, 10_001), RangeError);
  assert.throws(() => decryptRange(blob, master, 5, 4), RangeError);
});

test('range decryption from a blob store reads only the header and the chunks it needs', async () => {
  const store = new FsBlobStore(tmpDir('sb-crypt-store-'));
  const plain = randomBytes(1_000_000);
  const uri = await store.put('acme/rec-1.sbrec', encryptRecording(plain, master));
  let bytesRead = 0;
  const read = async (s: number, e: number): Promise<Buffer> => {
    const b = await store.getRange(uri, s, e);
    bytesRead += b.length;
    return b;
  };
  const { data, plaintextBytes } = await decryptRangeFrom(read, master, 500_000, 500_099);
  assert.equal(plaintextBytes, 1_000_000);
  assert.ok(data.equals(plain.subarray(500_000, 500_100)));
  assert.ok(bytesRead < 2 * 65_552 + 1000, `read ${bytesRead} bytes of a ${1_000_000} byte recording`);
});

test('any tampered byte, truncation, extension or chunk swap is an error', () => {
  const plain = randomBytes(300);
  const blob = encryptRecording(plain, master, { chunkSize: 64 });
  for (let i = 0; i < blob.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const bad = Buffer.from(blob);
      bad[i] = (bad[i] as number) ^ mask;
      assert.throws(() => decryptRecording(bad, master), RecordingCryptoError, `byte ${i} ^ ${mask}`);
    }
  }
  const env = readEnvelope(blob);
  assert.throws(() => decryptRecording(blob.subarray(0, blob.length - 1), master), /truncated or extended/);
  assert.throws(() => decryptRecording(blob.subarray(0, blob.length - 44), master), /truncated or extended/);
  assert.throws(() => decryptRecording(Buffer.concat([blob, Buffer.alloc(1)]), master), /truncated or extended/);
  // Swap chunks 0 and 1 (both full 64 + 16 bytes).
  const swapped = Buffer.from(blob);
  const c0 = env.dataOffset;
  blob.copy(swapped, c0, c0 + 80, c0 + 160);
  blob.copy(swapped, c0 + 80, c0, c0 + 80);
  assert.throws(() => decryptRecording(swapped, master), /chunk 0 failed authentication/);
  // A chunk from another recording under the same key does not fit either.
  const other = encryptRecording(randomBytes(300), master, { chunkSize: 64 });
  const spliced = Buffer.from(blob);
  other.copy(spliced, c0, readEnvelope(other).dataOffset, readEnvelope(other).dataOffset + 80);
  assert.throws(() => decryptRecording(spliced, master), /chunk 0 failed authentication/);
  // Range decryption authenticates the chunks it touches.
  const bad = Buffer.from(blob);
  bad[c0 + 80 + 5] = (bad[c0 + 80 + 5] as number) ^ 1;
  assert.throws(() => decryptRange(bad, master, 70, 75), /chunk 1 failed authentication/);
  assert.ok(decryptRange(bad, master, 0, 63).equals(plain.subarray(0, 64)), 'untouched chunk still readable');
  assert.throws(() => decryptRecording(Buffer.from('not a recording at all'), master), /bad magic/);
  // A header rewritten so that it still parses to the same values (whitespace, an extra field) is
  // caught too: every chunk's AAD binds the exact header bytes.
  const header = JSON.parse(blob.subarray(10, env.dataOffset).toString('utf8')) as Record<string, unknown>;
  for (const json of [JSON.stringify(header, null, 1), JSON.stringify({ ...header, note: 'x' })]) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(json));
    const rewritten = Buffer.concat([blob.subarray(0, 6), len, Buffer.from(json), blob.subarray(env.dataOffset)]);
    assert.throws(() => decryptRecording(rewritten, master), /chunk 0 failed authentication/);
    assert.throws(() => decryptRange(rewritten, master, 100, 110), /failed authentication/);
  }
});

test('the wrong master key is refused', () => {
  const blob = encryptRecording(randomBytes(100), master);
  const other = masterKeyFromBytes(randomBytes(32));
  assert.throws(() => decryptRecording(blob, other), (e: unknown) => e instanceof RecordingCryptoError && e.code === 'WRONG_KEY' && e.message.includes(master.keyId));
  assert.throws(() => decryptRange(blob, other, 0, 10), /encrypted under master key/);
  // Even with the key id forged to match, the data key does not unwrap.
  const env = readEnvelope(blob);
  const json = blob.subarray(10, env.dataOffset).toString('utf8').replace(master.keyId, other.keyId);
  const forged = Buffer.concat([blob.subarray(0, 10), Buffer.from(json), blob.subarray(env.dataOffset)]);
  assert.throws(() => decryptRecording(forged, other), /failed to unwrap/);
});

test('master key: created once with mode 0600 in a 0700 dir, stable, never replaced', () => {
  const dataDir = tmpDir('sb-keys-');
  const k1 = loadOrCreateMasterKey(dataDir);
  const file = path.join(dataDir, 'keys', 'recording-master.key');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
  assert.equal(fs.readFileSync(file).length, 32);
  assert.equal(k1.keyId, createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16));
  assert.match(k1.keyId, /^[0-9a-f]{16}$/);
  const k2 = loadOrCreateMasterKey(dataDir);
  assert.ok(k2.key.equals(k1.key));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['recording-master.key'], 'no temp files left');
  const blob = encryptRecording(Buffer.from('hello'), k1);
  assert.equal(decryptRecording(blob, k2).toString(), 'hello');

  fs.chmodSync(file, 0o644);
  loadOrCreateMasterKey(dataDir);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'loose permissions are tightened');

  fs.writeFileSync(file, Buffer.alloc(31));
  assert.throws(() => loadOrCreateMasterKey(dataDir), /expected 32 bytes, found 31; refusing to replace/);
  assert.equal(fs.readFileSync(file).length, 31, 'the bad key file is left for an operator');
});
