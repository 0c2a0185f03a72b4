/**
 * Provider accounts for outbound calls: whose credentials place a call from a tenant's number. From the JSON file
 * named by SWITCHBOARD_PROVIDER_ACCOUNTS (read by cli/config/ at start), keyed by adapter name:
 *
 *   {
 *     "<adapter>": {
 *       "api_base": "https://…",                 optional: the provider's REST API base (default: the provider's own)
 *       "accounts": [
 *         { "tenant": "acme", "numbers": ["+15550001111"], "credentials": { …the adapter's own fields… } },
 *         { "tenant": "acme", "credentials": { … } }          no `numbers`: every other number of the tenant
 *       ]
 *     }
 *   }
 *
 * The file's shape is checked here; each adapter checks its own `credentials` when it mounts (a bad field stops the
 * start with a line naming the variable, the adapter, the tenant and the field — never the value). The account for
 * a call is the entry naming the from-number, else the tenant's entry without `numbers`. Credentials live in this
 * file and in memory only: they never enter the log, a log line or `switchboard config` (which shows the path).
 *
 * Accounts set through the API (`PUT /v1/provider-accounts/:provider`, schema/provider-accounts.ts) are preferred:
 *
 *   account for (provider, tenant, from) ──► the tenant's stored account (sealed in the store; its `numbers`, if
 *        │                                    any, name `from`) — opened with the master key (account-seal.ts)
 *        └─ none ──────────────────────────► this file's entry (the number's, else the tenant's catch-all)
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import type { MasterKey } from '../recording/master-key.ts';
import { openCredentials } from './account-seal.ts';
import type { IngressStore } from './port.ts';

export class ProviderAccountsError extends Error {
  override readonly name = 'ProviderAccountsError';
}

const Account = z.strictObject({
  tenant: z.string().min(1).max(200),
  numbers: z.array(z.string().min(2).max(256)).min(1).optional(),
  credentials: z.record(z.string(), z.string().max(16_384)),
});
const Section = z.strictObject({
  api_base: z.string().url().optional(),
  accounts: z.array(Account).default([]),
});
const File = z.record(z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, 'an adapter name'), Section);

export interface ProviderAccount {
  tenant: string;
  /** null: every number of the tenant not named by another entry. */
  numbers: readonly string[] | null;
  credentials: Readonly<Record<string, string>>;
}

/** One adapter's part of the file. */
export interface ProviderSection {
  apiBase: string | null;
  accounts: readonly ProviderAccount[];
}

export class ProviderAccounts {
  private constructor(private readonly sections: ReadonlyMap<string, ProviderSection>) {}

  static empty(): ProviderAccounts {
    return new ProviderAccounts(new Map());
  }

  /** Checks the file's shape; `label` names it in errors (the variable and the path). */
  static parse(json: unknown, label: string): ProviderAccounts {
    const r = File.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new ProviderAccountsError(`${label}: ${issue ? `${issue.path.join('.') || '(file)'}: ${issue.message}` : 'invalid'}`);
    }
    const sections = new Map<string, ProviderSection>();
    for (const [name, s] of Object.entries(r.data)) {
      sections.set(name, { apiBase: s.api_base?.replace(/\/+$/, '') ?? null, accounts: s.accounts.map((a) => ({ tenant: a.tenant, numbers: a.numbers ?? null, credentials: a.credentials })) });
    }
    return new ProviderAccounts(sections);
  }

  /** The adapter's section (empty when the file does not name it). */
  of(adapter: string): ProviderSection {
    return this.sections.get(adapter) ?? { apiBase: null, accounts: [] };
  }

  /** Adapter names and account counts, for a log line: no credential. */
  describe(): string {
    return [...this.sections].map(([n, s]) => `${n}: ${s.accounts.length} account(s)${s.apiBase ? ` at ${s.apiBase}` : ''}`).join('; ') || 'none';
  }
}

/** The account that places a call from `number` of `tenant`: the entry naming the number, else the tenant's catch-all. */
export function accountFor<A extends { tenant: string; numbers: readonly string[] | null }>(accounts: readonly A[], tenant: string, number: string): A | undefined {
  return accounts.find((a) => a.tenant === tenant && a.numbers?.includes(number)) ?? accounts.find((a) => a.tenant === tenant && a.numbers === null);
}

/** Accounts set through the API, opened on use (ingress adapters ask it before their file entries). */
export interface StoredAccounts {
  /** The tenant's stored account of `provider` when it covers `from` (no `numbers`, or `from` among them). */
  forNumber(tenant: string, from: string): ProviderAccount | undefined;
  /** Every tenant's stored account of `provider` (e.g. to find the auth token a webhook was signed with). */
  all(): ProviderAccount[];
}

/** The stored accounts of one provider, read from the store and opened with the master key (never cached in clear). */
export function storedAccounts(store: IngressStore, master: () => MasterKey, provider: string, log?: Logger): StoredAccounts {
  const open = (r: { tenant: string; provider: string; numbers: readonly string[] | null; sealed: string }): ProviderAccount | undefined => {
    const credentials = openCredentials(master(), r.tenant, r.provider, r.sealed);
    if (credentials === null) {
      log?.error({ tenant: r.tenant, provider: r.provider }, 'a stored provider account does not open with this node\'s master key: ignored');
      return undefined;
    }
    return { tenant: r.tenant, numbers: r.numbers, credentials };
  };
  return {
    forNumber(tenant, from) {
      const row = store.read(tenant).provider_accounts.findOne({ provider });
      if (!row || (row.numbers !== null && !row.numbers.includes(from))) return undefined;
      return open(row);
    },
    all() {
      return store
        .read(null)
        .provider_accounts.find({ provider })
        .flatMap((r) => open(r) ?? []);
    },
  };
}
