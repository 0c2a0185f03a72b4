/**
 * Outbound Twilio calls: `calls.create` through the official `twilio` package, with the account of the
 * from-number's tenant (SWITCHBOARD_PROVIDER_ACCOUNTS, ingress/provider-accounts.ts).
 *
 *   dial({ from, to, amd }) ──► POST {api}/2010-04-01/Accounts/AC…/Calls.json
 *        │                        To, From, Url=PUBLIC/twilio/voice, StatusCallback=PUBLIC/twilio/status,
 *        │                        StatusCallbackEvent=initiated ringing answered completed, MachineDetection=Enable (amd)
 *        ├─ refused (4xx/5xx, network) ─► DialError 502 `provider_refused`, nothing written
 *        └─ CallSid ─► call_dialed (row `ringing`, keyed by the CallSid) ─► 202
 *
 *   callee answers ─► POST /twilio/voice (signed; AnsweredBy when AMD was asked) ─► the same TwiML as inbound
 *                     (<Connect><Stream>…<Redirect>): consent, recording, agent; AnsweredBy ─► call_answered_by
 *   never answered ─► POST /twilio/status CallStatus=busy|no-answer|failed|canceled ─► ended `twilio:<status>`
 *
 * A webhook can overtake the create's response (the row is written once the CallSid is known): the routes wait for
 * the creates in flight (`settled`) before they call a CallSid unknown. If the row cannot be written (the store
 * refuses), the call is cancelled at Twilio. The REST base defaults to Twilio's; the accounts file's `api_base`
 * points the package elsewhere (a test's fake) through its documented custom `httpClient` option. Auth tokens are
 * never logged; an account is named by its AccountSid only.
 *
 * The account is the tenant's one set through the API (`stored`, opened from the store on use) when it covers the
 * from-number, else the file's; `checkCredentials` fetches the account with the given SID and token before they are
 * stored (PUT /v1/provider-accounts/twilio).
 */
import type twilio from 'twilio';
import { loadTwilio } from './sdk.ts';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import { DialError, IngressConfigError, type DialRequest, type DialResult, type OutboundDialer } from '../port.ts';
import { accountFor, type ProviderSection, type StoredAccounts } from '../provider-accounts.ts';

const Credentials = z.strictObject({
  account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'AC + 32 hex digits'),
  auth_token: z.string().regex(/^[0-9A-Za-z]{16,128}$/, 'the account auth token (letters and digits)'),
});

export interface TwilioAccount {
  tenant: string;
  numbers: readonly string[] | null;
  accountSid: string;
  authToken: string;
  /** The accounts file's `api_base` (a test's fake), or null: Twilio's. */
  apiBase: string | null;
  /** Made on the first dial: the package is imported on first use (sdk.ts), not at start. */
  client?: twilio.Twilio;
}

/** The package's request client, sending to `base` instead of https://*.twilio.com (the documented `httpClient` option). */
function baseUrlClient(sdk: typeof twilio, base: string): twilio.RequestClient {
  const client = new sdk.RequestClient({ timeout: 15_000 });
  const send = client.request.bind(client);
  client.request = ((opts: Parameters<typeof send>[0]) => send({ ...opts, uri: opts.uri.replace(/^https:\/\/[a-z0-9.-]+\.twilio\.com/i, base) })) as typeof client.request;
  return client;
}

/** Checks each account's credentials (IngressConfigError naming the field, never its value); its client is made on first use. */
export function twilioAccounts(section: ProviderSection, adapter: string): TwilioAccount[] {
  return section.accounts.map((a, i) => {
    const r = Credentials.safeParse(a.credentials);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new IngressConfigError(`SWITCHBOARD_PROVIDER_ACCOUNTS: ${adapter}.accounts.${i} (tenant ${a.tenant}): credentials.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const { account_sid: accountSid, auth_token: authToken } = r.data;
    return { tenant: a.tenant, numbers: a.numbers, accountSid, authToken, apiBase: section.apiBase };
  });
}

/** The account's REST client, made once (the first dial imports the package if the warm-up has not yet). */
async function clientOf(a: TwilioAccount): Promise<twilio.Twilio> {
  if (a.client) return a.client;
  const sdk = await loadTwilio();
  a.client = sdk(a.accountSid, a.authToken, a.apiBase ? { httpClient: baseUrlClient(sdk, a.apiBase) } : { timeout: 15_000 });
  return a.client;
}

/** `+14155550100` or `tel:+14155550100` → `+14155550100` (visual separators dropped); null if neither. */
export function e164(to: string): string | null {
  const bare = to.replace(/^tel:/i, '').replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{1,14}$/.test(bare) ? bare : null;
}

/** Twilio's `AnsweredBy` (AMD) → who answered. */
export function answeredByOf(raw: string): 'human' | 'machine' | 'unknown' {
  if (raw === 'human') return 'human';
  if (raw.startsWith('machine') || raw === 'fax') return 'machine';
  return 'unknown';
}

/** A REST failure in one line: Twilio's status, error code and message (RestException), or the network error. */
function refusal(err: unknown): string {
  const e = err as { status?: unknown; code?: unknown; message?: unknown } | null;
  if (typeof e?.status === 'number') return `HTTP ${e.status}${typeof e.code === 'number' ? ` (Twilio error ${e.code})` : ''}: ${typeof e.message === 'string' ? e.message : ''}`.trim();
  return typeof e?.code === 'string' ? e.code : typeof e?.message === 'string' ? e.message : String(err);
}

export interface TwilioDialerDeps {
  calls: Pick<CallControl, 'dial'>;
  accounts: readonly TwilioAccount[];
  /** Accounts set through the API (preferred over `accounts`); absent = none. */
  stored?: StoredAccounts;
  /** The accounts file's `api_base` for the stored accounts too (a test's fake); null: Twilio's. */
  apiBase?: string | null;
  publicUrl: string;
  provider: string;
  log: Logger;
}

export class TwilioDialer implements OutboundDialer {
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Stored accounts' REST clients, by SID and token (a replaced token gets a new client). */
  private readonly storedClients = new Map<string, TwilioAccount>();

  constructor(private readonly deps: TwilioDialerDeps) {}

  readonly prefixes = ['tel:', '+'] as const;

  targetProblem(to: string): string | null {
    return e164(to) === null ? 'is not an E.164 number or tel: URI (+ and country code, e.g. +14155550100)' : null;
  }

  serves(tenant: string, from: string): boolean {
    return this.accountOf(tenant, from) !== undefined;
  }

  /** The account for a call from `from` of `tenant`: the one set through the API, else the file's. */
  private accountOf(tenant: string, from: string): TwilioAccount | undefined {
    const stored = this.deps.stored?.forNumber(tenant, from);
    const parsed = stored && Credentials.safeParse(stored.credentials);
    if (stored && parsed?.success) {
      const key = `${parsed.data.account_sid}|${parsed.data.auth_token}`;
      let a = this.storedClients.get(key);
      if (!a) this.storedClients.set(key, (a = { tenant, numbers: stored.numbers, accountSid: parsed.data.account_sid, authToken: parsed.data.auth_token, apiBase: this.deps.apiBase ?? null }));
      return a;
    }
    return accountFor(this.deps.accounts, tenant, from);
  }

  /** Stored accounts' SIDs and tokens (those whose credentials parse). */
  private storedTokens(): Array<{ accountSid: string; authToken: string }> {
    return (this.deps.stored?.all() ?? []).flatMap((a) => {
      const r = Credentials.safeParse(a.credentials);
      return r.success ? [{ accountSid: r.data.account_sid, authToken: r.data.auth_token }] : [];
    });
  }

  /** The account whose auth token signs webhooks about `accountSid`, if configured (set through the API, else the file). */
  authTokenOf(accountSid: string): string | undefined {
    return [...this.storedTokens(), ...this.deps.accounts].find((a) => a.accountSid === accountSid)?.authToken;
  }

  /** Every configured account's auth token (a media-stream upgrade names no account: each is tried). */
  authTokens(): string[] {
    return [...this.storedTokens(), ...this.deps.accounts].map((a) => a.authToken);
  }

  /**
   * PUT /v1/provider-accounts/twilio: the SID's and token's form, then the account fetched through the package
   * (`GET /2010-04-01/Accounts/AC….json` with those credentials): refused = 400 `invalid_credentials`.
   */
  async checkCredentials(credentials: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const r = Credentials.safeParse(credentials);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new DialError(400, 'invalid_credentials', `credentials.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const probe: TwilioAccount = { tenant: '', numbers: null, accountSid: r.data.account_sid, authToken: r.data.auth_token, apiBase: this.deps.apiBase ?? null };
    let account: { friendlyName?: string; status?: string };
    try {
      account = await (await clientOf(probe)).api.v2010.accounts(probe.accountSid).fetch();
    } catch (err) {
      throw new DialError(400, 'invalid_credentials', `Twilio did not accept the account ${probe.accountSid}: ${refusal(err)}`);
    }
    if (account.status !== undefined && account.status !== 'active') throw new DialError(400, 'invalid_credentials', `Twilio account ${probe.accountSid} is ${account.status}, not active`);
    return { account_sid: probe.accountSid, auth_token: 'set', ...(account.friendlyName ? { friendly_name: account.friendlyName } : {}) };
  }

  /** Resolves once every create in flight has its row written (or failed): a webhook can overtake the response. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  dial(req: DialRequest): Promise<DialResult> {
    const p = this.place(req);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  private async place(req: DialRequest): Promise<DialResult> {
    const account = this.accountOf(req.tenant, req.from);
    if (!account) throw new DialError(422, 'no_provider_account', `from: no ${this.deps.provider} account is configured for ${req.from} (PUT /v1/provider-accounts/${this.deps.provider} or SWITCHBOARD_PROVIDER_ACCOUNTS)`);
    const to = e164(req.to);
    if (to === null) throw new DialError(400, 'invalid_request', `to: ${this.targetProblem(req.to) ?? ''}`);
    const base = this.deps.publicUrl;
    let sid: string;
    try {
      const created = await (await clientOf(account)).calls.create({
        to,
        from: req.from,
        url: `${base}/twilio/voice`,
        method: 'POST',
        statusCallback: `${base}/twilio/status`,
        statusCallbackMethod: 'POST',
        statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
        ...(req.amd ? { machineDetection: 'Enable' } : {}),
      });
      sid = created.sid;
    } catch (err) {
      this.deps.log.warn({ account: account.accountSid, from: req.from, reason: refusal(err) }, 'outbound Twilio call refused by the API');
      throw new DialError(502, 'provider_refused', `Twilio refused the call: ${refusal(err)}`);
    }
    const receipt = await this.deps.calls.dial({ tenant: req.tenant, caller: req.caller, provider: this.deps.provider, providerCallId: sid, from: req.from, to, agent: req.agent ?? null, ...(req.amd ? { amd: req.amd } : {}) });
    if (!receipt.ok) {
      await (await clientOf(account)).calls(sid).update({ status: 'canceled' }).catch((err: unknown) => this.deps.log.warn({ callSid: sid, reason: refusal(err) }, 'cancelling a call the store refused failed'));
      throw new DialError(receipt.code === 'forbidden' ? 403 : receipt.code.endsWith('_not_found') ? 404 : 409, receipt.code, receipt.message);
    }
    this.deps.log.info({ call: receipt.result.call_id, callSid: sid, account: account.accountSid, amd: req.amd !== undefined }, 'outbound Twilio call placed');
    return { callId: receipt.result.call_id, providerCallId: sid };
  }
}
