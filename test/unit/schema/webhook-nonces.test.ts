/** webhook_nonce_claimed: durable, deterministic replay protection for signed webhooks (Vonage jti). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { schema } from '../../../schema/index.ts';
import { NONCE_PURGE_BATCH } from '../../../schema/webhook-nonces.ts';
import { resolveDurability, Store } from '../../../store/index.ts';
import { openTestStore, resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { tenant_created, webhook_nonce_claimed } from '../../../schema/reducers.ts';

const SYS = { tenant: 'default', caller: 'vonage:webhook' };

test('a nonce is claimed once; a second claim while it is live is refused; after expiry it may be claimed again', async () => {
  let now = 1_000_000;
  const store = openTestStore({ clock: () => now });
  try {
    const claim = (nonce: string, expires_at: number) => store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce, expires_at }, SYS);
    assert.deepEqual(resultOf(await claim('j1', now + 420_000)), { id: 'vonage:j1', purged: 0 });
    const again = await claim('j1', now + 420_000);
    assert.equal(again.outcome.ok, false);
    assert.equal(!again.outcome.ok && again.outcome.error.code, 'nonce_replayed');
    // The same nonce of another provider is another nonce.
    assert.ok((await store.submit(webhook_nonce_claimed, { provider: 'twilio', nonce: 'j1', expires_at: now + 1000 }, SYS)).outcome.ok);
    const expired = await claim('j2', now);
    assert.equal(!expired.outcome.ok && expired.outcome.error.code, 'nonce_expired');
    now += 420_001;
    assert.ok((await claim('j1', now + 420_000)).outcome.ok, 'an expired claim no longer blocks');
    assert.ok(store.verify().ok);
    assert.ok(store.replay().ok, 'deterministic: the replayed log gives the same tables');
  } finally {
    store.close();
  }
});

test('claims purge expired rows, oldest first, a bounded batch at a time', async () => {
  let now = 5_000_000;
  const store = openTestStore({ clock: () => now });
  try {
    const n = NONCE_PURGE_BATCH + 8;
    for (let i = 0; i < n; i++) resultOf(await store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: `old-${i}`, expires_at: now + 1000 + i }, SYS));
    resultOf(await store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'live', expires_at: now + 10_000_000 }, SYS));
    assert.equal(store.read(null).webhook_nonces.find().length, n + 1);
    now += 60_000;
    const first = resultOf<{ purged: number }>(await store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'new-1', expires_at: now + 1000 }, SYS));
    assert.equal(first.purged, NONCE_PURGE_BATCH);
    const second = resultOf<{ purged: number }>(await store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'new-2', expires_at: now + 1000 }, SYS));
    assert.equal(second.purged, 8);
    assert.deepEqual(store.read(null).webhook_nonces.find().map((r) => r.id).sort(), ['vonage:live', 'vonage:new-1', 'vonage:new-2']);
    assert.ok(store.replay().ok);
  } finally {
    store.close();
  }
});

test('claims survive a restart of the store', async (t) => {
  const dataDir = tmpDir('sb-nonce-');
  const now = Date.now();
  const a = openTestStore({ dataDir });
  t.after(() => a.close());
  resultOf(await a.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'persist', expires_at: now + 600_000 }, SYS));
  a.close();
  const b = openTestStore({ dataDir });
  try {
    const r = await b.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'persist', expires_at: now + 600_000 }, SYS);
    assert.equal(!r.outcome.ok && r.outcome.error.code, 'nonce_replayed');
  } finally {
    b.close();
  }
});

test('a data dir of this schema version made before webhook_nonces existed opens, gains the table and replays', async (t) => {
  const dataDir = tmpDir('sb-nonce-old-');
  const { webhook_nonces: _dropped, ...oldTables } = schema.tables;
  const oldSchema = { ...schema, tables: oldTables, reducers: schema.reducers.filter((r) => r.name !== 'webhook_nonce_claimed') };
  const durability = resolveDurability({ profile: 'development', fsync: 'never' });
  const old = Store.open({ dataDir, schema: oldSchema as unknown as typeof schema, durability, checkpointMs: 0, node: 'test-node' });
  t.after(() => old.close());
  resultOf(await old.submit(tenant_created, { id: 'default', name: 'Default' }, { tenant: 'default', caller: 'test' }));
  old.close();
  const store = openTestStore({ dataDir });
  try {
    assert.ok((await store.submit(webhook_nonce_claimed, { provider: 'vonage', nonce: 'n', expires_at: Date.now() + 60_000 }, SYS)).outcome.ok);
    assert.equal(store.read(null).webhook_nonces.find().length, 1);
    assert.equal(store.read(null).tenants.find().length, 1);
    assert.ok(store.verify().ok);
    assert.ok(store.replay().ok);
  } finally {
    store.close();
  }
});
