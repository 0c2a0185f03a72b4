/**
 * Refusals at a bounded rate (bridge/refusals.ts through routeInbound): per (tenant, provider, source, reason) and
 * window, the first refusal is a `call_rejected` row and the rest one `call_rejections_aggregated`; past the
 * window's row budget new sources fold into source `*`; the log replays to the same tables.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { routeInbound, UNROUTED_TENANT } from '../../../bridge/inbound.ts';
import { RefusalLog, reasonClass } from '../../../bridge/refusals.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { number_added, tenant_created } from '../../../schema/reducers.ts';

const store = openTestStore();
const log = new RefusalLog(store, { windowMs: 3_600_000, maxRows: 5 });
after(async () => {
  await log.close();
  store.close();
});

const events = (reducer: string) => [...store.events()].filter((e) => e.reducer === reducer);
let n = 0;
const call = (to: string, source: string, provider: 'sip' | 'webrtc' = 'sip') => ({ provider, providerCallId: `c-${++n}`, from: 'sip:x@y', to, source });

test('setup: a tenant with a Twilio-bound number', async () => {
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(number_added, { number: '+15557000001', agent: 'sales', provider: 'twilio' }, T));
});

test('1,000 refusals from one source in a window: one row, then one aggregated count of the other 999', async () => {
  for (let i = 0; i < 1000; i++) assert.deepEqual(await routeInbound(store, call(`+1555${i}`, '192.0.2.1'), 'test', undefined, log), { kind: 'rejected', reason: 'unknown_number' });
  assert.equal(events('call_rejected').length, 1);
  assert.equal((events('call_rejected')[0]!.args as { to: string }).to, '+15550');
  assert.equal(events('call_rejections_aggregated').length, 0);
  await log.flush();
  const [agg, ...more] = events('call_rejections_aggregated');
  assert.equal(more.length, 0);
  assert.equal(agg!.tenant, UNROUTED_TENANT);
  assert.deepEqual(agg!.args, { provider: 'sip', source: '192.0.2.1', reason: 'unknown_number', count: 999, window_ms: 3_600_000, last_to: '+1555999' });
  assert.deepEqual(agg!.outcome, { ok: true, result: { reason: 'unknown_number', count: 999, since: agg!.ts - 3_600_000 } });
  // A new window: the next refusal is a row of its own again.
  await routeInbound(store, call('+1555x', '192.0.2.1'), 'test', undefined, log);
  assert.equal(events('call_rejected').length, 2);
});

test('keys: tenant, provider, source and reason class; a flood from many sources is bounded by the row budget (source *)', async () => {
  await log.flush();
  const before = events('call_rejected').length;
  // The tenant's provider-bound number through another ingress, twice from one source: one row in the tenant's log.
  await routeInbound(store, call('+15557000001', '192.0.2.9', 'webrtc'), 'test', undefined, log);
  await routeInbound(store, call('+15557000001', '192.0.2.9', 'webrtc'), 'test', undefined, log);
  // 100 distinct sources (a spoofed flood): 4 more rows fit the budget of 5, the other 96 are counted under `*`.
  for (let i = 0; i < 100; i++) await routeInbound(store, call('+1666', `198.51.100.${i}`), 'test', undefined, log);
  assert.equal(events('call_rejected').length - before, 5);
  await log.flush();
  const counts = events('call_rejections_aggregated').slice(-2).map((e) => [e.tenant, (e.args as { source: string }).source, (e.args as { reason: string }).reason, (e.args as { count: number }).count]);
  assert.deepEqual(counts.sort(), [
    ['_unrouted', '*', 'unknown_number', 96],
    ['acme', '192.0.2.9', 'provider_mismatch', 1],
  ]);
  assert.equal(reasonClass('over_capacity: 1 live calls, limit 1'), 'over_capacity');
  assert.ok(store.verify().ok);
  assert.ok(store.replay().ok, 'the aggregated events replay to the same outcomes');
});
