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
import net from 'node:net';
import { CidrList } from './cidr.ts';

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

interface Rule {
  key: string;
  source: CidrList | null;
  policy: EncryptionPolicy;
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

const isCidrKey = (k: string): boolean => k.includes('/') || net.isIP(k.replace(/^\[|\]$/g, '')) !== 0;

export class EncryptionPolicies {
  private constructor(private readonly rules: readonly Rule[]) {}

  static none(): EncryptionPolicies {
    return new EncryptionPolicies([]);
  }

  /** Parses SWITCHBOARD_SIP_ENCRYPTION (unset or empty = allow everything); throws naming the variable and rule. */
  static parse(text: string | undefined, source = 'SWITCHBOARD_SIP_ENCRYPTION'): EncryptionPolicies {
    const t = text?.trim() ?? '';
    if (t === '') return EncryptionPolicies.none();
    if (!t.includes('=')) return new EncryptionPolicies([{ key: '*', source: null, policy: parseLevels(t, source) }]);
    const rules: Rule[] = [];
    for (const item of t.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
      const eq = item.lastIndexOf('=');
      const key = item.slice(0, eq).trim();
      if (eq <= 0 || key === '') throw new EncryptionPolicyError(`${source}: "${item}" must be KEY=LEVEL (KEY: a CIDR, a number, a SIP URI or *)`);
      const policy = parseLevels(item.slice(eq + 1), `${source} ${key}`);
      let cidr: CidrList | null = null;
      if (key !== '*' && isCidrKey(key)) {
        try {
          cidr = CidrList.parse(key.replace(/^\[|\]$/g, ''));
        } catch (err) {
          throw new EncryptionPolicyError(`${source}: ${key}: ${(err as Error).message}`);
        }
      }
      rules.push({ key, source: cidr, policy });
    }
    return new EncryptionPolicies(rules);
  }

  /** The policy of an inbound call: every rule matching its source address or its dialled number, strictest wins. */
  forInbound(call: { source: string; number: string }): EncryptionPolicy {
    let out = ALLOW_ALL;
    for (const r of this.rules) {
      const hit = r.key === '*' || (r.source ? r.source.has(call.source) : r.key === call.number);
      if (hit) out = strictest(out, r.policy);
    }
    return out;
  }

  /** The media half for the SRTP side: does this trunk/route require, prefer or merely allow SRTP? */
  srtpFor(call: { source: string; number: string }): EncryptionLevel {
    return this.forInbound(call).srtp;
  }

  /** For the start-up log. */
  describe(): string {
    return this.rules.map((r) => `${r.key}=${r.policy.tls}/${r.policy.srtp}`).join(', ') || 'allow';
  }
}

/** The Warning a cleartext INVITE gets on a trunk or route that requires TLS (with status 403). */
export const TLS_REQUIRED_WARNING = '399 switchboard "TLS is required on this trunk: send the INVITE over TLS (sips: or ;transport=tls)"';
