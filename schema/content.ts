/**
 * Erasable content (issue 17), as data and one reducer.
 *
 * CONTENT_ARGS names, per reducer, the args fields that carry a call's content (transcript text, agent and tool
 * payloads, agent state, consent evidence: the caller's words or digits) and how the command names its call. The
 * submit path (recording/content-seal.ts, installed on the store by the gateway) seals exactly these fields with
 * the call's content key before the command is built, so events and rows hold ciphertext only; ids, times, states,
 * durations and hashes stay clear. CONTENT_COLUMNS names the table columns that then hold sealed values, for the
 * readers that open them (API, console, evidence pack, the agent's resume).
 *
 * `call_content_erased` records an erasure (a request, or retention): who (the command's caller), why (`reason`,
 * `reference`), when (the command's time) and which keys were destroyed. The keys themselves are destroyed outside
 * the log by the submitter once this is committed. Refused `legal_hold` while any of the call's recordings is on
 * hold; `content_erased` when already erased. The call's content columns are cleared (the FTS index follows its
 * rows), so tables keep no ciphertext either; the log keeps its ciphertext, unreadable without the key, so
 * `verify` and `replay` still pass.
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { loadCall } from './calls/lifecycle.ts';
import { defineReducer } from './reducer.ts';

/** How a content-carrying command names its call: an args field, or a row it refers to. */
export type CallOf = { arg: string } | { table: 'agent_actions' | 'consents'; arg: string };

export const CONTENT_ARGS: Readonly<Record<string, { call: CallOf; fields: readonly string[] }>> = {
  transcript_appended: { call: { arg: 'call_id' }, fields: ['text'] },
  agent_action_requested: { call: { arg: 'call_id' }, fields: ['args'] },
  agent_action_completed: { call: { table: 'agent_actions', arg: 'action_id' }, fields: ['result'] },
  agent_state_saved: { call: { arg: 'call_id' }, fields: ['state'] },
  consent_decided: { call: { table: 'consents', arg: 'consent_id' }, fields: ['evidence'] },
  consent_withdrawn: { call: { arg: 'call_id' }, fields: ['evidence'] },
  tool_approval_requested: { call: { arg: 'call_id' }, fields: ['args'] },
};

/** Table columns holding sealed content (the field name is the sealing's AAD, as in CONTENT_ARGS). */
export const CONTENT_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  transcript_segments: ['text'],
  agent_actions: ['args', 'result'],
  agent_state: ['state'],
  consents: ['evidence'],
  tool_approvals: ['args'],
};

const id = z.string().min(1).max(200);
export { content_erasures } from './content-tables.ts';

export const call_content_erased = defineReducer(
  'call_content_erased',
  z.strictObject({
    call_id: id,
    kind: z.enum(['request', 'retention']).default('request'),
    reason: z.string().min(1).max(1000),
    reference: z.string().min(1).max(200).nullable().default(null),
    keys: z.array(z.string().min(1).max(200)).max(50).default([]),
  }),
  (ctx, a) => {
    if (a.kind === 'request') requireCaller(ctx, 'content:erase');
    const call = loadCall(ctx, a.call_id);
    if (call.state !== 'ended') ctx.fail('call_active', `call ${call.id} is ${call.state}; erase it once it has ended`);
    if (ctx.db.content_erasures.get(call.id)) ctx.fail('content_erased', `the content of call ${call.id} is already erased`);
    const recordings = ctx.db.recordings.find({ call_id: call.id });
    if (recordings.some((r) => r.legal_hold)) ctx.fail('legal_hold', `call ${call.id} has a recording on legal hold; release the hold first`);
    ctx.db.content_erasures.insert({ call_id: call.id, tenant: ctx.tenant, kind: a.kind, erased_at: ctx.now, erased_by: ctx.caller, reason: a.reason, reference: a.reference, keys: a.keys });
    for (const s of ctx.db.transcript_segments.find({ call_id: call.id })) ctx.db.transcript_segments.update(s.id, { text: '' });
    for (const r of ctx.db.agent_actions.find({ call_id: call.id })) ctx.db.agent_actions.update(r.id, { args: null, result: null });
    if (ctx.db.agent_state.get(call.id)) ctx.db.agent_state.update(call.id, { state: {} });
    for (const c of ctx.db.consents.find({ call_id: call.id })) if (c.evidence !== null) ctx.db.consents.update(c.id, { evidence: null });
    for (const t of ctx.db.tool_approvals.find({ call_id: call.id })) if (t.args !== null) ctx.db.tool_approvals.update(t.id, { args: null });
    for (const r of recordings) {
      if (r.status === 'finalized' || r.status === 'failed') ctx.db.recordings.update(r.id, { status: 'purged', purged_at: ctx.now, uri: null });
    }
    return { call_id: call.id, erased_at: ctx.now, recordings: recordings.map((r) => r.id) };
  },
);

export const contentReducers = [call_content_erased];
