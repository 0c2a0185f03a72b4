/**
 * NodeOwnership's media hold (bridge/ownership.ts): a node that has gone 2/3 of its lease without a renewal it has
 * applied sends no media until its next heartbeat is applied; embedded mode never holds and registers once, as
 * the only node. Monotonic time is injected; the store is real.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { NodeOwnership } from '../../../bridge/ownership.ts';
import { openTestStore } from '../../helpers/store.ts';

const logger = pino({ level: 'silent' });

test('cluster: media is held from 2/3 of the lease without an applied renewal until the next heartbeat is applied', async (t) => {
  const store = openTestStore();
  const mono = { t: 0 };
  const own = new NodeOwnership({ store, sessions: { get: () => undefined }, cluster: true, leaseMs: 3_000, version: 'test', logger, now: () => mono.t });
  t.after(async () => {
    await own.stop();
    store.close();
  });
  assert.equal(own.mayTransmit(), false, 'nothing is sent before the first heartbeat is applied');
  await own.start();
  assert.equal(own.heartbeatMs, 1_000);
  assert.equal(own.mayTransmit(), true);
  mono.t = 1_999;
  assert.equal(own.mayTransmit(), true);
  mono.t = 2_000; // e.g. the process was stopped (SIGSTOP) and the heartbeat timer could not run
  assert.equal(own.mayTransmit(), false);
  const row = store.read(null).nodes.get('test-node');
  assert.equal(row?.state, 'alive');
  assert.equal(row?.lease_ms, 3_000);
  // The timer's heartbeat (one is due at once after a pause) renews from its own submission time.
  await (own as unknown as { beat(boot: boolean): Promise<void> }).beat(false);
  assert.equal(own.mayTransmit(), true);
});

test('embedded: one registration, no expiry, no hold, no heartbeats', async (t) => {
  const store = openTestStore();
  const mono = { t: 0 };
  const own = new NodeOwnership({ store, sessions: { get: () => undefined }, cluster: false, leaseMs: 3_000, version: 'test', logger, now: () => mono.t });
  t.after(async () => {
    await own.stop('shutdown');
    store.close();
  });
  await own.start();
  const head = store.head.seq;
  mono.t = 1e9;
  assert.equal(own.mayTransmit(), true);
  const row = store.read(null).nodes.get('test-node');
  assert.equal(row?.lease_until, null);
  assert.equal(row?.state, 'alive');
  assert.equal((own as unknown as { timer: unknown }).timer, null, 'no heartbeat timer');
  await own.stop('shutdown');
  assert.equal(store.head.seq, head, 'nothing written at stop either');
});
