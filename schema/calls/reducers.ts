/**
 * Call lifecycle reducers. Each names one fact about a call; all of them move
 * the call through the guarded `transition()` of lifecycle.ts.
 */
import { z } from 'zod';
import { defineReducer } from '../reducer.ts';
import { ProviderName, type CallState } from '../tables.ts';
import { claimRefusal } from '../nodes.ts';
import { insertCall, loadCall, transition } from './lifecycle.ts';

const callId = z.object({ call_id: z.string().min(1).max(200) });
const reason = z.string().min(1).max(200);

export const call_received = defineReducer(
  'call_received',
  z.object({
    provider: ProviderName,
    provider_call_id: z.string().min(1).max(256),
    from: z.string().max(512),
    to: z.string().max(512),
    direction: z.enum(['inbound', 'outbound']).default('inbound'),
    number_id: z.string().max(200).nullable().default(null),
    agent: z.string().max(100).nullable().default(null),
  }),
  (ctx, a) => {
    // A provider retrying its webhook gets the same call back, never a second row.
    const existing = ctx.db.calls.findOne({ provider: a.provider, provider_call_id: a.provider_call_id });
    if (existing) return { call_id: existing.id, state: existing.state, existing: true };
    const id = insertCall(ctx, {
      provider: a.provider,
      provider_call_id: a.provider_call_id,
      number_id: a.number_id,
      from_uri: a.from,
      to_uri: a.to,
      direction: a.direction,
      agent: a.agent,
    });
    return { call_id: id, state: 'ringing', existing: false };
  },
);

function simple(name: string, to: CallState) {
  return defineReducer(name, callId, (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    transition(ctx, call, to);
    return { call_id: call.id, from: call.state, to };
  });
}

export const call_answered = simple('call_answered', 'answered');
export const call_held = simple('call_held', 'held');
export const call_unheld = simple('call_unheld', 'active');

/**
 * Retired: the first slice moved a call to `active` directly, before the consent stage existed; every call now
 * becomes active through `consent_decided`. Kept so logs that hold it replay (and a command carried by name from
 * such a log applies); no typed handle is exported for it, so the application cannot submit it.
 */
export const call_activated = defineReducer(
  'call_activated',
  callId.extend({ agent: z.string().max(100).nullable().default(null), agent_version: z.string().max(100).nullable().default(null) }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    transition(ctx, call, 'active', { agent: a.agent ?? call.agent, agent_version: a.agent_version ?? call.agent_version });
  },
);

export const call_transfer_started = defineReducer(
  'call_transfer_started',
  callId.extend({ target: z.string().min(1).max(512) }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    transition(ctx, call, 'transferring');
    ctx.db.calls.update(call.id, { transfer_target: a.target });
    return { target: a.target };
  },
);

/**
 * A media connection for the call is up on the submitting node: its leg row, and the node's claim on the call
 * (`owner_node`). The claim is refused `call_owned` while another node owns the call and its lease runs
 * (schema/nodes.ts): two nodes racing for one call, exactly one wins, by log order.
 */
export const call_media_connected = defineReducer(
  'call_media_connected',
  callId.extend({
    kind: z.enum(['caller', 'agent', 'human', 'supervisor']).default('caller'),
    provider: ProviderName,
    media_session: z.string().max(256).nullable().default(null),
    codec: z.string().max(32).nullable().default(null),
    sample_rate: z.number().int().positive().nullable().default(null),
    resume: z.record(z.string(), z.unknown()).nullable().default(null),
  }),
  (ctx, a) => {
    let call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    // The claim: this node terminates the call's media from now on, unless another node's lease on it runs.
    const refused = claimRefusal(ctx, call);
    if (refused) ctx.fail(refused.code, refused.message);
    const legId = ctx.newId('leg');
    ctx.db.legs.insert({
      id: legId,
      tenant: ctx.tenant,
      call_id: call.id,
      kind: a.kind,
      provider: a.provider,
      media_session: a.media_session,
      codec: a.codec,
      sample_rate: a.sample_rate,
      state: 'connected',
      resume: a.resume,
      connected_at: ctx.now,
      disconnected_at: null,
      disconnect_reason: null,
    });
    const resumed = call.state === 'resuming';
    if (resumed) call = transition(ctx, call, call.resume_state ?? 'active');
    ctx.db.calls.update(call.id, { media_epoch: call.media_epoch + 1, owner_node: ctx.node, updated_at: ctx.now });
    return { leg_id: legId, resumed, state: call.state, media_epoch: call.media_epoch + 1 };
  },
);

export const call_media_lost = defineReducer(
  'call_media_lost',
  callId.extend({ leg_id: z.string().min(1).max(200), reason }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const leg = ctx.db.legs.get(a.leg_id);
    if (!leg || leg.call_id !== call.id) return ctx.fail('leg_not_found', `call ${call.id} has no leg ${a.leg_id}`);
    if (leg.state === 'disconnected') ctx.fail('leg_disconnected', `leg ${leg.id} is already disconnected`);
    ctx.db.legs.update(leg.id, { state: 'disconnected', disconnected_at: ctx.now, disconnect_reason: a.reason });
    if (call.state === 'ended' || call.state === 'ringing') return { state: call.state };
    // Another connection may already carry the call (a resume raced the old socket's close).
    const live = ctx.db.legs.find({ call_id: call.id, state: 'connected', kind: 'caller' });
    if (live.length > 0) return { state: call.state };
    transition(ctx, call, 'resuming');
    return { state: 'resuming' };
  },
);

/**
 * A connected leg's media changed in place (a SIP re-INVITE: hold/unhold, new
 * remote address, codec change): its resume data is replaced, so a restart
 * carries on with the media as last agreed.
 */
export const call_media_updated = defineReducer(
  'call_media_updated',
  callId.extend({
    provider: ProviderName,
    codec: z.string().max(32).nullable(),
    resume: z.record(z.string(), z.unknown()),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
    const leg = ctx.db.legs.find({ call_id: call.id, state: 'connected', kind: 'caller', provider: a.provider })[0];
    if (!leg) return ctx.fail('leg_not_found', `call ${call.id} has no connected ${a.provider} caller leg`);
    ctx.db.legs.update(leg.id, { codec: a.codec, resume: a.resume });
    return { leg_id: leg.id };
  },
);

export const call_ended = defineReducer('call_ended', callId.extend({ reason }), (ctx, a) => {
  const call = loadCall(ctx, a.call_id);
  if (call.state === 'ended') ctx.fail('call_already_ended', `call ${call.id} ended already (${String(call.end_reason)})`);
  for (const leg of ctx.db.legs.find({ call_id: call.id, state: 'connected' })) {
    ctx.db.legs.update(leg.id, { state: 'disconnected', disconnected_at: ctx.now, disconnect_reason: a.reason });
  }
  transition(ctx, call, 'ended', { end_reason: a.reason });
  return { call_id: call.id, from: call.state };
});

/**
 * How the call travels (issue 24): the SIP signalling transport used (`udp` | `tcp` | `tls`) and the media
 * encryption (`none` | `srtp`). Written by the SIP ingress when the call is answered (inbound or outbound); the
 * SRTP side passes `srtp` through the same fact. Calls from older logs keep null (not recorded).
 */
export const call_security_recorded = defineReducer(
  'call_security_recorded',
  callId.extend({
    transport: z.enum(['udp', 'tcp', 'tls']),
    media_encryption: z.enum(['none', 'srtp']).default('none'),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    ctx.db.calls.update(call.id, { transport: a.transport, media_encryption: a.media_encryption, updated_at: ctx.now });
    return { call_id: call.id, transport: a.transport, media_encryption: a.media_encryption };
  },
);

/** A call nobody routes (unknown number): the event is the record; no call row. */
export const call_rejected = defineReducer(
  'call_rejected',
  z.object({
    provider: ProviderName,
    provider_call_id: z.string().min(1).max(256),
    from: z.string().max(512),
    to: z.string().max(512),
    reason: z.string().min(1).max(200),
  }),
  (_ctx, a) => ({ reason: a.reason, to: a.to }),
);

/**
 * Refusals counted instead of written one by one (bridge/refusals.ts): after the first refusal of a (tenant,
 * provider, source, reason) in a window, which is its own `call_rejected`, the rest of that window's are this one
 * event at the window's end. `source` is `*` for refusals past the window's row budget, whatever their source.
 * The window is the `window_ms` before the event's time.
 */
export const call_rejections_aggregated = defineReducer(
  'call_rejections_aggregated',
  z.object({
    provider: ProviderName,
    source: z.string().min(1).max(256),
    reason: z.string().min(1).max(200),
    count: z.number().int().positive().max(1_000_000_000),
    window_ms: z.number().int().positive().max(86_400_000),
    last_to: z.string().max(512).nullable().default(null),
  }),
  (ctx, a) => ({ reason: a.reason, count: a.count, since: ctx.now - a.window_ms }),
);

/**
 * The provider asks to carry on a call whose media was lost (Twilio <Redirect>,
 * Vonage event, WebRTC resume token). Legs still marked connected belong to a
 * dead connection (e.g. the previous process was killed): they are closed, and
 * the call waits in `resuming` for its new media.
 */
export const call_resume_requested = defineReducer('call_resume_requested', callId.extend({ reason }), (ctx, a) => {
  const call = loadCall(ctx, a.call_id);
  if (call.state === 'ended') ctx.fail('call_ended', `call ${call.id} has ended`);
  for (const leg of ctx.db.legs.find({ call_id: call.id, state: 'connected' })) {
    ctx.db.legs.update(leg.id, { state: 'disconnected', disconnected_at: ctx.now, disconnect_reason: `superseded: ${a.reason}` });
  }
  if (call.state === 'resuming' || call.state === 'ringing') return { state: call.state, from: call.state };
  transition(ctx, call, 'resuming');
  return { state: 'resuming', from: call.state };
});

/** Reducers only older logs hold (see each one's comment): applied on replay, never submitted. */
export const retiredCallReducers = [call_activated];

export const callReducers = [
  call_rejected,
  call_rejections_aggregated,
  call_resume_requested,
  call_received,
  call_answered,
  call_held,
  call_unheld,
  call_transfer_started,
  call_media_connected,
  call_media_lost,
  call_media_updated,
  call_security_recorded,
  call_ended,
];
