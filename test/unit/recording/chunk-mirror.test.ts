/**
 * recording/chunk-mirror.ts on the local-dir blob store: a growing segment is stored in encrypted chunks of at most
 * `chunkMs` of audio (whole stereo frames only), its journal alongside; restoreWork rebuilds the segment byte for
 * byte in another dir, stops at a missing chunk, keeps a segment the dir already has; deleteWork removes them all.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import { deleteWork, restoreWork, SegmentMirror, workPrefix } from '../../../recording/chunk-mirror.ts';
import { decryptRecording } from '../../../recording/crypto.ts';
import { TEST_MASTER } from '../../helpers/call-fixture.ts';
import { tmpDir } from '../../helpers/tmp.ts';

test('a growing segment is mirrored in chunks of at most chunkMs, and restored byte for byte elsewhere', async () => {
  const blobs = new FsBlobStore(tmpDir('sb-mirror-'));
  const dir = tmpDir('sb-mirror-work-');
  const prefix = workPrefix('acme', 'rec_1');
  fs.writeFileSync(path.join(dir, 'seg-000.log'), '{"kind":"segment","v":1,"startMs":0,"sampleRate":8000,"channels":2,"encoding":"s16le"}\n');
  const pcm = Buffer.alloc(8000 * 4 * 3 + 2); // 3 s of 8 kHz stereo, and half a sample frame not yet whole
  for (let i = 0; i < pcm.length; i++) pcm[i] = (i * 7) & 0xff;
  const mirror = new SegmentMirror({ blobs, master: TEST_MASTER, prefix, dir, segmentFile: 'seg-000.pcm', sampleRate: 8000, chunkMs: 1000 });
  fs.writeFileSync(path.join(dir, 'seg-000.pcm'), pcm.subarray(0, 5000));
  await mirror.sync();
  assert.equal(mirror.storedBytes, 5000);
  fs.writeFileSync(path.join(dir, 'seg-000.pcm'), pcm);
  await Promise.all([mirror.sync(), mirror.sync()]);
  assert.equal(mirror.storedBytes, pcm.length - 2, 'whole stereo frames only');
  const keys = await blobs.list(prefix);
  const chunks = keys.filter((k) => k.includes('.pcm/'));
  assert.ok(keys.includes(`${prefix}seg-000.log`));
  for (const k of chunks) assert.ok(decryptRecording(await blobs.get(blobs.uriFor(k)), TEST_MASTER).length <= 8000 * 4, `${k} holds at most 1 s`);
  assert.equal(chunks.length, 4, chunks.join(' '));
  assert.ok(!(await blobs.get(blobs.uriFor(chunks[0]!))).includes(pcm.subarray(0, 64)), 'stored encrypted');

  const other = tmpDir('sb-mirror-other-');
  const report = await restoreWork(blobs, TEST_MASTER, prefix, other);
  assert.deepEqual(report.restored, [{ file: 'seg-000.pcm', bytes: pcm.length - 2 }]);
  assert.ok(fs.readFileSync(path.join(other, 'seg-000.pcm')).equals(pcm.subarray(0, pcm.length - 2)));
  assert.equal(fs.readFileSync(path.join(other, 'seg-000.log'), 'utf8'), fs.readFileSync(path.join(dir, 'seg-000.log'), 'utf8'));

  // A dir that has the segment keeps its own; a missing chunk ends the restored segment there.
  assert.deepEqual((await restoreWork(blobs, TEST_MASTER, prefix, other)).restored, []);
  await blobs.delete(blobs.uriFor(chunks[2]!));
  const holed = tmpDir('sb-mirror-holed-');
  const r2 = await restoreWork(blobs, TEST_MASTER, prefix, holed);
  const upTo = Number(chunks[2]!.split('/').pop());
  assert.deepEqual(r2.restored, [{ file: 'seg-000.pcm', bytes: upTo }]);
  assert.equal(r2.skippedChunks, 1);

  assert.equal(await deleteWork(blobs, prefix), keys.length - 1);
  assert.deepEqual(await blobs.list(prefix), []);
});
