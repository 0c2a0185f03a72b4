/**
 * `switchboard drain` through `POST /v1/cluster/drain` (api/routes/cluster.ts, bridge/drain.ts) on an embedded
 * gateway: refused (403) to a user who is not an admin of the operator tenant, and then nothing drains; the CLI
 * command as an admin drains the node: 202, and with no live call the gateway stops at once, its row `stopped`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api, userToken } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
let gw: Awaited<ReturnType<typeof startTestGateway>> | null = null;
after(async () => {
  await gw?.stop();
});

test('POST /v1/cluster/drain: 403 for a non-admin; `switchboard drain` as the admin drains the node, which stops (row stopped, drained)', { timeout: 60_000 }, async () => {
  gw = await startTestGateway();
  const g = gw;
  const auditor = await userToken(g.publicUrl, 'auditor');
  const refused = await api<{ error: { code: string } }>(g.publicUrl, 'POST', '/v1/cluster/drain', { token: auditor.token });
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.equal((await api(g.publicUrl, 'POST', '/v1/cluster/drain', { token: null })).status, 401);
  assert.equal(g.drain.active, false, 'a refused request drains nothing');
  assert.equal((await fetch(`${g.publicUrl}/readyz`)).status, 200);

  const env = { ...process.env, SWITCHBOARD_URL: '', SWITCHBOARD_TOKEN: '' };
  const out = await promisify(execFile)(process.execPath, [BIN, 'drain', '--url', g.publicUrl, '--token', ADMIN_TOKEN, '--json'], { env });
  const answer = JSON.parse(out.stdout) as { node: string; started: boolean; live_calls: number; drain_until: string | null };
  assert.equal(answer.node, g.store.node);
  assert.equal(answer.started, true);
  assert.equal(answer.live_calls, 0);
  assert.match(String(answer.drain_until), /^\d{4}-\d\d-\d\dT/);
  const end = await g.drain.done;
  assert.deepEqual(end, { how: 'drained', callsLeft: 0 });

  const store = Store.open({ dataDir: g.dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const node = store.read(null).nodes.get(g.store.node);
    assert.equal(node?.state, 'stopped');
    assert.equal(node?.down_reason, 'drained');
    const events = [...store.events()].map((e) => e.reducer);
    assert.ok(events.indexOf('node_drain_started') < events.lastIndexOf('node_stopped'), 'draining recorded, then stopped');
  } finally {
    store.close();
  }
});
