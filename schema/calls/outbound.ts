/**
 * Agent-initiated (outbound) calls. `call_dialed` is the fact "we are placing
 * a call from one of the tenant's numbers to `to`": it checks the caller may
 * originate calls (`calls:originate`, when a user asks), that `from` is a
 * number of the tenant, and writes the call row (direction outbound, state
 * `ringing`) keyed by the provider's call id (the SIP Call-ID, chosen by the
 * dialer before the command, so a retry finds the same row). From there the
 * call moves through the same lifecycle reducers as an inbound one.
 */
import { z } from 'zod';
import { requireCaller } from '../access.ts';
import { defineReducer } from '../reducer.ts';
import { ProviderName } from '../tables.ts';
import { insertCall } from './lifecycle.ts';
import { call_amd_requested } from '../amd-requests.ts';

export const call_dialed = defineReducer(
  'call_dialed',
  z.object({
    provider: ProviderName,
    provider_call_id: z.string().min(1).max(256),
    /** One of the tenant's numbers (`numbers.number`): the caller ID, and the consent policy's source. */
    from: z.string().min(1).max(512),
    to: z.string().min(1).max(512),
    /** The agent that runs the call; default: the from-number's agent. */
    agent: z.string().min(1).max(100).nullable().default(null),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'calls:originate');
    const existing = ctx.db.calls.findOne({ provider: a.provider, provider_call_id: a.provider_call_id });
    if (existing) return { call_id: existing.id, state: existing.state, existing: true };
    const number = ctx.db.numbers.findOne({ number: a.from });
    if (!number) return ctx.fail('number_not_found', `${a.from} is not a number of tenant ${ctx.tenant}`);
    const id = insertCall(ctx, {
      provider: a.provider,
      provider_call_id: a.provider_call_id,
      number_id: number.id,
      from_uri: a.from,
      to_uri: a.to,
      direction: 'outbound',
      agent: a.agent ?? number.agent,
    });
    return { call_id: id, state: 'ringing', existing: false };
  },
);

/** With the answering-machine detection request written next to `call_dialed` (schema/amd-requests.ts). */
export const outboundCallReducers = [call_dialed, call_amd_requested];
