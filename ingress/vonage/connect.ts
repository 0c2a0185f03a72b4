/**
 * `switchboard numbers connect [NUMBER] --provider vonage`: points a Vonage
 * application's voice webhooks at this gateway, and optionally links a number
 * to that application, through @vonage/server-sdk.
 *
 *   GET  {api}/v2/applications/ID       (Basic auth: VONAGE_API_KEY:VONAGE_API_SECRET)
 *   GET  {rest}/account/numbers?pattern=MSISDN&search_pattern=0     (with NUMBER: it must be on the account)
 *   PUT  {api}/v2/applications/ID       the fetched application, only capabilities.voice.webhooks
 *                                       .answer_url / .event_url changed (POST PUBLIC/vonage/answer, POST PUBLIC/vonage/event)
 *   POST {rest}/number/update           country, msisdn, app_id            (with NUMBER, unless already linked)
 *
 * Both reads happen before any write, so a missing number changes nothing.
 * The answer webhook is set to POST (the gateway accepts GET and POST): the
 * call parameters are then in the body, which the signed JWT's payload_hash
 * covers; a GET's query string is not covered.
 *
 * Inputs: VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_APPLICATION_ID; the public
 * base URL from --public-url or SWITCHBOARD_PUBLIC_URL (the gateway's own
 * setting): https, or http for localhost only. VONAGE_API_HOST and
 * VONAGE_REST_HOST override the API hosts (same https rule: the credentials
 * are sent there). A missing or invalid input is a `ProviderConnectError` with
 * exit code 2 before anything is sent; an HTTP or network failure is one line
 * with exit code 1. The API secret is never printed.
 */
import { Vonage } from '@vonage/server-sdk';
import { z } from 'zod';
import { baseUrl, LOCAL_HOSTS, ProviderConnectError } from '../provider-connect.ts';

export { ProviderConnectError };

export interface ConnectRequest {
  /** E.164, e.g. +14155550100; undefined: only the application's webhooks. */
  number: string | undefined;
  /** --public-url; falls back to SWITCHBOARD_PUBLIC_URL. */
  publicUrl: string | undefined;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  /** One line of output (stdout). */
  print: (line: string) => void;
}

export interface Webhook {
  address: string;
  http_method: 'GET' | 'POST';
}

const DEFAULT_API_HOST = 'https://api.nexmo.com';
const DEFAULT_REST_HOST = 'https://rest.nexmo.com';
const E164 = /^\+[1-9]\d{1,14}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CREDENTIALS = ['VONAGE_API_KEY', 'VONAGE_API_SECRET', 'VONAGE_APPLICATION_ID'] as const;

export { baseUrl };

/** The two webhooks the gateway serves (ingress/vonage/index.ts). */
export function gatewayWebhooks(publicUrl: string): { answer: Webhook; event: Webhook } {
  return {
    answer: { address: `${publicUrl}/vonage/answer`, http_method: 'POST' },
    event: { address: `${publicUrl}/vonage/event`, http_method: 'POST' },
  };
}

// ── the application update (pure) ────────────────────────────────────────────

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const snake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * The SDK returns each object with the API's snake_case keys and camelCase
 * copies (`answer_url` and `answerUrl`, same content). This keeps one
 * snake_case key per field, the API's own where both exist: the API's shape.
 */
export function apiShape(value: unknown): Json {
  if (Array.isArray(value)) return value.map(apiShape);
  if (value === null || typeof value !== 'object') {
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null;
  }
  const out: JsonObject = {};
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  for (const [k, v] of entries) if (snake(k) === k) out[k] = apiShape(v);
  for (const [k, v] of entries) if (!(snake(k) in out)) out[snake(k)] = apiShape(v);
  return out;
}

const asObject = (v: Json | undefined): JsonObject => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {});

/**
 * The application as PUT: the fetched one (API shape, `_links` dropped) with
 * only voice.webhooks.answer_url and event_url replaced; their other fields
 * (timeouts), fallback_answer_url, the other voice settings and every other
 * capability are kept as they are.
 */
export function withGatewayWebhooks(application: JsonObject, publicUrl: string): JsonObject {
  const { _links: _dropped, ...app } = application;
  const capabilities = asObject(app.capabilities);
  const voice = asObject(capabilities.voice);
  const webhooks = asObject(voice.webhooks);
  const wanted = gatewayWebhooks(publicUrl);
  return {
    ...app,
    capabilities: {
      ...capabilities,
      voice: {
        ...voice,
        webhooks: {
          ...webhooks,
          answer_url: { ...asObject(webhooks.answer_url), ...wanted.answer },
          event_url: { ...asObject(webhooks.event_url), ...wanted.event },
        },
      },
    },
  };
}

const webhookOf = (app: JsonObject, name: 'answer_url' | 'event_url'): string => {
  const w = asObject(asObject(asObject(asObject(app.capabilities).voice).webhooks)[name]);
  return typeof w.address === 'string' ? `${typeof w.http_method === 'string' ? w.http_method : '?'} ${w.address}` : '(none)';
};

// ── inputs and plan ──────────────────────────────────────────────────────────

const NonEmpty = z.string().trim().min(1);

interface Settings {
  apiKey: string | undefined;
  apiSecret: string | undefined;
  applicationId: string | undefined;
  publicUrl: string | undefined;
  number: string | undefined;
  apiHost: string;
  restHost: string;
  missing: string[];
}

/**
 * Whether DEBUG (the `debug` module's patterns) turns on the SDK's own logs,
 * which print each request's headers, the Basic credentials included.
 */
export function sdkDebugEnabled(debug: string | undefined): boolean {
  if (debug === undefined) return false;
  const patterns = debug.split(/[\s,]+/).filter((p) => p.length > 0);
  const matches = (p: string): boolean => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test('vonage:server-client');
  return !patterns.some((p) => p.startsWith('-') && matches(p.slice(1))) && patterns.some((p) => !p.startsWith('-') && matches(p));
}

/** Validates what is given (exit 2 on a bad value) and lists what is missing. */
export function readSettings(req: Pick<ConnectRequest, 'number' | 'publicUrl' | 'env'>): Settings {
  const value = (name: string): string | undefined => {
    const r = NonEmpty.safeParse(req.env[name]);
    return r.success ? r.data : undefined;
  };
  if (sdkDebugEnabled(req.env.DEBUG)) {
    throw new ProviderConnectError(`DEBUG=${req.env.DEBUG ?? ''} makes @vonage/server-sdk log its request headers, the API credentials included: unset DEBUG (or add -vonage:*) and run again; nothing was sent`, 2);
  }
  const missing: string[] = CREDENTIALS.filter((n) => value(n) === undefined);
  const applicationId = value('VONAGE_APPLICATION_ID');
  if (applicationId !== undefined && !UUID.test(applicationId)) {
    throw new ProviderConnectError(`VONAGE_APPLICATION_ID: not an application id (a UUID, as shown in the Vonage dashboard): ${JSON.stringify(applicationId)}`, 2);
  }
  if (req.number !== undefined && !E164.test(req.number)) {
    throw new ProviderConnectError(`NUMBER: not an E.164 number (+ and country code, digits only, e.g. +14155550100): ${JSON.stringify(req.number)}`, 2);
  }
  const rawPublic = req.publicUrl ?? value('SWITCHBOARD_PUBLIC_URL');
  if (rawPublic === undefined) missing.push('SWITCHBOARD_PUBLIC_URL (or --public-url)');
  const host = (name: string, fallback: string): string => {
    const raw = value(name);
    return raw === undefined ? fallback : baseUrl(name, raw);
  };
  return {
    apiKey: value('VONAGE_API_KEY'),
    apiSecret: value('VONAGE_API_SECRET'),
    applicationId,
    publicUrl: rawPublic === undefined ? undefined : baseUrl(req.publicUrl === undefined ? 'SWITCHBOARD_PUBLIC_URL' : '--public-url', rawPublic),
    number: req.number,
    apiHost: host('VONAGE_API_HOST', DEFAULT_API_HOST),
    restHost: host('VONAGE_REST_HOST', DEFAULT_REST_HOST),
    missing,
  };
}

/** What a run changes, as printed by --dry-run and by a run that lacks inputs. */
export function planLines(s: Pick<Settings, 'applicationId' | 'publicUrl' | 'number'>): string[] {
  const app = s.applicationId ?? '$VONAGE_APPLICATION_ID';
  const w = gatewayWebhooks(s.publicUrl ?? '$SWITCHBOARD_PUBLIC_URL');
  const lines = [
    `Vonage application ${app}: set the voice webhooks`,
    `  answer_url  ${w.answer.http_method} ${w.answer.address}`,
    `  event_url   ${w.event.http_method} ${w.event.address}`,
    '  (its other capabilities and settings are kept as they are)',
  ];
  if (s.number !== undefined) lines.push(`Vonage number ${s.number}: link it to application ${app}`);
  return lines;
}

// ── errors from the SDK ──────────────────────────────────────────────────────

interface FailedResponse {
  status: number;
  statusText: string;
  text: () => Promise<string>;
}

const isFailedResponse = (v: unknown): v is FailedResponse =>
  typeof v === 'object' && v !== null && typeof (v as FailedResponse).status === 'number' && typeof (v as FailedResponse).text === 'function';

const oneLine = (s: string, max = 200): string => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/**
 * An HTTP error (the SDK's VetchError carries the unread response): status
 * and Vonage's error title (RFC 7807 `title`/`detail`, or the Numbers API's
 * `error-code-label`). A network error: its code and the host. One line.
 */
export async function describeFailure(step: string, host: string, err: unknown): Promise<ProviderConnectError> {
  const response: unknown = typeof err === 'object' && err !== null ? (err as { response?: unknown }).response : undefined;
  if (isFailedResponse(response)) {
    let title = response.statusText;
    let detail = '';
    try {
      const body: unknown = JSON.parse(await response.text());
      const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
      if (typeof b.title === 'string') title = b.title;
      else if (typeof b['error-code-label'] === 'string') title = b['error-code-label'];
      if (typeof b.detail === 'string') detail = b.detail;
    } catch {
      // not JSON: the status text stands
    }
    return new ProviderConnectError(oneLine(`Vonage API: ${step} failed: HTTP ${response.status} ${title}${detail && detail !== title ? ` (${detail})` : ''}`), 1);
  }
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  const reason = typeof e?.code === 'string' ? e.code : e?.name === 'AbortError' ? 'timed out' : typeof e?.message === 'string' ? e.message : String(err);
  return new ProviderConnectError(oneLine(`Vonage API: ${step} failed: cannot reach ${host}: ${reason}`), 1);
}

// ── the command ──────────────────────────────────────────────────────────────

const OwnedNumbers = z.object({
  numbers: z.array(z.object({ msisdn: z.string(), country: z.string(), app_id: z.string().optional() }).passthrough()).optional(),
});

export async function connectProvider(req: ConnectRequest): Promise<void> {
  const s = readSettings(req);
  if (s.missing.length > 0) {
    const plan = planLines(s).map((l) => `  ${l}`);
    throw new ProviderConnectError([`numbers connect --provider vonage: not set: ${s.missing.join(', ')}; nothing was sent.`, 'With them set, it would:', ...plan].join('\n'), 2);
  }
  const { apiKey, apiSecret, applicationId, publicUrl } = s;
  if (apiKey === undefined || apiSecret === undefined || applicationId === undefined || publicUrl === undefined) throw new Error('unreachable: missing inputs listed above');
  const local = LOCAL_HOSTS.has(new URL(publicUrl).hostname);
  if (req.dryRun) {
    req.print('dry run: nothing sent. A run would:');
    for (const l of planLines(s)) req.print(`  ${l}`);
    if (local) req.print('note: Vonage cannot reach localhost; give a public https URL (e.g. a tunnel) for real calls');
    return;
  }

  const vonage = new Vonage({ apiKey, apiSecret }, { apiHost: s.apiHost, restHost: s.restHost, timeout: 15_000 });
  const call = async <T>(step: string, host: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw await describeFailure(step, host, err);
    }
  };

  // Reads first: a missing application or number changes nothing.
  const fetched = asObject(apiShape(await call(`reading application ${applicationId}`, s.apiHost, () => vonage.applications.getApplication(applicationId))));
  let link: { msisdn: string; country: string } | undefined;
  if (s.number !== undefined) {
    const msisdn = s.number.slice(1);
    const owned = OwnedNumbers.safeParse(
      await call(`looking up ${s.number}`, s.restHost, () => vonage.numbers.getOwnedNumbers({ pattern: msisdn, searchPattern: 0 })),
    );
    const found = owned.success ? owned.data.numbers?.find((n) => n.msisdn === msisdn) : undefined;
    if (found === undefined) throw new ProviderConnectError(`Vonage API: ${s.number} is not a number of this Vonage account (VONAGE_API_KEY); nothing was changed`, 1);
    if (found.app_id === applicationId) req.print(`Vonage number ${s.number}: already linked to application ${applicationId}`);
    else link = { msisdn, country: found.country };
  }

  const name = typeof fetched.name === 'string' ? fetched.name : applicationId;
  const update = withGatewayWebhooks(fetched, publicUrl);
  const before = { answer: webhookOf(fetched, 'answer_url'), event: webhookOf(fetched, 'event_url') };
  const after = { answer: webhookOf(update, 'answer_url'), event: webhookOf(update, 'event_url') };
  if (before.answer === after.answer && before.event === after.event) {
    req.print(`Vonage application ${name} (${applicationId}): voice webhooks already point at ${publicUrl}`);
  } else {
    // The SDK snake_cases the keys it is given: the API shape passes through unchanged.
    const sent = update as unknown as Parameters<typeof vonage.applications.updateApplication>[0];
    const saved = asObject(apiShape(await call(`updating application ${applicationId}`, s.apiHost, () => vonage.applications.updateApplication(sent))));
    req.print(`Vonage application ${name} (${applicationId}): voice webhooks set`);
    req.print(`  answer_url  ${webhookOf(saved, 'answer_url')}   (was ${before.answer})`);
    req.print(`  event_url   ${webhookOf(saved, 'event_url')}   (was ${before.event})`);
  }
  if (asObject(asObject(fetched.capabilities).voice).signed_callbacks !== true) {
    req.print('note: the application does not sign its webhooks (voice signed_callbacks is off); outside the development profile the gateway refuses unsigned webhooks: turn signing on and set VONAGE_SIGNATURE_SECRET');
  }

  if (link !== undefined) {
    const { msisdn, country } = link;
    const r = await call(`linking ${s.number}`, s.restHost, () => vonage.numbers.updateNumber({ country, msisdn, applicationId }));
    if (r.errorCode !== '200') throw new ProviderConnectError(oneLine(`Vonage API: linking ${s.number} failed: error ${r.errorCode} ${r.errorCodeLabel ?? ''}`), 1);
    req.print(`Vonage number ${s.number}: linked to application ${applicationId}`);
  }
  if (local) req.print('note: Vonage cannot reach localhost; give a public https URL (e.g. a tunnel) for real calls');
}
