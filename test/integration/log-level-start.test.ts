/**
 * A build below the cluster's log level refuses to start (cli/gateway.ts, schema/log-level.ts): a data dir whose
 * log has the level raised above this build's LOG_LEVEL makes `switchboard start` print one line naming both
 * levels and exit 2, before it serves anything (here in embedded mode; a cluster node checks the same after catch-up).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { LOG_LEVEL } from '../../schema/log-level.ts';
import { log_level_raised } from '../../schema/reducers.ts';
import { freePort } from '../helpers/gateway.ts';
import { openTestStore, resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

test('a log at a level above this build: switchboard start exits 2 with one line naming both levels', async () => {
  const dataDir = tmpDir('sb-level-');
  const store = openTestStore({ dataDir });
  // No node alive in this log: nothing holds the raise back.
  assert.equal(resultOf(await store.submit(log_level_raised, { to: LOG_LEVEL + 1 }, { tenant: 'default', caller: 'system:node' })).raised, true);
  store.close();
  const r = spawnSync(process.execPath, [BIN, 'start'], {
    env: { ...process.env, SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_HTTP_PORT: String(await freePort()), SWITCHBOARD_SIP_PORT: '0', SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 2, out);
  assert.match(out, new RegExp(`switchboard: node \\S+ runs a build of log level ${LOG_LEVEL}, but the cluster's log is at level ${LOG_LEVEL + 1} \\(raised at seq \\d+ by node test-node\\)`));
  assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
  assert.doesNotMatch(out, /listening/);
});
