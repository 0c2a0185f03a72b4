/**
 * Tool authorisation's tables (reducers in schema/tool-approvals.ts):
 *
 *   tool_policies   per tenant and tool name: the requirement the tenant sets (it only ever tightens what the
 *                   tool declares: none < consent < approval)
 *   tool_approvals  one row per tool call that needs a person's approval, keyed by the tool call's request id:
 *                   pending ─► approved | denied (who, why, when) | expired (timeout) | cancelled (the call ended)
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();

/** What a tool needs before it runs, weakest first. */
export const TOOL_REQUIREMENTS = ['none', 'consent', 'approval'] as const;
export type ToolRequirement = (typeof TOOL_REQUIREMENTS)[number];
export const TOOL_APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled'] as const;
export const ToolName = z.string().min(1).max(100);

export const tool_policies = defineTable({
  name: 'tool_policies',
  primaryKey: 'id',
  tenantScoped: true,
  unique: [['tenant', 'tool']],
  row: z.object({
    id,
    tenant: id,
    tool: ToolName,
    requires: z.enum(TOOL_REQUIREMENTS),
    updated_by: z.string().max(200),
    updated_at: ts,
  }),
});

export const tool_approvals = defineTable({
  name: 'tool_approvals',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['tenant', 'status'], ['call_id']],
  unique: [['call_id', 'request_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    /** The tool call's idempotency key (agents/tools.ts toolRequestId), as on its `agent_actions` row. */
    request_id: id,
    agent: z.string().max(100),
    tool: ToolName,
    args: z.unknown().nullable(),
    status: z.enum(TOOL_APPROVAL_STATUSES),
    requested_at: ts,
    expires_at: ts,
    decided_at: ts.nullable(),
    /** The deciding user (`user:<id>`) or, for expired / cancelled, the gateway component. */
    decided_by: z.string().max(200).nullable(),
    reason: z.string().max(1000).nullable(),
  }),
});
