/**
 * `switchboard migrate` (cli/migrate.ts): a data dir written before content sealing — a finished call whose
 * transcript and agent actions are plain in the log — is logged again as a new epoch with its content sealed under
 * a new per-call key. Afterwards no event carries plain content, `verify` and `replay` pass, the transcript opens
 * with the call's key, no event of the new log holds the transcript words, and the old data dir is
 * kept beside it (renamed) rather than lost.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { migrateDataDir, plainContent } from '../../cli/migrate.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { ContentKeyring } from '../../recording/content-keys.ts';
import { ContentSealer } from '../../recording/content-seal.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { schema } from '../../schema/index.ts';
import { DB_FILE, Store } from '../../store/index.ts';
import { finishedCall } from '../helpers/call-fixture.ts';
import { tmpDir } from '../helpers/tmp.ts';

test('switchboard migrate seals the content of a data dir from before sealing, as a new epoch of its log', async () => {
  const dir = path.join(tmpDir('sb-migrate-'), 'data');
  fs.mkdirSync(dir);
  const words = 'heliotropebanister';
  const old = Store.open({ dataDir: dir, schema, checkpointMs: 0 });
  const call = await finishedCall(old, new FsBlobStore(dir), { master: loadOrCreateMasterKey(dir), transcript: [{ channel: 'caller', start_ms: 0, end_ms: 900, text: `the word is ${words}` }] });
  assert.ok(plainContent(old) > 0, 'the old log holds plain content');
  const events = old.head.seq;
  old.close();

  const r = await migrateDataDir(dir);
  assert.equal(r.events, events);
  assert.ok(r.archive && fs.existsSync(path.join(r.archive, DB_FILE)), 'the old data dir is kept, renamed');

  const store = Store.open({ dataDir: dir, schema, checkpointMs: 0 });
  try {
    assert.equal(plainContent(store), 0, 'no event carries plain content');
    assert.equal(store.head.seq, events);
    assert.ok(store.verify().ok);
    assert.ok(store.replay().ok);
    const sealer = new ContentSealer(store, new ContentKeyring(new FsBlobStore(dir), loadOrCreateMasterKey(dir)));
    const rows = store.read(call.tenant).transcript_segments.find({ call_id: call.callId });
    assert.ok(rows.every((s) => !s.text.includes(words)), 'the rows hold ciphertext');
    assert.ok(![...store.events()].some((e) => JSON.stringify(e.args).includes(words)), 'no event of the new log holds the words');
    const opened = await sealer.openRows(call.tenant, 'transcript_segments', rows);
    assert.ok(opened.some((s) => s.text.includes(words)), 'the call key opens them');
  } finally {
    store.close();
  }
});
