/**
 * Consent: versioned policies, the decision for each call, withdrawal — and the
 * one rule the store enforces for everything that keeps content: a recording,
 * a stored transcript, an agent turn need a decision the policy accepts.
 *
 *   consent_started (call → consenting, row `pending`)
 *     └─► consent_decided  granted | declined | no_response   (method dtmf | speech | implied)
 *           └─► consent_withdrawn  (a new `withdrawn` row becomes the call's consent)
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { loadCall, transition, type CallRow } from './calls/lifecycle.ts';
import { defineReducer, type Ctx } from './reducer.ts';

/** The policy every number without its own uses; seeded at bootstrap, per tenant. */
export const DEFAULT_POLICY = {
  name: 'default',
  mode: 'notify' as const,
  disclosure_text: 'This call may be recorded and transcribed for quality and compliance purposes.',
  timeout_ms: 6000,
  retries: 1,
  on_decline: 'continue-unrecorded' as const,
  transfer_target: null,
  pause_mode: 'silence' as const,
  retention_days: 2555,
  recording_format: 'wav' as const,
};

export const PolicyArgs = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase name: letters, digits, - and _'),
  mode: z.enum(['opt-in', 'opt-out', 'notify']),
  disclosure_text: z.string().min(1).max(2000),
  disclosure_sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().default(null),
  timeout_ms: z.number().int().min(1000).max(60_000).default(6000),
  retries: z.number().int().min(0).max(5).default(1),
  on_decline: z.enum(['continue-unrecorded', 'transfer', 'hangup']).default('continue-unrecorded'),
  transfer_target: z.string().min(1).max(512).nullable().default(null),
  pause_mode: z.enum(['silence', 'skip']).default('silence'),
  /** 0 = content and media are purged on the first retention sweep after the call ends. */
  retention_days: z.number().int().min(0).max(36_500).default(2555),
  recording_format: z.enum(['wav', 'ogg', 'mp3']).default('wav'),
});

export const consent_policy_created = defineReducer('consent_policy_created', PolicyArgs, (ctx, a) => {
  requireCaller(ctx, 'policies:write');
  if (a.on_decline === 'transfer' && a.transfer_target === null) ctx.fail('invalid_policy', 'on_decline transfer needs a transfer_target');
  const previous = ctx.db.consent_policies.find({ name: a.name }, { orderBy: 'version', desc: true, limit: 1 })[0];
  const version = (previous?.version ?? 0) + 1;
  const id = ctx.newId('pol');
  ctx.db.consent_policies.insert({ id, tenant: ctx.tenant, version, created_at: ctx.now, ...a });
  return { policy_id: id, name: a.name, version };
});

/** The newest version of a named policy (numbers name a policy by id; `default` by name). */
export function latestPolicy(ctx: Ctx, name: string) {
  return ctx.db.consent_policies.find({ name }, { orderBy: 'version', desc: true, limit: 1 })[0];
}

export const consent_started = defineReducer(
  'consent_started',
  z.object({
    call_id: z.string().min(1).max(200),
    policy_id: z.string().min(1).max(200),
    /** sha256 of the disclosure audio actually played to this caller (PCM16LE as rendered). */
    disclosure_sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().default(null),
  }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const policy = ctx.db.consent_policies.get(a.policy_id);
    if (!policy) return ctx.fail('consent_policy_not_found', `no consent policy ${a.policy_id}`);
    const id = ctx.newId('cons');
    ctx.db.consents.insert({
      id,
      tenant: ctx.tenant,
      call_id: call.id,
      policy_id: policy.id,
      policy_version: policy.version,
      disclosure_sha256: a.disclosure_sha256 ?? policy.disclosure_sha256,
      mode: policy.mode,
      method: null,
      outcome: 'pending',
      evidence: null,
      started_at: ctx.now,
      decided_at: null,
    });
    transition(ctx, call, 'consenting', { consent_id: id });
    return { consent_id: id, mode: policy.mode, version: policy.version };
  },
);

const Evidence = z.record(z.string(), z.unknown()).nullable().default(null);

export const consent_decided = defineReducer(
  'consent_decided',
  z.object({
    consent_id: z.string().min(1).max(200),
    outcome: z.enum(['granted', 'declined', 'no_response']),
    method: z.enum(['dtmf', 'speech', 'implied']),
    evidence: Evidence,
  }),
  (ctx, a) => {
    const consent = ctx.db.consents.get(a.consent_id);
    if (!consent) return ctx.fail('consent_not_found', `no consent ${a.consent_id}`);
    if (consent.outcome !== 'pending') ctx.fail('consent_decided', `consent ${consent.id} is already ${consent.outcome}`);
    if (a.method === 'implied' && consent.mode === 'opt-in' && a.outcome === 'granted') {
      ctx.fail('invalid_decision', 'an opt-in policy cannot be granted implicitly');
    }
    ctx.db.consents.update(consent.id, { outcome: a.outcome, method: a.method, evidence: a.evidence, decided_at: ctx.now });
    const call = loadCall(ctx, consent.call_id);
    if (call.state === 'consenting') transition(ctx, call, 'active');
    return { outcome: a.outcome, recording_allowed: a.outcome === 'granted' };
  },
);

export const consent_withdrawn = defineReducer(
  'consent_withdrawn',
  z.object({ call_id: z.string().min(1).max(200), method: z.enum(['dtmf', 'speech']), evidence: Evidence }),
  (ctx, a) => {
    const call = loadCall(ctx, a.call_id);
    const current = call.consent_id ? ctx.db.consents.get(call.consent_id) : undefined;
    if (!current || current.outcome !== 'granted') return ctx.fail('consent_not_granted', `call ${call.id} has no granted consent to withdraw`);
    const id = ctx.newId('cons');
    ctx.db.consents.insert({
      ...current,
      id,
      outcome: 'withdrawn',
      method: a.method,
      evidence: a.evidence,
      started_at: ctx.now,
      decided_at: ctx.now,
    });
    ctx.db.calls.update(call.id, { consent_id: id, updated_at: ctx.now });
    // Recording stops with the consent: any live recording is paused for good.
    const policy = ctx.db.consent_policies.get(current.policy_id);
    const atMs = ctx.now - (call.answered_at ?? call.received_at);
    for (const rec of ctx.db.recordings.find({ call_id: call.id, status: 'recording' })) {
      const pause = { start_ms: atMs, end_ms: null, reason: 'consent withdrawn', mode: policy?.pause_mode ?? 'silence' };
      ctx.db.recordings.update(rec.id, { status: 'paused', pauses: [...rec.pauses, pause] });
    }
    return { consent_id: id };
  },
);

export type ConsentPurpose = 'recording' | 'transcript' | 'agent' | 'tool';

/**
 * The enforcement point. Recording and transcripts need a `granted` decision;
 * an agent turn needs any decision (a declined caller may still be served,
 * unrecorded, when the policy says so).
 */
export function requireConsent(ctx: Ctx, call: CallRow, purpose: ConsentPurpose): void {
  const consent = call.consent_id ? ctx.db.consents.get(call.consent_id) : undefined;
  if (!consent || consent.outcome === 'pending') {
    ctx.fail('consent_required', `call ${call.id}: no consent decision yet (${purpose} refused)`);
  }
  if (purpose !== 'agent' && consent.outcome !== 'granted') {
    ctx.fail('consent_required', `call ${call.id}: consent is ${consent.outcome} (${purpose} refused)`);
  }
}

export const consentReducers = [consent_policy_created, consent_started, consent_decided, consent_withdrawn];
