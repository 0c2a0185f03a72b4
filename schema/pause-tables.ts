/**
 * The tables of agent pauses and their fallbacks (reducers in schema/agent-pause.ts), in their own file so the
 * main table list (tables.ts) only names them.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const tsOrNull = ts.nullable();
/**
 * One row per pause of an agent (schema/agent-pause.ts): who paused it, when and why, and who resumed it when.
 * The open pause (resumed_at null) is what routes the agent's calls to their fallback.
 */
export const agent_pauses = defineTable({
  name: 'agent_pauses',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'agent']],
  row: z.object({
    id,
    tenant: id,
    agent: z.string().min(1).max(100),
    reason: z.string().max(500),
    /** Calls live when the pause began keep their agent. */
    keep_live: z.boolean(),
    paused_by: z.string().min(1).max(200),
    paused_at: ts,
    resumed_by: z.string().max(200).nullable(),
    resumed_at: tsOrNull,
  }),
});

/**
 * Where a paused agent's calls go, per number (`number_id`), or the tenant's default (id `default:<tenant>`,
 * number_id null): another agent, a transfer target, or a message then a hang-up.
 */
export const number_fallbacks = defineTable({
  name: 'number_fallbacks',
  primaryKey: 'id',
  tenantScoped: true,
  row: z.object({
    id: z.string().min(1).max(220),
    tenant: id,
    number_id: id.nullable(),
    kind: z.enum(['agent', 'transfer', 'message']),
    target: z.string().max(512).nullable(),
    message: z.string().max(1000).nullable(),
    set_by: z.string().min(1).max(200),
    set_at: ts,
  }),
});
