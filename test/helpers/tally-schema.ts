/**
 * A small schema for testing the store on its own (the store knows nothing
 * about telephony): a tenant-scoped `tally` table and reducers that succeed,
 * fail after writing, or throw.
 */
import { z } from 'zod';
import { defineTable, reducerFactory, type SchemaDef } from '../../store/index.ts';

export const tally = defineTable({
  name: 'tally',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'color']],
  row: z.object({
    id: z.string(),
    tenant: z.string(),
    color: z.enum(['red', 'green', 'blue']),
    n: z.number().int(),
    tags: z.array(z.string()),
    flag: z.boolean(),
    note: z.string().nullable(),
  }),
});
const tables = { tally };
const r = reducerFactory<typeof tables>();

export const reducers = [
  r('put', z.object({ id: z.string().min(1), color: z.enum(['red', 'green', 'blue']).default('red'), n: z.number().int().default(0) }), (ctx, a) => {
    const existing = ctx.db.tally.get(a.id);
    if (existing) ctx.db.tally.update(a.id, { color: a.color, n: a.n });
    else ctx.db.tally.insert({ id: a.id, tenant: ctx.tenant, color: a.color, n: a.n, tags: [], flag: false, note: null });
    return { id: a.id, at: ctx.now, seq: ctx.seq, by: ctx.caller };
  }),
  r('put_then_fail', z.object({ id: z.string().min(1) }), (ctx, a) => {
    ctx.db.tally.insert({ id: a.id, tenant: ctx.tenant, color: 'red', n: 1, tags: ['x'], flag: true, note: 'half' });
    ctx.fail('no_way', 'wrote a row, then refused');
  }),
  r('put_then_throw', z.object({ id: z.string().min(1) }), (ctx, a) => {
    ctx.db.tally.insert({ id: a.id, tenant: ctx.tenant, color: 'red', n: 1, tags: [], flag: false, note: null });
    const missing = undefined as unknown as { x: number };
    return missing.x;
  }),
  /** Inserts, updates and deletes several rows, then refuses: every write must be undone. */
  r('churn_then_fail', z.object({ update: z.string(), remove: z.string(), insert: z.string() }), (ctx, a) => {
    ctx.db.tally.insert({ id: a.insert, tenant: ctx.tenant, color: 'blue', n: 9, tags: ['new'], flag: true, note: 'temp' });
    ctx.db.tally.update(a.update, { color: 'green', n: 42, tags: ['changed', 'twice'], note: 'first' });
    ctx.db.tally.update(a.update, { n: 43, flag: true });
    ctx.db.tally.delete(a.remove);
    ctx.db.tally.update(a.insert, { n: 10 });
    ctx.fail('no_way', 'churned, then refused');
  }),
  r('remove', z.object({ id: z.string() }), (ctx, a) => {
    if (!ctx.db.tally.delete(a.id)) ctx.fail('not_found', `no ${a.id}`);
  }),
  r('mint', z.object({ kind: z.string() }), (ctx, a) => ({ a: ctx.newId(a.kind), b: ctx.newId(a.kind) })),
];

export const tallySchema: SchemaDef<typeof tables> = { version: 1, tables, reducers };
