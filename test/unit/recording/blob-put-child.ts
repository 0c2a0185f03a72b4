/**
 * Child process for the blob store atomicity test: puts the same key over and
 * over with 8 MiB of one repeated byte (1, 2, 3 …), printing `put N` after each
 * put resolved, until it is killed.
 *
 *   node --import tsx blob-put-child.ts DATA_DIR
 */
import { FsBlobStore } from '../../../recording/blob-fs.ts';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: blob-put-child DATA_DIR');
const store = new FsBlobStore(dataDir);
for (let i = 1; ; i++) {
  await store.put('acme/call-1/recording.sbrec', Buffer.alloc(8 * 1024 * 1024, i % 256));
  process.stdout.write(`put ${i}\n`);
}
