/**
 * The nodes view (api/routes/cluster.ts) and a call's owner in its detail, on an embedded gateway: one node, the
 * local one, alive with no lease expiry, owning its calls (in its detail, and `owner_node` in the calls list); the
 * list is for admins of the operator tenant only, and `GET /v1/nodes` (the contract's name) answers the same.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { api, userToken } from '../helpers/api.ts';
import { finishedCall } from '../helpers/call-fixture.ts';
import { startTestGateway } from '../helpers/gateway.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
before(async () => {
  gw = await startTestGateway();
});
after(async () => {
  await gw?.stop();
});

test('GET /v1/cluster/nodes: embedded, one node (this one), alive, no lease expiry; admins only', async () => {
  const r = await api<{ mode: string; self: string; nodes: Array<Record<string, unknown>> }>(gw.publicUrl, 'GET', '/v1/cluster/nodes');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.mode, 'embedded');
  assert.equal(r.body.self, gw.store.node);
  assert.equal(r.body.nodes.length, 1);
  const [n] = r.body.nodes;
  assert.equal(n?.id, gw.store.node);
  assert.equal(n?.state, 'alive');
  assert.equal(n?.self, true);
  assert.equal(n?.lease_until, null);
  assert.match(String(n?.last_heartbeat_at), /^\d{4}-\d\d-\d\dT/);
  const auditor = await userToken(gw.publicUrl, 'auditor');
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/cluster/nodes', { token: auditor.token })).status, 403);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/cluster/nodes', { token: null })).status, 401);
  const alias = await api<{ nodes: unknown[] }>(gw.publicUrl, 'GET', '/v1/nodes');
  assert.equal(alias.status, 200);
  assert.deepEqual(alias.body.nodes.map((x) => (x as { id: string }).id), [gw.store.node]);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/nodes', { token: auditor.token })).status, 403);
});

test('GET /v1/calls/:id names the owning node and its state', async () => {
  const call = await finishedCall(gw.store, new FsBlobStore(gw.dataDir), { tenant: 'default', master: loadOrCreateMasterKey(gw.dataDir) });
  const r = await api<{ owner: { node: string; state: string | null } }>(gw.publicUrl, 'GET', `/v1/calls/${call.callId}`, { headers: { 'x-switchboard-purpose': 'test' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.owner, { node: gw.store.node, state: 'alive' });
  const list = await api<{ calls: Array<{ id: string; owner_node: string | null }> }>(gw.publicUrl, 'GET', '/v1/calls');
  assert.equal(list.body.calls.find((c) => c.id === call.callId)?.owner_node, gw.store.node);
});
