/** The table of erased calls (schema/content.ts writes it; kept apart so tables.ts imports no reducers). */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

const id = z.string().min(1).max(200);

/** One row per erased call: what the API, console and evidence pack show in place of its content. */
export const content_erasures = defineTable({
  name: 'content_erasures',
  primaryKey: 'call_id',
  tenantScoped: true,
  row: z.object({
    call_id: id,
    tenant: id,
    /** `request` (POST …/erase, by call or by subject) or `retention` (the sweep). */
    kind: z.enum(['request', 'retention']),
    erased_at: z.number().int().nonnegative(),
    erased_by: z.string().max(200),
    reason: z.string().max(1000),
    reference: z.string().max(200).nullable(),
    /** Ids of the destroyed keys (content key; recording keys go with their media). */
    keys: z.array(z.string().max(200)),
  }),
});

