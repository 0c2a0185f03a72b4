/**
 * The node a recording's gap names (recording/gap-node.ts): read from the log's granted claims of the call. Two
 * nodes are one data dir opened in turn under two names (each command carries its node).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { previousMediaNode } from '../../../recording/gap-node.ts';
import { schema } from '../../../schema/index.ts';
import { call_media_connected, call_received } from '../../../schema/reducers.ts';
import { resolveDurability, Store } from '../../../store/index.ts';
import { resultOf, T } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

function asNode(dir: string, node: string) {
  return Store.open({ dataDir: dir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node });
}

test('the gap names the node that carried the media before this one: none for a first claim or a restart of the same node', async () => {
  const dir = tmpDir();
  let s = asNode(dir, 'node-a');
  const callId = resultOf(await s.submit(call_received, { provider: 'twilio', provider_call_id: 'CA01', from: '+15550001111', to: '+15551234567' }, T)).call_id;
  const claim = async () => resultOf(await s.submit(call_media_connected, { call_id: callId, provider: 'twilio' }, T));
  await claim();
  assert.equal(previousMediaNode(s, T.tenant, callId), null, 'the first claim: no gap to name');
  await claim();
  assert.equal(previousMediaNode(s, T.tenant, callId), null, 'node-a again (a restart): not a failover');
  s.close();
  s = asNode(dir, 'node-b');
  await claim();
  assert.equal(previousMediaNode(s, T.tenant, callId), 'node-a', 'node-b took the call from node-a');
  s.close();
  s = asNode(dir, 'node-a');
  await claim();
  assert.equal(previousMediaNode(s, T.tenant, callId), 'node-b', 'and back');
  s.close();
});
