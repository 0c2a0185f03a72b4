/**
 * Provider-neutral outbound dialing (POST /v1/calls, campaigns): the from-number's provider decides which adapter
 * places the call. It knows the adapters only by name and through the port (`OutboundDialer`).
 *
 *   dial({ tenant, from, to }) ──► numbers[from] (the tenant's own: else 404 number_not_found)
 *        │
 *        ├─ number.provider set ──► that adapter's dialer (none mounted / cannot dial: 400 provider_cannot_dial;
 *        │                          no account for the number: 422 no_provider_account; a target it cannot
 *        │                          call: 400 naming `to`)
 *        └─ no provider ──────────► the first dialer, in mount order, that serves the number and takes the target
 *
 * Caller ID is thus always a number of the tenant on the provider that carries the call. The account a dialer uses
 * is the tenant's one set through the API when there is one, else the file's (ingress/provider-accounts.ts);
 * `checkAccount` hands credentials to be set to their adapter's check.
 */
import { DialError, type AccountChecker, type DialRequest, type DialResult, type IngressStore, type OutboundDialer } from './port.ts';

export class DialRouter implements OutboundDialer, AccountChecker {
  constructor(
    private readonly dialers: ReadonlyMap<string, OutboundDialer>,
    private readonly store: IngressStore,
  ) {}

  /** The adapters that can dial, by name. */
  get names(): string[] {
    return [...this.dialers.keys()];
  }

  /** Null when some dialer takes `to` (the from-number's own dialer checks it again in `dial`). */
  targetProblem(to: string): string | null {
    const problems = [...this.dialers.values()].map((d) => d.targetProblem(to));
    if (problems.length === 0) return null;
    if (problems.includes(null)) return null;
    const owner = [...this.dialers.values()].find((d) => d.prefixes?.some((p) => to.toLowerCase().startsWith(p)));
    return owner?.targetProblem(to) ?? 'must be a sip: URI (sip:user@host[:port], or sips: over TLS), a tel: URI or an E.164 number (+ and country code)';
  }

  serves(tenant: string, from: string): boolean {
    return this.pick({ tenant, from, to: null }) !== null;
  }

  /** Checks an account's credentials with the named adapter (PUT /v1/provider-accounts/:provider); its shown fields. */
  async checkAccount(provider: string, credentials: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const dialer = this.dialers.get(provider);
    if (!dialer?.checkCredentials) throw new DialError(400, 'provider_cannot_dial', `${provider}: no adapter on this gateway places calls with an account of that name (${this.names.join(', ') || 'none'})`);
    return dialer.checkCredentials(credentials);
  }

  async dial(req: DialRequest): Promise<DialResult & { provider: string }> {
    const picked = this.pick({ tenant: req.tenant, from: req.from, to: req.to });
    if (picked === null) {
      throw new DialError(400, 'invalid_request', `to: must be a sip: URI (sip:user@host[:port], or sips: over TLS) from ${req.from}: tel: and E.164 need a from-number whose provider places calls with an account (SWITCHBOARD_PROVIDER_ACCOUNTS)`);
    }
    return { ...(await picked.dialer.dial(req)), provider: picked.name };
  }

  /** Gives up a call still being dialled, by whichever dialer placed it (SIP: CANCEL); false when none did. */
  cancel(callId: string, reason: string): boolean {
    for (const dialer of this.dialers.values()) if (dialer.cancel?.(callId, reason)) return true;
    return false;
  }

  /** The dialer for the from-number (throws DialError when the number or its provider cannot dial); null: none takes `to`. */
  private pick(q: { tenant: string; from: string; to: string | null }): { name: string; dialer: OutboundDialer } | null {
    const number = this.store.read(q.tenant).numbers.findOne({ number: q.from });
    if (!number) throw new DialError(404, 'number_not_found', `from: ${q.from} is not one of your numbers (GET /v1/numbers)`);
    if (number.provider !== null) {
      const dialer = this.dialers.get(number.provider);
      if (!dialer) throw new DialError(400, 'provider_cannot_dial', `from: ${q.from} is a ${number.provider} number, and ${number.provider} cannot place calls on this gateway`);
      if (dialer.serves?.(q.tenant, q.from) === false) {
        throw new DialError(422, 'no_provider_account', `from: no ${number.provider} account is configured for ${q.from} (SWITCHBOARD_PROVIDER_ACCOUNTS)`);
      }
      const problem = q.to === null ? null : dialer.targetProblem(q.to);
      if (problem) throw new DialError(400, 'invalid_request', `to: ${problem} (a ${number.provider} number calls through ${number.provider})`);
      return { name: number.provider, dialer };
    }
    for (const [name, dialer] of this.dialers) {
      if (dialer.serves?.(q.tenant, q.from) === false) continue;
      if (q.to === null || dialer.targetProblem(q.to) === null) return { name, dialer };
    }
    return null;
  }
}
