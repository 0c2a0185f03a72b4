/**
 * While the store cannot commit (a real SQLITE_FULL: the database capped at
 * its size with `PRAGMA max_page_count`), every inbound call gets the busy
 * answer at once, `store_unavailable`, with nothing written and no wait for
 * the disk — even with no call limits configured. Once space returns and the
 * store has recovered by itself, the same caller is admitted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallAdmission } from '../../../bridge/admission.ts';
import { routeInbound } from '../../../bridge/inbound.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { number_added, tenant_created } from '../../../schema/reducers.ts';
import { databaseOf } from '../../../store/testing.ts';

test('disk full: new calls get the busy answer with the reason, without writing; after recovery they are admitted', async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T));
  resultOf(await store.submit(number_added, { number: '+15557000002', agent: 'support' }, T));
  const gate = new CallAdmission({ maxCalls: 0, maxLoopLagMs: 0, live: new Set<string>(), storeFault: () => (store.health ? store.health.reason : null) });
  const call = { provider: 'twilio' as const, providerCallId: 'CA-full', from: '+15550001111', to: '+15557000002' };

  const db = databaseOf(store);
  db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
  // Something fills the last page (a live call's transcript, say): the store turns unhealthy.
  const waiting = Promise.all(Array.from({ length: 60 }, (_, i) => store.submit(number_added, { number: `+1555800${String(i).padStart(4, '0')}`, agent: 'x'.repeat(100) }, T)));
  await new Promise<void>((resolve) => store.onHealth((f) => f && resolve()));
  const head = store.head.seq;
  const decision = await routeInbound(store, call, 'test', gate);
  assert.deepEqual(decision, { kind: 'busy', reason: 'store_unavailable', retryAfterS: 30 });
  assert.equal(store.health?.waiting, 60, 'the refusal queued nothing behind the fault');

  db.pragma('max_page_count = 1073741823');
  (await waiting).forEach((r) => resultOf(r));
  assert.equal(store.health, null);
  assert.equal(store.head.seq, head + 60);
  const later = await routeInbound(store, call, 'test', gate);
  assert.equal(later.kind, 'accepted');
});
