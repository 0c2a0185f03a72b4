/**
 * Tool authorisation (tables in schema/tool-approval-tables.ts). A tool declares what it needs — `none`, `consent`
 * or `approval` — and the tenant's policy may tighten that per tool name, never loosen it. Each step is a command
 * in the log, so the log shows why a tool ran or did not:
 *
 *   tool_policy_set            a tenant's requirement for a tool name (users with tools:policy)
 *   tool_authorized            before a tool runs: the effective requirement = max(declared, policy); `consent` and
 *                              `approval` fail with consent_required unless the call's consent is granted
 *   tool_approval_requested    an `approval` tool: a pending row (tool, args, call, expires_at); the same request id
 *                              again returns the row as it stands (a retried turn waits on the same request)
 *   tool_approval_decided      approve / deny by a user with tools:approve (who, why); only a pending row, only
 *                              before it expires — a second decision fails with approval_decided
 *   tool_approval_expired      the timeout ran out while pending (the bridge's timer); a decided row stays decided
 *   tool_approval_cancelled    the call ended while the request was pending
 *
 * The tool itself still runs through its `agent_actions` row and idempotency key: approved twice, or seen approved
 * on two nodes, it executes once.
 */
import { z } from 'zod';
import type { Json } from '../store/index.ts';
import { requireCaller } from './access.ts';
import { loadCall } from './calls/lifecycle.ts';
import { requireConsent } from './consent.ts';
import { defineReducer, type Ctx } from './reducer.ts';
import { TOOL_REQUIREMENTS, ToolName, type ToolRequirement } from './tool-approval-tables.ts';

const id = z.string().min(1).max(200);
const Requirement = z.enum(TOOL_REQUIREMENTS);
/** The longest a request may wait for a person (1 h); the gateway's default is 120 s. */
export const MAX_APPROVAL_TIMEOUT_MS = 3_600_000;

/** The stricter of two requirements. */
export function stricter(a: ToolRequirement, b: ToolRequirement): ToolRequirement {
  return TOOL_REQUIREMENTS.indexOf(a) >= TOOL_REQUIREMENTS.indexOf(b) ? a : b;
}

/** The requirement a tool call meets in this tenant: what it declares, tightened by the tenant's policy. */
export function effectiveRequirement(ctx: Ctx, tool: string, declared: ToolRequirement): ToolRequirement {
  const policy = ctx.db.tool_policies.findOne({ tenant: ctx.tenant, tool });
  return policy ? stricter(declared, policy.requires) : declared;
}

export const tool_policy_set = defineReducer('tool_policy_set', z.strictObject({ tool: ToolName, requires: Requirement }), (ctx, a) => {
  requireCaller(ctx, 'tools:policy');
  const existing = ctx.db.tool_policies.findOne({ tenant: ctx.tenant, tool: a.tool });
  if (existing) ctx.db.tool_policies.update(existing.id, { requires: a.requires, updated_by: ctx.caller, updated_at: ctx.now });
  else ctx.db.tool_policies.insert({ id: ctx.newId('tpol'), tenant: ctx.tenant, tool: a.tool, requires: a.requires, updated_by: ctx.caller, updated_at: ctx.now });
  return { tool: a.tool, requires: a.requires };
});

export const tool_authorized = defineReducer(
  'tool_authorized',
  z.strictObject({ call_id: id, request_id: id, tool: ToolName, declared: Requirement }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const requires = effectiveRequirement(ctx, a.tool, a.declared);
    if (requires !== 'none') requireConsent(ctx, call, 'tool');
    return { requires };
  },
);

export const tool_approval_requested = defineReducer(
  'tool_approval_requested',
  z.strictObject({
    call_id: id,
    request_id: id,
    agent: z.string().max(100),
    tool: ToolName,
    args: z.unknown().nullable().default(null),
    timeout_ms: z.number().int().positive().max(MAX_APPROVAL_TIMEOUT_MS),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const existing = ctx.db.tool_approvals.findOne({ call_id: call.id, request_id: a.request_id });
    if (existing) return { approval_id: existing.id, status: existing.status, expires_at: existing.expires_at, reason: existing.reason, existing: true };
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const approvalId = ctx.newId('tap');
    const expiresAt = ctx.now + a.timeout_ms;
    ctx.db.tool_approvals.insert({
      id: approvalId,
      tenant: ctx.tenant,
      call_id: call.id,
      request_id: a.request_id,
      agent: a.agent,
      tool: a.tool,
      args: a.args as Json,
      status: 'pending',
      requested_at: ctx.now,
      expires_at: expiresAt,
      decided_at: null,
      decided_by: null,
      reason: null,
    });
    return { approval_id: approvalId, status: 'pending' as const, expires_at: expiresAt, reason: null, existing: false };
  },
);

function loadPending(ctx: Ctx, approvalId: string) {
  const row = ctx.db.tool_approvals.get(approvalId);
  if (!row) return ctx.fail('approval_not_found', `no tool approval ${approvalId}`);
  return row;
}

export const tool_approval_decided = defineReducer(
  'tool_approval_decided',
  z.strictObject({ approval_id: id, decision: z.enum(['approve', 'deny']), reason: z.string().max(1000).nullable().default(null) }),
  (ctx, a) => {
    requireCaller(ctx, 'tools:approve');
    const row = loadPending(ctx, a.approval_id);
    if (row.status !== 'pending') ctx.fail('approval_decided', `tool approval ${row.id} is already ${row.status}`);
    if (ctx.now >= row.expires_at) ctx.fail('approval_expired', `tool approval ${row.id} timed out before the decision`);
    const status = a.decision === 'approve' ? 'approved' : 'denied';
    ctx.db.tool_approvals.update(row.id, { status, decided_at: ctx.now, decided_by: ctx.caller, reason: a.reason });
    return { approval_id: row.id, status };
  },
);

export const tool_approval_expired = defineReducer('tool_approval_expired', z.strictObject({ approval_id: id }), (ctx, a) => {
  const row = loadPending(ctx, a.approval_id);
  if (row.status !== 'pending') return { approval_id: row.id, status: row.status, reason: row.reason };
  if (ctx.now < row.expires_at) ctx.fail('approval_pending', `tool approval ${row.id} is pending until ${row.expires_at}`);
  ctx.db.tool_approvals.update(row.id, { status: 'expired', decided_at: ctx.now, decided_by: ctx.caller, reason: 'no decision in time' });
  return { approval_id: row.id, status: 'expired' as const, reason: 'no decision in time' };
});

export const tool_approval_cancelled = defineReducer(
  'tool_approval_cancelled',
  z.strictObject({ approval_id: id, reason: z.string().min(1).max(1000) }),
  (ctx, a) => {
    const row = loadPending(ctx, a.approval_id);
    if (row.status !== 'pending') return { approval_id: row.id, status: row.status };
    ctx.db.tool_approvals.update(row.id, { status: 'cancelled', decided_at: ctx.now, decided_by: ctx.caller, reason: a.reason });
    return { approval_id: row.id, status: 'cancelled' as const };
  },
);

export const toolApprovalReducers = [tool_policy_set, tool_authorized, tool_approval_requested, tool_approval_decided, tool_approval_expired, tool_approval_cancelled];
