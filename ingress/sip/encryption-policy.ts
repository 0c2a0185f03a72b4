/**
 * Encryption policy per trunk and route (SWITCHBOARD_SIP_ENCRYPTION): for each half of a call — signalling (TLS)
 * and media (SRTP) — `require`, `prefer` or `allow`.
 *
 *   SWITCHBOARD_SIP_ENCRYPTION = LEVEL                         every call
 *                              | RULE, RULE, …                 RULE = KEY=LEVEL[/LEVEL]  (TLS level / SRTP level;
 *                                                              one level = both halves)
 *   KEY = a CIDR or address      the trunk: the INVITE's source address
 *       | a number or SIP URI    the route: the dialled number as in `numbers` (+15550100, sip:desk@example.com)
 *       | *                      everything else
 *
 * The rules are read and matched by route-rules.ts (shared with SWITCHBOARD_SIP_EARLY_MEDIA).
 * e.g. `*=allow, 10.20.0.0/16=require, +15550100=require/prefer`. Every rule that matches an inbound INVITE
 * applies, and for each half the strictest level wins (require > prefer > allow); no rule = `allow`.
 *
 * What a level does:
 *  - TLS `require`: an INVITE that came over UDP or TCP is refused statelessly with **403 Forbidden** and
 *    `Warning: 399 switchboard "TLS is required …"`, recorded as a `call_rejected` (reason `tls_required`): no call
 *    row. `prefer`/`allow`: cleartext is accepted (`prefer` notes it in the log). Outbound routes
 *    (SWITCHBOARD_SIP_OUTBOUND) take `"encryption"` too: `require` or `prefer` sends the INVITE over TLS.
 *  - SRTP `require`/`prefer`/`allow`: read by the media side through `EncryptionPolicies.srtpFor` /
 *    `SipApp.encryptionFor` (a media offer it cannot encrypt under `require` gets 488 + Warning there).
 */
import { RouteRuleError, RouteRules, type InboundKey } from './route-rules.ts';

export const LEVELS = ['require', 'prefer', 'allow'] as const;
export type EncryptionLevel = (typeof LEVELS)[number];

export interface EncryptionPolicy {
  tls: EncryptionLevel;
  srtp: EncryptionLevel;
}

export const ALLOW_ALL: EncryptionPolicy = { tls: 'allow', srtp: 'allow' };

export class EncryptionPolicyError extends Error {
  override readonly name = 'EncryptionPolicyError';
}

const rank = (l: EncryptionLevel): number => LEVELS.length - LEVELS.indexOf(l);
const stricter = (a: EncryptionLevel, b: EncryptionLevel): EncryptionLevel => (rank(a) >= rank(b) ? a : b);

/** The strictest of two policies, half by half. */
export function strictest(a: EncryptionPolicy, b: EncryptionPolicy): EncryptionPolicy {
  return { tls: stricter(a.tls, b.tls), srtp: stricter(a.srtp, b.srtp) };
}

/** `require`, `prefer/allow`…: one level for both halves, or TLS/SRTP. */
export function parseLevels(text: string, where: string): EncryptionPolicy {
  const parts = text.trim().toLowerCase().split('/');
  const ok = (l: string | undefined): l is EncryptionLevel => (LEVELS as readonly string[]).includes(l ?? '');
  const [tls, srtp = tls] = parts;
  if (parts.length > 2 || !ok(tls) || !ok(srtp)) throw new EncryptionPolicyError(`${where}: "${text.trim()}" must be LEVEL or TLS_LEVEL/SRTP_LEVEL, each require, prefer or allow`);
  return { tls, srtp };
}

export class EncryptionPolicies {
  private constructor(private readonly rules: RouteRules<EncryptionPolicy>) {}

  static none(): EncryptionPolicies {
    return new EncryptionPolicies(RouteRules.empty());
  }

  /** Parses SWITCHBOARD_SIP_ENCRYPTION (unset or empty = allow everything); throws naming the variable and rule. */
  static parse(text: string | undefined, source = 'SWITCHBOARD_SIP_ENCRYPTION'): EncryptionPolicies {
    try {
      return new EncryptionPolicies(RouteRules.parse(text, source, parseLevels));
    } catch (err) {
      if (err instanceof RouteRuleError) throw new EncryptionPolicyError(err.message.replace('KEY=VALUE', 'KEY=LEVEL'));
      throw err;
    }
  }

  /** The policy of an inbound call: every rule matching its source address or its dialled number, strictest wins. */
  forInbound(call: InboundKey): EncryptionPolicy {
    return this.rules.matching(call).reduce((out, r) => strictest(out, r.value), ALLOW_ALL);
  }

  /** The media half for the SRTP side: does this trunk/route require, prefer or merely allow SRTP? */
  srtpFor(call: InboundKey): EncryptionLevel {
    return this.forInbound(call).srtp;
  }

  /** For the start-up log. */
  describe(): string {
    return this.rules.rules.map((r) => `${r.key}=${r.value.tls}/${r.value.srtp}`).join(', ') || 'allow';
  }
}

/** The Warning a cleartext INVITE gets on a trunk or route that requires TLS (with status 403). */
export const TLS_REQUIRED_WARNING = '399 switchboard "TLS is required on this trunk: send the INVITE over TLS (sips: or ;transport=tls)"';
