/**
 * Child process for the traced durability test (durable-sync.test.ts): opens a
 * store with the real durability of PROFILE (no injected flusher), submits N
 * commands one after another and, as soon as each submit resolves, writes
 * `ACK <seq>` to stdout with one write(2), so the trace orders the
 * acknowledgement against the syncs of the -wal file.
 *
 *   node --import tsx durable-ack-child.ts DIR PROFILE N
 */
import fs from 'node:fs';
import { resolveDurability, Store } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';

const [dir, profile, count] = process.argv.slice(2);
if (!dir || !profile || !count) throw new Error('usage: durable-ack-child DIR PROFILE N');
const store = Store.open({ dataDir: dir, schema: tallySchema, durability: resolveDurability({ profile }), checkpointMs: 0, node: 'n1' });
for (let i = 0; i < Number(count); i++) {
  const r = await store.submitNamed('put', { id: `k${i}`, n: i }, { tenant: 'a', caller: 'alice' });
  fs.writeSync(1, `ACK ${r.seq}\n`);
}
store.close();
