/**
 * `POST /v1/calls`: an agent-initiated (outbound) call. Body (JSON):
 *
 *   { "from": "+15550001111",          one of the caller's tenant's numbers (caller ID, consent policy, agent)
 *     "to": "+15557654321",            E.164 or tel: (a Twilio or Vonage number calls through its provider),
 *                                      or a sip: / sips: URI (SIP)
 *     "agent": "sales",                optional; default: the from-number's agent
 *     "amd": { "enabled": true,        optional: answering-machine detection on the answered call — the provider's
 *                                      own where it has one (row `answered_by`), else the media-side detector
 *                                      (bridge/amd-stage.ts); `"amd": true` is `{"enabled": true}`
 *              "default": "human",     what an undecided answer (silence) is treated as: human | machine | hangup
 *              "timeoutMs": 30000 } }  the longest the detector listens (2000–60000, default 30000)
 *
 * The from-number's provider places the call (ingress/dial-router.ts): a Twilio number through Twilio's REST API,
 * a Vonage number through Vonage's, a number without a provider (or a SIP one) through SIP. Needs
 * `calls:originate` (admin, developer). Answers 202 with the call id as soon as the call row exists (`ringing`);
 * the call then progresses like any other (`GET /v1/calls/:id`, subscriptions): answered … ended, or ended with
 * the failure (`sip:busy`, `twilio:no-answer`, `vonage:rejected`, …). The answer names the `provider` and its
 * `provider_call_id` (`sip_call_id` too for a SIP call, as before).
 * Errors: 400 naming the field (or `provider_cannot_dial`), 403, 404 `number_not_found`, 422 `no_provider_account`,
 * 502 when the provider's API refused the call, 503 when no dialer runs.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DialError } from '../../ingress/port.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, type ApiContext } from '../context.ts';
import { AMD_ON_UNKNOWN, AMD_TIMEOUT_MAX_MS, AMD_TIMEOUT_MIN_MS } from '../../schema/amd-requests.ts';

/** The per-call answering-machine detection option. */
export const AmdOption = z.strictObject({
  enabled: z.boolean(),
  default: z.enum(AMD_ON_UNKNOWN).default('human'),
  timeoutMs: z.number().int().min(AMD_TIMEOUT_MIN_MS).max(AMD_TIMEOUT_MAX_MS).default(30_000),
});

const TARGET = /^(sips?:|tel:\+?[0-9]|\+[1-9][0-9]{1,14}$)/i;

export const DialBody = z.strictObject({
  from: z.string().min(1, 'the number to call from').max(512),
  to: z
    .string()
    .max(512)
    .refine((s) => TARGET.test(s), 'must be a sip: URI (sip:user@host[:port], or sips: over TLS), a tel: URI or an E.164 number (+ and country code)'),
  agent: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, 'lowercase agent name: letters, digits, - and _').optional(),
  amd: z.union([z.boolean(), AmdOption]).optional(),
});

export function mountDialRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/v1/calls', async (req, reply) => {
    const p = authorize(ctx, req, 'calls:originate');
    const body = parse(DialBody, req.body);
    // The target's grammar is the dialers' (each adapter parses its own); checked before anything is looked up.
    const problem = ctx.dialer?.targetProblem(body.to);
    if (problem) throw new HttpError(400, 'invalid_request', `to: ${problem}`);
    if (!ctx.store.read(p.tenant).numbers.findOne({ number: body.from })) {
      throw new HttpError(404, 'number_not_found', `from: ${body.from} is not one of your numbers (GET /v1/numbers)`);
    }
    if (!ctx.dialer) throw new HttpError(503, 'sip_unavailable', 'outbound calling is not running on this gateway (SIP not started)');
    try {
      const placed = await ctx.dialer.dial({ tenant: p.tenant, caller: p.caller, from: body.from, to: body.to, agent: body.agent ?? null, ...amdRequest(body.amd) });
      reply.code(202).header('location', `/v1/calls/${placed.callId}`);
      const provider = ctx.store.read(p.tenant).calls.get(placed.callId)?.provider ?? null;
      return {
        call_id: placed.callId,
        state: 'ringing',
        direction: 'outbound',
        from: body.from,
        to: body.to,
        provider,
        provider_call_id: placed.providerCallId,
        ...(placed.sipCallId !== undefined ? { sip_call_id: placed.sipCallId } : {}),
      };
    } catch (err) {
      if (err instanceof DialError) throw new HttpError(err.status, err.code, err.message);
      throw err;
    }
  });
}

/** `amd: true` is `{ enabled: true }` with the defaults. */
function amdRequest(amd: z.infer<typeof AmdOption> | boolean | undefined): { amd?: { onUnknown: 'human' | 'machine' | 'hangup'; timeoutMs: number } } {
  if (amd === true) return { amd: { onUnknown: 'human', timeoutMs: 30_000 } };
  return amd && amd.enabled ? { amd: { onUnknown: amd.default, timeoutMs: amd.timeoutMs } } : {};
}
