/**
 * Who could hear whom in a call, and when: the mix matrix (media/mix-matrix.ts) as rows. Every change of a call's
 * matrix is one `call_matrices` row written by `call_matrix_set` (through bridge/call-facts.ts), so the log says
 * exactly who could hear whom from which moment, and a restart rebuilds the mixer from the call's last row.
 *
 *   call_matrix_set {call_id, legs, hears, reason, peer_call_id?}
 *     ─► the matrix is checked (matrixProblem: one caller, known legs, nobody hears itself) and put in canonical
 *        order; the same matrix as the call's last row is no change: that row is returned (`existing: true`)
 *     ─► a new row, `n` = the call's last n + 1 (the call's first row is n = 1)
 *
 *   reason         why it changed: `warm:hold` (the caller hears hold, the human is dialled), `warm:brief` (the human
 *                  answered and hears the agent's summary), `warm:bridged` (caller ⇄ human, the agent left),
 *                  `warm:failed:<why>` (back to caller ⇄ agent), `blind:hold` / `blind:bridged` / `blind:failed:<why>`
 *                  (a blind transfer the gateway dials and bridges), `refer:hold` / `refer:bridged` (a bridged human
 *                  handed the call onward by SIP REFER), `two-party` …
 *   peer_call_id   the call row of another leg the matrix names (the human's outbound call), or null
 *
 * The caller is the call's own agent (`agent:…`) or the system; the call must not have ended.
 */
import { z } from 'zod';
import { defineTable } from '../store/index.ts';
import { defineReducer, type Ctx } from './reducer.ts';
import { loadCall } from './calls/lifecycle.ts';
import { canonicalMatrix, matrixProblem, MAX_MIX_LEGS, MIX_ROLES } from './mix-shape.ts';

const id = z.string().min(1).max(200);
const ts = z.number().int().nonnegative();
const legId = z.string().min(1).max(100);
const Leg = z.object({ id: legId, role: z.enum(MIX_ROLES) });
const Hears = z.record(legId, z.array(legId).max(MAX_MIX_LEGS));

export const call_matrices = defineTable({
  name: 'call_matrices',
  primaryKey: 'id',
  tenantScoped: true,
  indexes: [['call_id'], ['peer_call_id']],
  row: z.object({
    id,
    tenant: id,
    call_id: id,
    /** 1, 2, … per call, in log order: the highest is the matrix in force. */
    n: z.number().int().positive(),
    legs: z.array(Leg).max(MAX_MIX_LEGS),
    hears: Hears,
    reason: z.string().min(1).max(200),
    peer_call_id: id.nullable(),
    changed_by: z.string().min(1).max(200),
    changed_at: ts,
  }),
});

export type CallMatrixRow = NonNullable<ReturnType<Ctx['db']['call_matrices']['get']>>;

/** The call's matrix in force (its highest `n`), or undefined when it never had one (a plain two-party call). */
export function currentMatrix(rows: readonly CallMatrixRow[]): CallMatrixRow | undefined {
  let last: CallMatrixRow | undefined;
  for (const r of rows) if (!last || r.n > last.n) last = r;
  return last;
}

export const call_matrix_set = defineReducer(
  'call_matrix_set',
  z.object({
    call_id: id,
    legs: z.array(Leg).min(1).max(MAX_MIX_LEGS),
    hears: Hears,
    reason: z.string().min(1).max(200),
    peer_call_id: id.nullable().default(null),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const problem = matrixProblem({ legs: a.legs, hears: a.hears });
    if (problem) ctx.fail('invalid_matrix', problem);
    const m = canonicalMatrix({ legs: a.legs, hears: a.hears });
    const last = currentMatrix(ctx.db.call_matrices.find({ call_id: call.id }));
    if (last && last.reason === a.reason && JSON.stringify({ legs: last.legs, hears: last.hears }) === JSON.stringify(m)) {
      return { matrix_id: last.id, n: last.n, existing: true };
    }
    const n = (last?.n ?? 0) + 1;
    const matrixId = ctx.newId('mtx');
    ctx.db.call_matrices.insert({
      id: matrixId,
      tenant: ctx.tenant,
      call_id: call.id,
      n,
      legs: m.legs.map((l) => ({ id: l.id, role: l.role })),
      hears: m.hears as Record<string, string[]>,
      reason: a.reason,
      peer_call_id: a.peer_call_id,
      changed_by: ctx.caller,
      changed_at: ctx.now,
    });
    return { matrix_id: matrixId, n, existing: false };
  },
);

export const callMatrixReducers = [call_matrix_set];
