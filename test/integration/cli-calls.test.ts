/** `switchboard calls` and `switchboard call ID` read a stopped gateway's data dir. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { openTestStore, resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_answered, call_received, tenant_created } from '../../schema/reducers.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const run = (...args: string[]) => execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

test('calls lists the tenant’s calls; call ID shows its legs, consent and actions; another tenant sees nothing', async (t) => {
  const dir = tmpDir('sb-cli-');
  const store = openTestStore({ dataDir: dir });
  t.after(() => store.close());
  const who = { tenant: 'default', caller: 'test' };
  await store.submit(tenant_created, { id: 'default', name: 'D' }, who);
  const { call_id } = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA1', from: '+15550001111', to: '+15551234567' }, who));
  await store.submit(call_answered, { call_id }, who);
  await store.submit(call_received, { provider: 'sip', provider_call_id: 'x@y', from: 'sip:a@b', to: 'sip:c@d' }, who);
  store.close();
  const list = run('calls', '--data-dir', dir);
  assert.match(list, new RegExp(`${call_id}\\s+answered`));
  assert.match(list, /2 call\(s\)/);
  assert.equal(run('calls', '--data-dir', dir, '--state', 'answered', '--json').trim().split('\n').length, 1);
  const detail = JSON.parse(run('call', call_id, '--data-dir', dir)) as { call: { id: string; state: string }; legs: unknown[] };
  assert.equal(detail.call.id, call_id);
  assert.equal(detail.call.state, 'answered');
  assert.match(run('calls', '--data-dir', dir, '--tenant', 'other'), /0 call\(s\)/);
});
