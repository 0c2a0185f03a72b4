/**
 * The tool gate: before an agent's tool runs, the store decides whether it may (schema/tool-approvals.ts).
 *
 *   tool call ─► (declares none, no policy for its name: run, as before)
 *             ─► tool_authorized {declared} ─► requires none ─────────────────────────────► run
 *                     │ consent_required ─► ToolRefusedError('consent')        consent (granted) ─► run
 *                     ▼ approval
 *               tool_approval_requested ─► pending: the caller hears the filler; wait for the row to change
 *                     │   approved ─► run           denied ─► ToolRefusedError('denied', reason)
 *                     │   timer at expires_at ─► tool_approval_expired ─► ToolRefusedError('timeout')
 *                     │   the call ends / the media closes ─► tool_approval_cancelled ─► ToolRefusedError('cancelled')
 *
 * The wait is on the store's own row subscription (a decision made through any node's API arrives through the log),
 * so it costs nothing while nobody decides. A retried turn asks with the same request id and finds the same row.
 * When a call ends, `endCall` (call-facts.ts) cancels what is still pending, waited on or not (cancelPendingApprovals).
 * Owns: the approval wait and its timer. The tool's own `agent_actions` row and idempotency stay in turn-actions.ts.
 */
import type { Logger } from 'pino';
import { ToolRefusedError, type Json, type ToolRequirement } from '../agents/sdk.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { tool_approval_cancelled, tool_approval_expired, tool_approval_requested, tool_authorized } from '../schema/reducers.ts';

/** Gateway settings for approval tools (SWITCHBOARD_TOOL_APPROVAL_TIMEOUT_MS, SWITCHBOARD_TOOL_APPROVAL_FILLER). */
export interface ToolApprovalSettings {
  timeoutMs: number;
  filler: string;
}

export const DEFAULT_TOOL_APPROVAL: ToolApprovalSettings = { timeoutMs: 120_000, filler: 'One moment please.' };

export interface ToolGateHost {
  readonly store: Store<SwitchboardTables>;
  readonly callId: string;
  readonly log: Logger;
  who(): { tenant: string; caller: string };
  readonly approval: ToolApprovalSettings;
  /** Aborted when the call's media closes: a pending request is cancelled. */
  readonly closed?: AbortSignal;
  /** Says the filler (not awaited: the caller hears it while the turn waits). */
  filler(text: string): void;
}

export interface ToolCall {
  agent: string;
  name: string;
  args: Json;
  requestId: string;
  declared: ToolRequirement;
}

type Final = { status: string; reason: string | null };

/** Resolves when the tool may run; rejects with a ToolRefusedError when it may not. */
export async function authorizeTool(host: ToolGateHost, call: ToolCall): Promise<void> {
  // A tool that declares nothing, with no policy for its name: today's path, no command (the policy row is read
  // again by the reducer whenever one exists).
  if (call.declared === 'none' && !host.store.read(host.who().tenant).tool_policies.findOne({ tool: call.name })) return;
  const auth = await host.store.submit(tool_authorized, { call_id: host.callId, request_id: call.requestId, tool: call.name, declared: call.declared }, host.who());
  if (!auth.outcome.ok) {
    const { code, message } = auth.outcome.error;
    if (code === 'consent_required') throw new ToolRefusedError('consent', null, `tool ${call.name} needs the caller's consent: ${message}`);
    if (code === 'call_ended') throw new ToolRefusedError('cancelled', null, `tool ${call.name}: the call has ended`);
    throw new Error(`tool ${call.name} not authorised: ${code}: ${message}`);
  }
  if (auth.outcome.result.requires !== 'approval') return;
  const req = await host.store.submit(
    tool_approval_requested,
    { call_id: host.callId, request_id: call.requestId, agent: call.agent, tool: call.name, args: call.args, timeout_ms: host.approval.timeoutMs },
    host.who(),
  );
  if (!req.outcome.ok) {
    if (req.outcome.error.code === 'call_ended') throw new ToolRefusedError('cancelled', null, `tool ${call.name}: the call has ended`);
    throw new Error(`tool ${call.name}: approval not requested: ${req.outcome.error.code}: ${req.outcome.error.message}`);
  }
  const { approval_id, expires_at } = req.outcome.result;
  let final: Final = { status: req.outcome.result.status, reason: req.outcome.result.reason };
  if (final.status === 'pending') {
    host.log.info({ approval_id, tool: call.name }, 'tool waits for approval');
    host.filler(host.approval.filler);
    final = await waitForDecision(host, approval_id, expires_at);
  }
  refuseUnlessApproved(call.name, final);
}

function refuseUnlessApproved(tool: string, final: Final): void {
  switch (final.status) {
    case 'approved':
      return;
    case 'denied':
      throw new ToolRefusedError('denied', final.reason, `tool ${tool} was denied${final.reason ? `: ${final.reason}` : ''}`);
    case 'expired':
      throw new ToolRefusedError('timeout', null, `tool ${tool} was not approved in time`);
    default:
      throw new ToolRefusedError('cancelled', null, `tool ${tool} was cancelled: ${final.reason ?? 'the call ended'}`);
  }
}

/** Waits for the row to leave `pending`: a decision, the timer, the call's end or the media closing. */
function waitForDecision(host: ToolGateHost, approvalId: string, expiresAt: number): Promise<Final> {
  const { store, who } = host;
  const tenant = who().tenant;
  return new Promise<Final>((resolve) => {
    let settled = false;
    const cleanups: Array<() => void> = [];
    const finish = (f: Final): void => {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      resolve(f);
    };
    const submitEnd = (kind: 'expired' | 'cancelled'): void => {
      if (settled) return;
      const done = kind === 'expired'
        ? store.submit(tool_approval_expired, { approval_id: approvalId }, who())
        : store.submit(tool_approval_cancelled, { approval_id: approvalId, reason: 'the call ended while waiting' }, who());
      done.then(
        (r) => {
          if (r.outcome.ok) {
            const result = r.outcome.result as { status: string; reason?: string | null };
            return finish({ status: result.status, reason: result.reason ?? null });
          }
          if (r.outcome.error.code === 'approval_pending') return void setTimeout(() => submitEnd(kind), 200).unref();
          host.log.warn({ outcome: r.outcome, approvalId }, 'tool approval not closed');
          finish({ status: 'cancelled', reason: r.outcome.error.message });
        },
        (err: unknown) => finish({ status: 'cancelled', reason: String(err) }),
      );
    };
    const onRow = (row: { status: string; reason: string | null } | undefined): void => {
      if (row && row.status !== 'pending') finish({ status: row.status, reason: row.reason });
    };
    const rows = store.subscribe('tool_approvals', { id: approvalId }, tenant, (d) => onRow(d.new as Final | undefined));
    cleanups.push(rows.unsubscribe);
    const calls = store.subscribe('calls', { id: host.callId }, tenant, (d) => {
      if ((d.new as { state?: string } | null)?.state === 'ended') submitEnd('cancelled');
    });
    cleanups.push(calls.unsubscribe);
    const timer = setTimeout(() => submitEnd('expired'), Math.max(0, expiresAt - Date.now()));
    cleanups.push(() => clearTimeout(timer));
    if (host.closed) {
      const onAbort = (): void => submitEnd('cancelled');
      if (host.closed.aborted) onAbort();
      else host.closed.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => host.closed?.removeEventListener('abort', onAbort));
    }
    onRow(rows.snapshot.rows[0] as Final | undefined);
    if ((calls.snapshot.rows[0] as { state?: string } | undefined)?.state === 'ended') submitEnd('cancelled');
  });
}

/**
 * The call has ended: its requests still pending are cancelled — also those nobody waits on any more (the node that
 * ran the turn restarted). A waiting turn sees the same change and tells its agent.
 */
export async function cancelPendingApprovals(store: Store<SwitchboardTables>, log: Logger, tenant: string, callId: string): Promise<void> {
  for (const row of store.read(tenant).tool_approvals.find({ call_id: callId, status: 'pending' })) {
    const r = await store.submit(tool_approval_cancelled, { approval_id: row.id, reason: 'the call ended while waiting' }, { tenant, caller: 'gateway:call-end' });
    if (!r.outcome.ok) log.warn({ outcome: r.outcome, approval: row.id }, 'pending tool approval not cancelled');
  }
}
