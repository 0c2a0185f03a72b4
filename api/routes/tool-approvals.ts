/**
 * Tool authorisation over the API (schema/tool-approvals.ts, bridge/tool-gate.ts):
 *
 *   GET  /v1/tool-approvals[?status=pending&call_id=…]   requests (tool, arguments, call, who decided, why)   tools:approve
 *   POST /v1/tool-approvals/:id/approve   body { reason? }   the waiting tool runs (once)                       tools:approve
 *   POST /v1/tool-approvals/:id/deny      body { reason? }   the agent gets a `denied` refusal with the reason  tools:approve
 *   GET  /v1/tool-policies                                    the tenant's per-tool requirements                tools:policy
 *   PUT  /v1/tool-policies/:tool          body { requires }   tighten a tool (none | consent | approval)          tools:policy
 *
 * A decision is a command as the signed-in user (the row keeps who and why). A second decision, or one after the
 * timeout, is 409 (`approval_decided`, `approval_expired`); another tenant's request is 404.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TOOL_APPROVAL_STATUSES, TOOL_REQUIREMENTS, ToolName } from '../../schema/tool-approval-tables.ts';
import { authorize } from '../auth/principal.ts';
import { parse, submitAs, type ApiContext } from '../context.ts';
import { iso, isoOrNull } from './time.ts';
import { tool_approval_decided, tool_policy_set } from '../../schema/reducers.ts';
import type { SwitchboardTables } from '../../schema/index.ts';
import type { z as Z } from 'zod';

type ApprovalRow = Z.infer<SwitchboardTables['tool_approvals']['row']>;

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const ToolParam = z.strictObject({ tool: ToolName });
const DecisionBody = z.strictObject({ reason: z.string().max(1000).optional() });
const PolicyBody = z.strictObject({ requires: z.enum(TOOL_REQUIREMENTS) });
const ListQuery = z.strictObject({
  status: z.enum(TOOL_APPROVAL_STATUSES).optional(),
  call_id: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function approvalView(r: ApprovalRow) {
  return {
    id: r.id,
    call_id: r.call_id,
    agent: r.agent,
    tool: r.tool,
    args: r.args ?? null,
    status: r.status,
    requested_at: iso(r.requested_at),
    expires_at: iso(r.expires_at),
    decided_at: isoOrNull(r.decided_at),
    decided_by: r.decided_by,
    reason: r.reason,
  };
}

export function mountToolApprovalRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/tool-approvals', async (req) => {
    const p = authorize(ctx, req, 'tools:approve');
    const q = parse(ListQuery, req.query);
    const where: { status?: ApprovalRow['status']; call_id?: string } = {};
    if (q.status) where.status = q.status;
    if (q.call_id) where.call_id = q.call_id;
    const rows = ctx.store.read(p.tenant).tool_approvals.find(where, { orderBy: 'requested_at', desc: true, limit: q.limit });
    return { tool_approvals: rows.map(approvalView) };
  });

  for (const decision of ['approve', 'deny'] as const) {
    app.post(`/v1/tool-approvals/:id/${decision}`, async (req) => {
      const p = authorize(ctx, req, 'tools:approve');
      const { id } = parse(IdParam, req.params);
      const body = parse(DecisionBody, req.body);
      await submitAs(ctx, p, tool_approval_decided, { approval_id: id, decision, reason: body.reason ?? null });
      const row = ctx.store.read(p.tenant).tool_approvals.get(id);
      return row ? approvalView(row) : { id, status: decision === 'approve' ? 'approved' : 'denied' };
    });
  }

  app.get('/v1/tool-policies', async (req) => {
    const p = authorize(ctx, req, 'tools:policy');
    const rows = ctx.store.read(p.tenant).tool_policies.find({}, { orderBy: 'tool' });
    return { tool_policies: rows.map((r) => ({ tool: r.tool, requires: r.requires, updated_by: r.updated_by, updated_at: iso(r.updated_at) })) };
  });

  app.put('/v1/tool-policies/:tool', async (req) => {
    const p = authorize(ctx, req, 'tools:policy');
    const { tool } = parse(ToolParam, req.params);
    const body = parse(PolicyBody, req.body);
    return submitAs(ctx, p, tool_policy_set, { tool, requires: body.requires });
  });
}
