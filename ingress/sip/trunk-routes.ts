/**
 * Telephone numbers through a SIP trunk: which trunk carries a `tel:` / E.164 target dialled from a tenant's SIP
 * number (or a number without a provider). The trunks are SIP "accounts" of SWITCHBOARD_PROVIDER_ACCOUNTS
 * (ingress/provider-accounts.ts), keyed like every provider's — per tenant, optionally per from-number:
 *
 *   { "sip": { "accounts": [
 *       { "tenant": "acme", "numbers": ["+15550001111"], "credentials": { "trunk": "carrier.example:5080" } },
 *       { "tenant": "acme", "credentials": { "trunk": "10.0.0.9", "transport": "tcp" } }
 *   ] } }
 *
 *   POST /v1/calls { from: +15550001111, to: "+1 (555) 123-4567" | "tel:+15551234567" }
 *        ──► E.164 +15551234567 ──► the trunk of (tenant, from) ──► INVITE sip:+15551234567@carrier.example:5080
 *                                                                     (;transport=… when the trunk names one)
 *
 * The trunk host's SWITCHBOARD_SIP_OUTBOUND entry (outbound-config.ts) then applies as to any target on that host:
 * digest credentials, proxy, from_domain, transport and encryption. No trunk for the number: 422 `no_sip_trunk`.
 * A trunk is an address, not a secret; its credentials stay in SWITCHBOARD_SIP_OUTBOUND. A tenant's trunk set through
 * the API (`PUT /v1/provider-accounts/sip` with `{ "credentials": { "trunk": … } }`) is preferred over the file's.
 */
import { z } from 'zod';
import { DialError, IngressConfigError } from '../port.ts';
import { accountFor, type ProviderSection, type StoredAccounts } from '../provider-accounts.ts';
import { parseHostPort } from './headers.ts';

export const TrunkCredentials = z.strictObject({
  trunk: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'the trunk as host[:port]'),
  transport: z.enum(['udp', 'tcp', 'tls']).optional(),
});

export interface SipTrunk {
  tenant: string;
  numbers: readonly string[] | null;
  host: string;
  port: number | null;
  transport: 'udp' | 'tcp' | 'tls' | null;
}

/** `+14155550100`, `tel:+14155550100` or `+1 (415) 555-0100` → `+14155550100`; null when not an E.164 number. */
export function telTarget(to: string): string | null {
  const bare = to.replace(/^tel:/i, '').replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{1,14}$/.test(bare) ? bare : null;
}

/** One trunk from an account's credentials; throws `Error` naming the field (never a value beyond the address). */
export function trunkOf(a: { tenant: string; numbers: readonly string[] | null; credentials: Readonly<Record<string, string>> }): SipTrunk {
  const r = TrunkCredentials.safeParse(a.credentials);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`credentials.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  const hp = parseHostPort(r.data.trunk);
  if (!hp) throw new Error('credentials.trunk: the trunk as host[:port]');
  return { tenant: a.tenant, numbers: a.numbers, host: hp.host, port: hp.port, transport: r.data.transport ?? null };
}

/** The accounts file's `sip` section as trunks (a bad entry stops the start: IngressConfigError naming it). */
export function sipTrunks(section: ProviderSection, adapter: string): SipTrunk[] {
  return section.accounts.map((a, i) => {
    try {
      return trunkOf(a);
    } catch (err) {
      throw new IngressConfigError(`SWITCHBOARD_PROVIDER_ACCOUNTS: ${adapter}.accounts.${i} (tenant ${a.tenant}): ${(err as Error).message}`);
    }
  });
}

/** The trunk for a call from `from` of `tenant`: the one set through the API, else the file's entry naming the number, else the tenant's catch-all. */
export function trunkFor(trunks: readonly SipTrunk[], tenant: string, from: string, stored?: StoredAccounts): SipTrunk | undefined {
  const own = stored?.forNumber(tenant, from);
  if (own) {
    try {
      return trunkOf(own);
    } catch {
      // A stored trunk was checked when it was set; one that no longer parses falls back to the file.
    }
  }
  return accountFor(trunks, tenant, from);
}

/** PUT /v1/provider-accounts/sip: the trunk's form (400 `invalid_credentials` naming the field); what GET shows. */
export function checkTrunk(credentials: Readonly<Record<string, string>>): Record<string, string> {
  try {
    const t = trunkOf({ tenant: '', numbers: null, credentials });
    return { trunk: credentials.trunk ?? '', ...(t.transport ? { transport: t.transport } : {}) };
  } catch (err) {
    throw new DialError(400, 'invalid_credentials', (err as Error).message);
  }
}

/** The Request-URI for an E.164 number on a trunk: `sip:+15551234567@host[:port][;transport=…]`. */
export function trunkUri(number: string, t: SipTrunk): string {
  const host = t.host.includes(':') && !t.host.startsWith('[') ? `[${t.host}]` : t.host;
  return `sip:${number}@${host}${t.port === null ? '' : `:${t.port}`}${t.transport ? `;transport=${t.transport}` : ''}`;
}
