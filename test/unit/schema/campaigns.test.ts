/**
 * The campaign reducers' own checks (schema/campaigns.ts), with the command clock injected: the store refuses a
 * decision that would break the pace or the concurrency, and a number on the do-not-call list is never decided.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { campaign_attempt_decided, campaign_created, dnc_added, dnc_removed, number_added, tenant_created } from '../../../schema/reducers.ts';
import { openTestStore, resultOf } from '../../helpers/store.ts';

test('pace, concurrency and the do-not-call list are checked by the decision itself', async () => {
  let now = 1_000_000;
  const store = openTestStore({ clock: () => now });
  const who = { tenant: 'acme', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, who));
  resultOf(await store.submit(number_added, { number: '+15550001111', agent: 'default', provider: 'sip' }, who));
  const numbers = ['+15550100001', '+15550100002', '+15550100003', '+15550100004'].map((number) => ({ number, name: null, timezone: null }));
  const { campaign_id } = resultOf(
    await store.submit(campaign_created, {
      name: 'c', agent: null, from: '+15550001111', numbers, window_start: '00:00', window_end: '24:00', timezone: 'UTC',
      max_concurrent: 2, calls_per_second: 4, max_attempts: 1, retry_backoff_ms: 0, owner_node: 'n',
    }, who),
  );
  const [n1, n2, n3, n4] = store.read('acme').campaign_numbers.find({ campaign_id }, { orderBy: 'position' });
  const decide = (id: string) => store.submit(campaign_attempt_decided, { campaign_id, number_id: id, local_time: 't' }, who);

  assert.equal(resultOf(await decide(n1!.id)).attempt, 1);
  now += 249;
  const early = await decide(n2!.id);
  assert.equal(early.outcome.ok ? 'ok' : early.outcome.error.code, 'paced', '249 ms after a decision at 4/s');
  now += 1;
  assert.equal(resultOf(await decide(n2!.id)).dnc, false);
  now += 250;
  const full = await decide(n3!.id);
  assert.equal(full.outcome.ok ? 'ok' : full.outcome.error.code, 'concurrency_full');

  resultOf(await store.submit(dnc_added, { number: '+1 555 010 0004', reason: null }, who));
  const listed = resultOf(await decide(n4!.id));
  assert.equal(listed.dnc, true, 'listed: not decided, even with the campaign full');
  assert.equal(store.read('acme').campaign_numbers.get(n4!.id)!.state, 'dnc');
  assert.equal(store.read('acme').campaign_attempts.find({ number_id: n4!.id }).length, 0);
  resultOf(await store.submit(dnc_removed, { number: '+15550100004' }, who));
  const gone = await store.submit(dnc_removed, { number: '+15550100004' }, who);
  assert.equal(gone.outcome.ok ? 'ok' : gone.outcome.error.code, 'dnc_not_found');
  store.close();
});
