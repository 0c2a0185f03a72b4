/**
 * A call's request for media-side answering-machine detection (`POST /v1/calls` with `amd`): one row per call,
 * written right after `call_dialed`, read when the answered call's media attaches (bridge/amd-stage.ts).
 *
 *   call_amd_requested {call_id, on_unknown, timeout_ms} ─► `amd_requests` row (keyed by call_id)
 *
 * `on_unknown` is what an `unknown` decision (silence, nothing to tell) is treated as: `human` (the agent starts),
 * `machine` (the agent leaves its voicemail) or `hangup` (the call ends `amd:unknown`). The decision itself is a
 * `call_answered_by` row (schema/answered-by.ts). A row, not memory: a restarted node and every node of a cluster
 * know the call asked for detection.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { loadCall } from './calls/lifecycle.ts';
import { defineReducer } from './reducer.ts';

export const AMD_ON_UNKNOWN = ['human', 'machine', 'hangup'] as const;
export type AmdOnUnknown = (typeof AMD_ON_UNKNOWN)[number];

/** `POST /v1/calls` `amd` (enabled): what an undecided (`unknown`) answer is treated as, and how long to listen. */
export interface AmdRequest {
  onUnknown: AmdOnUnknown;
  timeoutMs: number;
}

const id = z.string().min(1).max(200);
/** Bounds of the detector's listening time (ms). */
export const AMD_TIMEOUT_MIN_MS = 2000;
export const AMD_TIMEOUT_MAX_MS = 60_000;

export const amd_requests = defineTable({
  name: 'amd_requests',
  primaryKey: 'call_id',
  tenantScoped: true,
  row: z.object({
    call_id: id,
    tenant: id,
    on_unknown: z.enum(AMD_ON_UNKNOWN),
    timeout_ms: z.number().int().min(AMD_TIMEOUT_MIN_MS).max(AMD_TIMEOUT_MAX_MS),
    requested_at: z.number().int().nonnegative(),
  }),
});

export const call_amd_requested = defineReducer(
  'call_amd_requested',
  z.object({
    call_id: id,
    on_unknown: z.enum(AMD_ON_UNKNOWN),
    timeout_ms: z.number().int().min(AMD_TIMEOUT_MIN_MS).max(AMD_TIMEOUT_MAX_MS),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.direction !== 'outbound') ctx.fail('not_outbound', `call ${call.id} is not an outbound call`);
    const existing = ctx.db.amd_requests.get(call.id);
    if (existing) return { call_id: call.id, existing: true };
    ctx.db.amd_requests.insert({ call_id: call.id, tenant: ctx.tenant, on_unknown: a.on_unknown, timeout_ms: a.timeout_ms, requested_at: ctx.now });
    return { call_id: call.id, existing: false };
  },
);

export const amdRequestReducers = [call_amd_requested];
