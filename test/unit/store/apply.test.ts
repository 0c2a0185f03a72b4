import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDurability, Store, StoreError } from '../../../store/index.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const A = { tenant: 'a', caller: 'alice' };
function open(dataDir = tmpDir(), clock?: () => number) {
  return Store.open({ dataDir, schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, node: 'n1', clock });
}

test('a command resolves with its outcome, seq and the reducer result; ctx carries the command time and caller', async (t) => {
  const store = open(tmpDir(), () => 1_700_000_000_000);
  t.after(() => store.close());
  const r = await store.submitNamed('put', { id: 'x', color: 'green', n: 3 }, A);
  assert.deepEqual(r, { seq: 1, duplicate: false, outcome: { ok: true, result: { id: 'x', at: 1_700_000_000_000, seq: 1, by: 'alice' } } });
  assert.deepEqual(store.read('a').tally.get('x'), { id: 'x', tenant: 'a', color: 'green', n: 3, tags: [], flag: false, note: null });
});

test('a rejection is a logged outcome that writes nothing', async (t) => {
  const store = open();
  t.after(() => store.close());
  const r = await store.submitNamed('put_then_fail', { id: 'y' }, A);
  assert.equal(r.seq, 1);
  assert.deepEqual(r.outcome, { ok: false, error: { code: 'no_way', message: 'wrote a row, then refused' } });
  assert.equal(store.read('a').tally.get('y'), undefined);
  const events = [...store.events()];
  assert.equal(events.length, 1);
  assert.deepEqual(events[0]?.outcome, r.outcome);
});

test('a reducer bug is an `internal` outcome, rolled back like any rejection', async (t) => {
  const store = open();
  t.after(() => store.close());
  const r = await store.submitNamed('put_then_throw', { id: 'z' }, A);
  assert.equal(r.outcome.ok, false);
  assert.equal(!r.outcome.ok && r.outcome.error.code, 'internal');
  assert.equal(store.read(null).tally.get('z'), undefined);
});

test('savepoint isolation: in one batch, failing commands change nothing and the others commit', async (t) => {
  const store = open();
  t.after(() => store.close());
  const results = await Promise.all([
    store.submitNamed('put', { id: 'a1' }, A),
    store.submitNamed('put_then_fail', { id: 'a2' }, A),
    store.submitNamed('put', { id: 'a3' }, A),
    store.submitNamed('put_then_throw', { id: 'a4' }, A),
    store.submitNamed('put', { id: 'a5' }, A),
  ]);
  assert.deepEqual(results.map((r) => r.seq), [1, 2, 3, 4, 5], 'one batch, applied in submission order');
  assert.deepEqual(results.map((r) => r.outcome.ok), [true, false, true, false, true]);
  assert.deepEqual(store.read('a').tally.find().map((r) => r.id), ['a1', 'a3', 'a5']);
  assert.equal(store.head.seq, 5);
  assert.ok(store.verify().ok);
});

test('a failing command that inserted, updated twice and deleted leaves the tables byte-identical to a store that never ran it', async (t) => {
  const seedAll = async (store: ReturnType<typeof open>) => {
    await store.submitNamed('put', { id: 'k1', color: 'blue', n: 5 }, A);
    await store.submitNamed('put', { id: 'k2', color: 'green', n: 6 }, A);
  };
  const a = open();
  t.after(() => a.close());
  const b = open();
  t.after(() => b.close());
  await seedAll(a);
  await seedAll(b);
  const before = a.read('a').tally.find();
  const [failed, ok] = await Promise.all([
    a.submitNamed('churn_then_fail', { update: 'k1', remove: 'k2', insert: 'k9' }, A),
    a.submitNamed('put', { id: 'k3' }, A),
  ]);
  await b.submitNamed('put', { id: 'k3' }, A);
  assert.equal(failed.outcome.ok, false);
  assert.equal(ok.outcome.ok, true, 'the next command in the batch commits');
  assert.deepEqual(a.read('a').tally.find().filter((r) => r.id !== 'k3'), before);
  assert.equal(a.read('a').tally.get('k9'), undefined);
  assert.equal(a.digest().digest, b.digest().digest, 'same table bytes as without the failed command');
  assert.ok(a.verify().ok);
});

test('a duplicate command id returns the recorded outcome without running again', async (t) => {
  const store = open();
  t.after(() => store.close());
  t.after(() => store.close());
  const first = await store.submitNamed('put', { id: 'd', n: 1 }, { ...A, id: 'webhook-retry-1' });
  await store.submitNamed('put', { id: 'd', n: 2 }, A);
  const again = await store.submitNamed('put', { id: 'd', n: 99 }, { ...A, id: 'webhook-retry-1' });
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
  assert.deepEqual(again.outcome, first.outcome);
  assert.equal(store.read('a').tally.get('d')?.n, 2, 'the duplicate did not execute');
  assert.equal(store.head.seq, 2);
  // Duplicates racing in the same batch share one execution.
  const racing = await Promise.all([1, 2, 3].map(() => store.submitNamed('put', { id: 'e', n: 7 }, { ...A, id: 'same' })));
  assert.equal(new Set(racing.map((r) => r.seq)).size, 1);
  assert.deepEqual(racing.map((r) => r.duplicate), [false, true, true]);
  assert.equal(store.head.seq, 3);
  // And after a restart the log still knows the id.
  const dir = store.dataDir;
  store.close();
  const reopened = open(dir);
  t.after(() => reopened.close());
  const later = await reopened.submitNamed('put', { id: 'e', n: 8 }, { ...A, id: 'same' });
  assert.equal(later.duplicate, true);
  assert.equal(reopened.read('a').tally.get('e')?.n, 7);
});

test('unknown reducers, invalid args and missing tenant are refused at the edge and nothing is written', async (t) => {
  const store = open();
  t.after(() => store.close());
  t.after(() => store.close());
  await assert.rejects(store.submitNamed('no_such', {}, A), (e: unknown) => e instanceof StoreError && e.code === 'unknown_reducer');
  await assert.rejects(
    store.submitNamed('put', { id: 42 }, A),
    (e: unknown) => e instanceof StoreError && e.code === 'invalid_args' && /id: .*expected string/i.test(e.message),
  );
  await assert.rejects(store.submitNamed('put', { id: 'ok', color: 'purple' }, A), (e: unknown) => e instanceof StoreError && e.code === 'invalid_args' && /color/.test(e.message));
  await assert.rejects(store.submitNamed('put', { id: 'ok' }, { tenant: '', caller: 'x' }), (e: unknown) => e instanceof StoreError && e.code === 'invalid_command');
  assert.equal(store.head.seq, 0);
  assert.equal([...store.events()].length, 0);
  store.close();
  await assert.rejects(store.submitNamed('put', { id: 'late' }, A), (e: unknown) => e instanceof StoreError && e.code === 'store_closed');
});

test('ctx.newId is deterministic from the command and distinct within it', async (t) => {
  const store = open();
  t.after(() => store.close());
  const r1 = await store.submitNamed('mint', { kind: 'call' }, { ...A, id: 'cmd-1' });
  const r2 = await store.submitNamed('mint', { kind: 'call' }, { ...A, id: 'cmd-2' });
  const v1 = r1.outcome.ok ? (r1.outcome.result as { a: string; b: string }) : null;
  const v2 = r2.outcome.ok ? (r2.outcome.result as { a: string; b: string }) : null;
  assert.ok(v1 && v2);
  assert.match(v1.a, /^call_[0-9a-z]{12}[0-9a-f]{10}$/);
  assert.ok(v2.a > v1.a, 'ids of later commands sort after earlier ones');
  assert.notEqual(v1.a, v1.b);
  assert.notEqual(v1.a, v2.a);
  const other = open();
  t.after(() => other.close());
  const again = await other.submitNamed('mint', { kind: 'call' }, { ...A, id: 'cmd-1' });
  assert.deepEqual(again.outcome, r1.outcome, 'same command id → same ids on any node');
});

test('tenant scoping: reads and writes never cross tenants', async (t) => {
  const store = open();
  t.after(() => store.close());
  await store.submitNamed('put', { id: 'shared-id', color: 'blue' }, A);
  // Tenant b cannot see or overwrite tenant a's row: its put tries an insert and hits the key.
  const r = await store.submitNamed('put', { id: 'shared-id', color: 'red' }, { tenant: 'b', caller: 'bob' });
  assert.equal(r.outcome.ok, false);
  assert.equal(store.read('b').tally.get('shared-id'), undefined);
  assert.deepEqual(store.read('b').tally.find({ color: 'blue' }), []);
  assert.equal(store.read('a').tally.get('shared-id')?.color, 'blue');
  const del = await store.submitNamed('remove', { id: 'shared-id' }, { tenant: 'b', caller: 'bob' });
  assert.equal(!del.outcome.ok && del.outcome.error.code, 'not_found');
  assert.ok(store.read('a').tally.get('shared-id'));
});

test('the read layer is read-only', (t) => {
  const store = open();
  t.after(() => store.close());
  const view = store.read('a').tally as unknown as { insert: (r: unknown) => void };
  assert.throws(() => view.insert({ id: 'x' }), /writes go through reducers/);
});

test('state and log survive a clean reopen, and seq continues', async (t) => {
  const dir = tmpDir();
  const s1 = open(dir);
  t.after(() => s1.close());
  t.after(() => s1.close());
  for (let i = 0; i < 10; i++) await s1.submitNamed('put', { id: `k${i}`, n: i }, A);
  const head = s1.head;
  s1.close();
  const s2 = open(dir);
  t.after(() => s2.close());
  assert.deepEqual(s2.head, head);
  const r = await s2.submitNamed('put', { id: 'k10' }, A);
  assert.equal(r.seq, 11);
  assert.equal(s2.read('a').tally.find().length, 11);
  assert.ok(s2.verify().ok);
});

test('the hot-path event body is byte-identical to canonicalJson({command, outcome})', async () => {
  const { canonicalJson } = await import('../../../store/canonical.ts');
  const { commandBody, commandBodyFrom } = await import('../../../store/log.ts');
  const command = { id: 'x"y', ts: 1_700_000_000_123, node: 'n\u00e9', tenant: 't', caller: 'c\n', reducer: 'put', args: { b: [1, { z: null, a: 'é' }], a: 1.5 } };
  const outcome = { ok: false as const, error: { code: 'no', message: 'm' } };
  const expected = canonicalJson({ command, outcome });
  assert.equal(commandBody(command, outcome), expected);
  assert.equal(commandBodyFrom(command, canonicalJson(command.args), canonicalJson(outcome)), expected);
});
