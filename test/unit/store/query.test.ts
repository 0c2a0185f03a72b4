/**
 * The tenant-bound query layer (store/query.ts) and the derived indexes it
 * reads (store/derived.ts), on a small schema of its own: `items` and `notes`
 * in two tenants, where the other tenant's rows deliberately name acme's keys
 * (a note on acme's item, an item whose ref is the other tenant's note). No
 * query of acme's may return, join, count, match or list another tenant's
 * rows or events; paging, ranges and the full-text index's upkeep (updates,
 * a failed command's undo, replay, a changed declaration) are checked too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { defineTable, reducerFactory, resolveDurability, Store, StoreError, type DerivedIndex, type SchemaDef } from '../../../store/index.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const items = defineTable({
  name: 'items',
  primaryKey: 'id',
  tenantScoped: true,
  row: z.object({ id: z.string(), tenant: z.string(), ref: z.string().nullable(), at: z.number(), done: z.boolean() }),
});
const notes = defineTable({
  name: 'notes',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['item_id']],
  row: z.object({ id: z.string(), tenant: z.string(), item_id: z.string(), text: z.string() }),
});
const tables = { items, notes };
const r = reducerFactory<typeof tables>();
const reducers = [
  r('item_put', z.object({ item_id: z.string(), ref: z.string().nullable().default(null), at: z.number() }), (ctx, a) => {
    ctx.db.items.insert({ id: a.item_id, tenant: ctx.tenant, ref: a.ref, at: a.at, done: false });
  }),
  r('item_make', z.object({ at: z.number() }), (ctx, a) => {
    const id = ctx.newId('item');
    ctx.db.items.insert({ id, tenant: ctx.tenant, ref: null, at: a.at, done: true });
    return { item_id: id };
  }),
  // No check that the item is the caller's: another tenant may name acme's item id (the rows the test is about).
  r('note_put', z.object({ note_id: z.string(), item_id: z.string(), text: z.string() }), (ctx, a) => {
    ctx.db.notes.insert({ id: a.note_id, tenant: ctx.tenant, item_id: a.item_id, text: a.text });
  }),
  r('note_edit', z.object({ note_id: z.string(), text: z.string() }), (ctx, a) => {
    ctx.db.notes.update(a.note_id, { text: a.text });
  }),
  r('note_put_then_fail', z.object({ note_id: z.string(), item_id: z.string(), text: z.string() }), (ctx, a) => {
    ctx.db.notes.insert({ id: a.note_id, tenant: ctx.tenant, item_id: a.item_id, text: a.text });
    ctx.fail('nope', 'rolled back');
  }),
];
const noteSearch: DerivedIndex = { kind: 'fulltext', name: 'notes_fts', table: 'notes', text: 'text', carry: ['item_id'] };
const itemEvents: DerivedIndex = { kind: 'log', name: 'item_events', subject: ['item_id', 'note_id'], results: { item_make: 'item_id' }, related: { notes: 'item_id' } };
const schema = (derived: DerivedIndex[] = [noteSearch, itemEvents]): SchemaDef<typeof tables> => ({ version: 1, tables, reducers, derived });

const dir = tmpDir();
const open = (s = schema()) => Store.open({ dataDir: dir, schema: s, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, checkpointEvery: 4, node: 'n1' });
let store: Store<typeof tables>;
let made = '';

async function ok(reducer: string, args: unknown, tenant: string): Promise<unknown> {
  const { outcome } = await store.submitNamed(reducer, args, { tenant, caller: 'test' });
  assert.ok(outcome.ok, `${reducer}: ${JSON.stringify(outcome)}`);
  return outcome.result;
}

before(async () => {
  store = open();
  for (let i = 1; i <= 5; i++) await ok('item_put', { item_id: `a${i}`, at: 100 + (i % 3) }, 'acme');
  await ok('item_put', { item_id: 'b1', at: 100 }, 'other');
  await ok('note_put', { note_id: 'an1', item_id: 'a1', text: 'the blue invoice' }, 'acme');
  // The other tenant's note on acme's item, and an acme item whose ref is that note's id.
  await ok('note_put', { note_id: 'bn1', item_id: 'a1', text: 'secret invoice of the other tenant' }, 'other');
  await ok('item_put', { item_id: 'a6', ref: 'bn1', at: 50 }, 'acme');
  await ok('item_put', { item_id: 'a7', ref: 'an1', at: 50 }, 'acme');
  await ok('note_edit', { note_id: 'an1', text: 'the green invoice' }, 'acme');
  made = ((await ok('item_make', { at: 10 }, 'acme')) as { item_id: string }).item_id;
  const failed = await store.submitNamed('note_put_then_fail', { note_id: 'an2', item_id: 'a2', text: 'ghost words' }, { tenant: 'acme', caller: 'test' });
  assert.equal(failed.outcome.ok, false);
});
after(() => store.close());

const acme = () => store.query('acme');
const other = () => store.query('other');

test('a table read holds only the tenant\'s rows, whatever the filter names', () => {
  assert.deepEqual(acme().from('items').all().map((i) => i.id).sort(), ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', made].sort());
  assert.deepEqual(other().from('items').all().map((i) => i.id), ['b1']);
  assert.deepEqual(acme().from('items').where({ id: 'b1' }).all(), [], 'another tenant\'s key is not found');
  assert.deepEqual(acme().from('items').where({ tenant: 'other' }).all(), [], 'a tenant in the filter narrows, never widens');
  assert.equal(acme().from('notes').count(), 1);
  assert.equal(acme().from('notes').where({ item_id: 'a1' }).count(), 1, 'the other tenant\'s note on acme\'s item is not counted');
  assert.deepEqual(other().from('notes').where({ item_id: 'a1' }).all().map((n) => n.id), ['bn1']);
});

test('joins and EXISTS see only the tenant\'s rows', () => {
  const rows = acme().from('items').leftJoin('note', 'notes', { id: 'ref' }, ['text']).exists('noted', 'notes', { item_id: 'id' }).where({ id: ['a1', 'a6', 'a7'] }).all();
  const byId = new Map(rows.map((row) => [row.id, row]));
  assert.equal(byId.get('a6')?.note, null, 'a ref to the other tenant\'s note joins nothing');
  assert.deepEqual(byId.get('a7')?.note, { text: 'the green invoice' });
  assert.equal(byId.get('a1')?.noted, true);
  assert.equal(byId.get('a6')?.noted, false);
  const missing = acme().from('items').leftJoin('note', 'notes', { id: 'ref' }, ['text']).where({ id: ['a6', 'a7'] }).whereJoined('note', null).all();
  assert.deepEqual(missing.map((row) => row.id), ['a6']);
  const byText = acme().from('items').leftJoin('note', 'notes', { id: 'ref' }, ['text']).whereJoined('note', { text: 'secret invoice of the other tenant' }).all();
  assert.deepEqual(byText, []);
});

test('full-text matches are the tenant\'s, follow updates and forget a failed command\'s rows', () => {
  assert.deepEqual(acme().from('items').match('notes_fts', 'secret', { via: 'item_id' }).all(), [], 'the other tenant\'s note text never finds acme\'s item');
  assert.deepEqual(other().from('notes').match('notes_fts', 'secret').all().map((n) => n.id), ['bn1']);
  assert.deepEqual(acme().from('items').match('notes_fts', 'invoice', { via: 'item_id' }).all().map((i) => i.id), ['a1']);
  assert.deepEqual(acme().from('notes').match('notes_fts', 'green').all().map((n) => n.id), ['an1'], 'the edited text is indexed');
  assert.deepEqual(acme().from('notes').match('notes_fts', 'blue').all(), [], 'the old text is gone');
  assert.deepEqual(acme().from('notes').match('notes_fts', 'ghost').all(), [], 'a failed command\'s note was undone in the index too');
  assert.deepEqual(acme().from('notes').match('notes_fts', '" * ()').all(), [], 'nothing to search for matches nothing');
  assert.deepEqual(acme().from('notes').match('notes_fts', 'gre').all().map((n) => n.id), ['an1'], 'words match as prefixes');
});

test('a subject\'s log events are the tenant\'s only (args, related rows, results)', () => {
  const mine = acme().events('item_events', 'a1');
  assert.ok(mine.length > 0);
  assert.ok(mine.every((e) => e.tenant === 'acme'));
  assert.deepEqual(mine.map((e) => e.reducer), ['item_put', 'note_put', 'note_edit'], 'note_edit names only the note: found through the related notes row');
  assert.deepEqual(other().events('item_events', 'a1').map((e) => [e.tenant, e.reducer]), [['other', 'note_put']]);
  assert.deepEqual(acme().events('item_events', made).map((e) => e.reducer), ['item_make'], 'named only in the result');
  assert.deepEqual(other().events('item_events', made), []);
  const withBodies = acme().eventsWithBodies('item_events', 'a1');
  assert.deepEqual(withBodies.map(({ body: _b, ...e }) => e), mine);
  for (const ev of withBodies) {
    const [link] = acme().chainLinks(ev.seq, ev.seq);
    assert.equal(link?.digest, createHash('sha256').update(ev.body).digest('hex'), 'the body is the exact hashed text');
    assert.equal(link?.hash, ev.hash);
  }
  const cp = acme().checkpointFrom(1);
  assert.ok(cp && cp.node === 'n1' && cp.seq >= 1 && cp.payload.includes(cp.hash));
});

test('ordering, ranges and keyset paging', () => {
  const order = () => acme().from('items').range('at', { gte: 100, lt: 102 }).orderBy(['at', 'desc'], ['id', 'desc']);
  const all = order().all().map((i) => i.id);
  assert.deepEqual(all, ['a4', 'a1', 'a3'], 'at 101, 101, 100 (a2 and a5 are at 102, outside)');
  const pages: string[] = [];
  let last: { at: number; id: string } | undefined;
  for (;;) {
    const q = order().limit(2);
    if (last) q.after([last.at, last.id]);
    const page = q.all();
    pages.push(...page.map((i) => i.id));
    const tail = page.at(-1);
    if (page.length < 2 || !tail) break;
    last = tail;
  }
  assert.deepEqual(pages, all);
  assert.deepEqual(acme().from('items').whereAny(['id', 'ref'], 'an1').all().map((i) => i.id), ['a7']);
  assert.deepEqual(acme().from('items').where({ done: true }).all().map((i) => i.id), [made]);
  assert.deepEqual(acme().from('items').where({ ref: null, at: 50 }).all(), []);
  assert.equal(acme().from('items').where({ id: [] }).count(), 0);
});

test('names outside the definitions are refused; a query needs a tenant', () => {
  assert.throws(() => acme().from('nope' as 'items'), StoreError);
  assert.throws(() => acme().from('items').where({ nope: 1 } as never), /no column nope/);
  assert.throws(() => acme().from('items').orderBy(['id; DROP TABLE items' as 'id', 'asc']), /no column/);
  assert.throws(() => acme().events('notes_fts', 'a1'), /no log index/);
  assert.throws(() => acme().from('items').match('item_events', 'x'), /no full-text index/);
  assert.throws(() => store.query(''), StoreError);
});

test('derived indexes survive replay and a reopen, and are rebuilt when their declaration changes', () => {
  assert.ok(store.replay().ok);
  store.close();
  store = open();
  assert.deepEqual(acme().from('notes').match('notes_fts', 'green').all().map((n) => n.id), ['an1']);
  store.close();
  // The index now carries nothing beside the key: dropped, created again and refilled from the notes.
  store = open(schema([{ ...noteSearch, carry: [] }, itemEvents]));
  assert.deepEqual(acme().from('notes').match('notes_fts', 'green').all().map((n) => n.id), ['an1']);
  assert.throws(() => acme().from('items').match('notes_fts', 'green', { via: 'item_id' }), /does not carry item_id/);
  assert.deepEqual(acme().events('item_events', 'a1').map((e) => e.reducer), ['item_put', 'note_put', 'note_edit']);
  assert.ok(store.replay().ok);
});
