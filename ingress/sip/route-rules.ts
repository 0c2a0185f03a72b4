/**
 * Per trunk and route settings of inbound calls, `KEY=VALUE` rules: the matcher shared by the encryption policy
 * (SWITCHBOARD_SIP_ENCRYPTION, encryption-policy.ts) and early media (SWITCHBOARD_SIP_EARLY_MEDIA, early-media.ts).
 *
 *   VARIABLE = VALUE                   one value for every call (the same as `*=VALUE`)
 *            | RULE, RULE, …           RULE = KEY=VALUE (split at the last `=`)
 *   KEY = a CIDR or address            the trunk: the INVITE's source address       kind `trunk`
 *       | a number or SIP URI          the route: the dialled number as in `numbers`  kind `route`
 *       | *                            every call                                    kind `any`
 *
 * `matching(call)` gives every rule that matches an inbound call, in the order written; each setting decides how
 * they combine (the encryption policy: the strictest; early media: the most specific, route > trunk > `*`).
 */
import net from 'node:net';
import { CidrList } from './cidr.ts';

export type RuleKind = 'route' | 'trunk' | 'any';

export interface RouteRule<T> {
  key: string;
  kind: RuleKind;
  value: T;
}

export class RouteRuleError extends Error {
  override readonly name = 'RouteRuleError';
}

const isCidrKey = (k: string): boolean => k.includes('/') || net.isIP(k.replace(/^\[|\]$/g, '')) !== 0;

/** The inbound call a rule is matched against: its source address (unmapped) and its dialled number. */
export interface InboundKey {
  source: string;
  number: string;
}

export class RouteRules<T> {
  private constructor(
    readonly rules: ReadonlyArray<RouteRule<T> & { cidr: CidrList | null }>,
  ) {}

  static empty<T>(): RouteRules<T> {
    return new RouteRules<T>([]);
  }

  /**
   * Parses `text` (unset or empty = no rules); `value(text, where)` parses one VALUE and throws naming `where`.
   * Errors name `source` (the variable) and the rule.
   */
  static parse<T>(text: string | undefined, source: string, value: (text: string, where: string) => T): RouteRules<T> {
    const t = text?.trim() ?? '';
    if (t === '') return RouteRules.empty<T>();
    if (!t.includes('=')) return new RouteRules([{ key: '*', kind: 'any', cidr: null, value: value(t, source) }]);
    const rules: Array<RouteRule<T> & { cidr: CidrList | null }> = [];
    for (const item of t.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
      const eq = item.lastIndexOf('=');
      const key = item.slice(0, eq).trim();
      if (eq <= 0 || key === '') throw new RouteRuleError(`${source}: "${item}" must be KEY=VALUE (KEY: a CIDR, a number, a SIP URI or *)`);
      const parsed = value(item.slice(eq + 1), `${source} ${key}`);
      if (key === '*') {
        rules.push({ key, kind: 'any', cidr: null, value: parsed });
      } else if (isCidrKey(key)) {
        let cidr: CidrList;
        try {
          cidr = CidrList.parse(key.replace(/^\[|\]$/g, ''));
        } catch (err) {
          throw new RouteRuleError(`${source}: ${key}: ${(err as Error).message}`);
        }
        rules.push({ key, kind: 'trunk', cidr, value: parsed });
      } else {
        rules.push({ key, kind: 'route', cidr: null, value: parsed });
      }
    }
    return new RouteRules(rules);
  }

  /** Every rule matching the call (`*`, its source address in the CIDR, or its dialled number), in the order written. */
  matching(call: InboundKey): Array<RouteRule<T>> {
    return this.rules.filter((r) => r.kind === 'any' || (r.cidr ? r.cidr.has(call.source) : r.key === call.number));
  }

  /** The most specific matching rule's value: a route (number) rule, else a trunk (CIDR) rule, else `*`; the last written wins a tie. */
  mostSpecific(call: InboundKey): T | undefined {
    const hits = this.matching(call);
    for (const kind of ['route', 'trunk', 'any'] as const) {
      const of = hits.filter((r) => r.kind === kind);
      if (of.length) return of[of.length - 1]!.value;
    }
    return undefined;
  }
}
