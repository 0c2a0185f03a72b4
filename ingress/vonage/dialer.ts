/**
 * Outbound Vonage calls: `voice.createOutboundCall` through @vonage/server-sdk, with the application of the
 * from-number's tenant (SWITCHBOARD_PROVIDER_ACCOUNTS: application_id + private_key; ingress/provider-accounts.ts).
 *
 *   dial({ from, to, amd }) ──► POST {api}/v1/calls   (Bearer JWT signed with the application's private key)
 *        │                        to [{type: phone}], from {type: phone}, answer_url PUBLIC/vonage/answer,
 *        │                        event_url PUBLIC/vonage/event, advanced_machine_detection {continue, detect} (amd)
 *        ├─ refused (4xx/5xx, network) ─► DialError 502 `provider_refused`, nothing written
 *        └─ uuid ─► call_dialed (row `ringing`, keyed by the call's uuid) ─► 202
 *
 *   callee answers ─► /vonage/answer (signed) ─► the same NCCO as inbound: `connect` to our websocket
 *                     (consent, recording, agent; a dropped socket resumes through the event webhook)
 *   event `human` / `machine` (AMD) ─► call_answered_by;   final status busy | timeout | unanswered | rejected |
 *   failed | cancelled ─► ended `vonage:<status>`
 *
 * Webhooks that overtake the create's response wait for the creates in flight (`settled`). The API host defaults
 * to Vonage's; the accounts file's `api_base` points the SDK elsewhere (its documented `apiHost` option). Private
 * keys are never logged: an application is named by its id. The tenant's account set through the API (`stored`) is
 * preferred over the file's; `checkCredentials` checks one before it is stored (PUT /v1/provider-accounts/vonage).
 */
import { createPrivateKey } from 'node:crypto';
import type { Vonage } from '@vonage/server-sdk';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import { DialError, IngressConfigError, type DialRequest, type DialResult, type OutboundDialer } from '../port.ts';
import { accountFor, type ProviderSection, type StoredAccounts } from '../provider-accounts.ts';

const Credentials = z.strictObject({
  application_id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'the application id (a UUID)'),
  private_key: z.string().regex(/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "the application's PEM private key"),
});

export interface VonageAccount {
  tenant: string;
  numbers: readonly string[] | null;
  applicationId: string;
  privateKey: string;
  apiBase: string | null;
  /** Made on the first dial: the SDK (~0.4 s of CPU to load) is imported on first use, not at start. */
  client?: Vonage;
}

/** Checks each account's credentials (IngressConfigError naming the field, never its value); its client is made on first use. */
export function vonageAccounts(section: ProviderSection, adapter: string): VonageAccount[] {
  return section.accounts.map((a, i) => {
    const r = Credentials.safeParse(a.credentials);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new IngressConfigError(`SWITCHBOARD_PROVIDER_ACCOUNTS: ${adapter}.accounts.${i} (tenant ${a.tenant}): credentials.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
    }
    const { application_id: applicationId, private_key: privateKey } = r.data;
    try {
      createPrivateKey(privateKey);
    } catch {
      throw new IngressConfigError(`SWITCHBOARD_PROVIDER_ACCOUNTS: ${adapter}.accounts.${i} (tenant ${a.tenant}): credentials.private_key: not a readable PEM private key`);
    }
    return { tenant: a.tenant, numbers: a.numbers, applicationId, privateKey, apiBase: section.apiBase };
  });
}

/** The account's client, made once (the first dial imports the SDK). */
async function clientOf(a: VonageAccount): Promise<Vonage> {
  if (a.client) return a.client;
  const { Vonage: Sdk } = await import('@vonage/server-sdk');
  a.client = new Sdk({ applicationId: a.applicationId, privateKey: a.privateKey }, { ...(a.apiBase ? { apiHost: a.apiBase } : {}), timeout: 15_000 });
  return a.client;
}

/** `+447700900000` or `tel:+447700900000` → `447700900000` (Vonage's form: no +); null if neither. */
export function msisdn(to: string): string | null {
  const bare = to.replace(/^tel:/i, '').replace(/[\s().-]/g, '');
  return /^\+[1-9]\d{1,14}$/.test(bare) ? bare.slice(1) : null;
}

/** An AMD event's status (`human`, `machine`) → who answered; null for any other status. */
export function answeredByOf(status: string): 'human' | 'machine' | null {
  return status === 'human' ? 'human' : status === 'machine' ? 'machine' : null;
}

async function refusal(err: unknown): Promise<string> {
  const response = (err as { response?: { status?: unknown; text?: () => Promise<string> } } | null)?.response;
  if (typeof response?.status === 'number') {
    let title = '';
    try {
      const body = JSON.parse((await response.text?.()) ?? '{}') as { title?: unknown; detail?: unknown };
      title = [body.title, body.detail].filter((x) => typeof x === 'string').join(': ');
    } catch {
      // not JSON: the status alone
    }
    return `HTTP ${response.status}${title ? ` ${title}` : ''}`;
  }
  const e = err as { code?: unknown; message?: unknown } | null;
  return typeof e?.code === 'string' ? e.code : typeof e?.message === 'string' ? e.message : String(err);
}

export interface VonageDialerDeps {
  calls: Pick<CallControl, 'dial'>;
  accounts: readonly VonageAccount[];
  publicUrl: string;
  provider: string;
  log: Logger;
  /** Accounts set through the API (preferred over `accounts`); absent = none. */
  stored?: StoredAccounts;
  /** The accounts file's `api_base` for the stored accounts too; null: Vonage's. */
  apiBase?: string | null;
}

/** An account's credentials checked (IngressConfigError-free): the parsed fields, or the first problem in words. */
function parseCredentials(credentials: Readonly<Record<string, string>>): { applicationId: string; privateKey: string } | string {
  const r = Credentials.safeParse(credentials);
  if (!r.success) {
    const issue = r.error.issues[0];
    return `credentials.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
  }
  try {
    createPrivateKey(r.data.private_key);
  } catch {
    return 'credentials.private_key: not a readable PEM private key';
  }
  return { applicationId: r.data.application_id, privateKey: r.data.private_key };
}

export class VonageDialer implements OutboundDialer {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly deps: VonageDialerDeps) {}

  readonly prefixes = ['tel:', '+'] as const;

  targetProblem(to: string): string | null {
    return msisdn(to) === null ? 'is not an E.164 number or tel: URI (+ and country code, e.g. +447700900000)' : null;
  }

  /** Stored accounts' clients, by application id and key (a replaced key gets a new client). */
  private readonly storedClients = new Map<string, VonageAccount>();

  serves(tenant: string, from: string): boolean {
    return this.accountOf(tenant, from) !== undefined;
  }

  /** The account for a call from `from` of `tenant`: the one set through the API, else the file's. */
  private accountOf(tenant: string, from: string): VonageAccount | undefined {
    const stored = this.deps.stored?.forNumber(tenant, from);
    const parsed = stored && parseCredentials(stored.credentials);
    if (stored && parsed && typeof parsed !== 'string') {
      const key = `${parsed.applicationId}|${parsed.privateKey}`;
      let a = this.storedClients.get(key);
      if (!a) this.storedClients.set(key, (a = { tenant, numbers: stored.numbers, ...parsed, apiBase: this.deps.apiBase ?? null }));
      return a;
    }
    return accountFor(this.deps.accounts, tenant, from);
  }

  /** PUT /v1/provider-accounts/vonage: the application id's form and the private key parsed (node:crypto). */
  checkCredentials(credentials: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const parsed = parseCredentials(credentials);
    if (typeof parsed === 'string') return Promise.reject(new DialError(400, 'invalid_credentials', parsed));
    return Promise.resolve({ application_id: parsed.applicationId, private_key: 'set' });
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
    const to = msisdn(req.to);
    const from = msisdn(req.from) ?? req.from;
    if (to === null) throw new DialError(400, 'invalid_request', `to: ${this.targetProblem(req.to) ?? ''}`);
    const base = this.deps.publicUrl;
    let uuid: string;
    try {
      const created = await (await clientOf(account)).voice.createOutboundCall({
        to: [{ type: 'phone', number: to }],
        from: { type: 'phone', number: from },
        answerUrl: [`${base}/vonage/answer`],
        answerMethod: 'POST',
        eventUrl: [`${base}/vonage/event`],
        eventMethod: 'POST',
        ...(req.amd ? { advancedMachineDetection: { behavior: 'continue', mode: 'detect' } } : {}),
      } as Parameters<Vonage['voice']['createOutboundCall']>[0]);
      uuid = created.uuid;
    } catch (err) {
      const why = await refusal(err);
      this.deps.log.warn({ application: account.applicationId, from: req.from, reason: why }, 'outbound Vonage call refused by the API');
      throw new DialError(502, 'provider_refused', `Vonage refused the call: ${why}`);
    }
    const receipt = await this.deps.calls.dial({ tenant: req.tenant, caller: req.caller, provider: this.deps.provider, providerCallId: uuid, from: req.from, to: `+${to}`, agent: req.agent ?? null, ...(req.amd ? { amd: req.amd } : {}) });
    if (!receipt.ok) {
      await (await clientOf(account)).voice.hangupCall(uuid).catch(async (err: unknown) => this.deps.log.warn({ uuid, reason: await refusal(err) }, 'hanging up a call the store refused failed'));
      throw new DialError(receipt.code === 'forbidden' ? 403 : receipt.code.endsWith('_not_found') ? 404 : 409, receipt.code, receipt.message);
    }
    this.deps.log.info({ call: receipt.result.call_id, uuid, application: account.applicationId, amd: req.amd !== undefined }, 'outbound Vonage call placed');
    return { callId: receipt.result.call_id, providerCallId: uuid };
  }
}
