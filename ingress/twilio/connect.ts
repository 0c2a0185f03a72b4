/**
 * `switchboard numbers connect NUMBER --provider twilio`: points a Twilio number's voice webhook and status callback
 * at this gateway, through the `twilio` package.
 *
 *   GET  {api}/2010-04-01/Accounts/AC…/IncomingPhoneNumbers.json?PhoneNumber=NUMBER   (Basic: ACCOUNT_SID:AUTH_TOKEN)
 *   POST {api}/2010-04-01/Accounts/AC…/IncomingPhoneNumbers/PN….json
 *        VoiceUrl=PUBLIC/twilio/voice VoiceMethod=POST StatusCallback=PUBLIC/twilio/status StatusCallbackMethod=POST
 *
 * The read happens before the write, so a number not on the account changes nothing; a number already pointed at
 * the gateway is left alone. Inputs: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (the same token then checks the
 * webhooks' signatures), NUMBER (E.164: Twilio's voice URL is per number), the public base URL from --public-url or
 * SWITCHBOARD_PUBLIC_URL (https, or http for localhost only). TWILIO_API_BASE overrides https://api.twilio.com (same
 * rule: the credentials are sent there), through the package's documented custom `httpClient`. A missing or invalid
 * input is a `ProviderConnectError` with exit code 2 before anything is sent; an HTTP or network failure is one line
 * with exit code 1 — the wording of Vonage's (ingress/vonage/connect.ts). The auth token is never printed.
 */
import twilio from 'twilio';
import { baseUrl, LOCAL_HOSTS, ProviderConnectError } from '../provider-connect.ts';

export { ProviderConnectError };

export interface ConnectRequest {
  number: string | undefined;
  publicUrl: string | undefined;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  print: (line: string) => void;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const DEFAULT_API_BASE = 'https://api.twilio.com';

interface Settings {
  accountSid: string | undefined;
  authToken: string | undefined;
  publicUrl: string | undefined;
  number: string | undefined;
  apiBase: string;
  missing: string[];
}

/** Validates what is given (exit 2 on a bad value) and lists what is missing. */
export function readSettings(req: Pick<ConnectRequest, 'number' | 'publicUrl' | 'env'>): Settings {
  const value = (name: string): string | undefined => req.env[name]?.trim() || undefined;
  const missing: string[] = [];
  const accountSid = value('TWILIO_ACCOUNT_SID');
  const authToken = value('TWILIO_AUTH_TOKEN');
  if (accountSid === undefined) missing.push('TWILIO_ACCOUNT_SID');
  else if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new ProviderConnectError(`TWILIO_ACCOUNT_SID: not an account SID (AC + 32 hex digits, as shown in the Twilio console): ${JSON.stringify(accountSid)}`, 2);
  if (authToken === undefined) missing.push('TWILIO_AUTH_TOKEN');
  if (req.number === undefined) missing.push('NUMBER (Twilio sets the voice URL per number)');
  else if (!E164.test(req.number)) throw new ProviderConnectError(`NUMBER: not an E.164 number (+ and country code, digits only, e.g. +14155550100): ${JSON.stringify(req.number)}`, 2);
  const rawPublic = req.publicUrl ?? value('SWITCHBOARD_PUBLIC_URL');
  if (rawPublic === undefined) missing.push('SWITCHBOARD_PUBLIC_URL (or --public-url)');
  const rawBase = value('TWILIO_API_BASE');
  return {
    accountSid,
    authToken,
    publicUrl: rawPublic === undefined ? undefined : baseUrl(req.publicUrl === undefined ? 'SWITCHBOARD_PUBLIC_URL' : '--public-url', rawPublic),
    number: req.number,
    apiBase: rawBase === undefined ? DEFAULT_API_BASE : baseUrl('TWILIO_API_BASE', rawBase),
    missing,
  };
}

/** The two webhooks the gateway serves (ingress/twilio/index.ts). */
export function gatewayWebhooks(publicUrl: string): { voice: string; status: string } {
  return { voice: `${publicUrl}/twilio/voice`, status: `${publicUrl}/twilio/status` };
}

/** What a run changes, as printed by --dry-run and by a run that lacks inputs. */
export function planLines(s: Pick<Settings, 'publicUrl' | 'number'>): string[] {
  const w = gatewayWebhooks(s.publicUrl ?? '$SWITCHBOARD_PUBLIC_URL');
  return [`Twilio number ${s.number ?? 'NUMBER'}: set the voice webhooks`, `  voice_url        POST ${w.voice}`, `  status_callback  POST ${w.status}`, '  (its other settings are kept as they are)'];
}

const oneLine = (s: string, max = 200): string => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** An HTTP error (the package's RestException: status, Twilio error code and message) or a network error, in one line. */
export function describeFailure(step: string, host: string, err: unknown): ProviderConnectError {
  const e = err as { status?: unknown; code?: unknown; message?: unknown; name?: unknown } | null;
  if (typeof e?.status === 'number') {
    const code = typeof e.code === 'number' ? ` (error ${e.code})` : '';
    return new ProviderConnectError(oneLine(`Twilio API: ${step} failed: HTTP ${e.status} ${typeof e.message === 'string' ? e.message : ''}${code}`), 1);
  }
  const reason = typeof e?.code === 'string' ? e.code : typeof e?.message === 'string' ? e.message : String(err);
  return new ProviderConnectError(oneLine(`Twilio API: ${step} failed: cannot reach ${host}: ${reason}`), 1);
}

function clientFor(accountSid: string, authToken: string, apiBase: string): twilio.Twilio {
  if (apiBase === DEFAULT_API_BASE) return twilio(accountSid, authToken, { timeout: 15_000 });
  const http = new twilio.RequestClient({ timeout: 15_000 });
  const send = http.request.bind(http);
  http.request = ((opts: Parameters<typeof send>[0]) => send({ ...opts, uri: opts.uri.replace(/^https:\/\/[a-z0-9.-]+\.twilio\.com/i, apiBase) })) as typeof http.request;
  return twilio(accountSid, authToken, { httpClient: http });
}

export async function connectProvider(req: ConnectRequest): Promise<void> {
  const s = readSettings(req);
  if (s.missing.length > 0) {
    const plan = planLines(s).map((l) => `  ${l}`);
    throw new ProviderConnectError([`numbers connect --provider twilio: not set: ${s.missing.join(', ')}; nothing was sent.`, 'With them set, it would:', ...plan].join('\n'), 2);
  }
  const { accountSid, authToken, publicUrl, number } = s;
  if (accountSid === undefined || authToken === undefined || publicUrl === undefined || number === undefined) throw new Error('unreachable: missing inputs listed above');
  const local = LOCAL_HOSTS.has(new URL(publicUrl).hostname);
  if (req.dryRun) {
    req.print('dry run: nothing sent. A run would:');
    for (const l of planLines(s)) req.print(`  ${l}`);
    if (local) req.print('note: Twilio cannot reach localhost; give a public https URL (e.g. a tunnel) for real calls');
    return;
  }
  const client = clientFor(accountSid, authToken, s.apiBase);
  const call = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw describeFailure(step, s.apiBase, err);
    }
  };
  const found = (await call(`looking up ${number}`, () => client.incomingPhoneNumbers.list({ phoneNumber: number, limit: 20 }))).find((n) => n.phoneNumber === number);
  if (found === undefined) throw new ProviderConnectError(`Twilio API: ${number} is not a number of this Twilio account (TWILIO_ACCOUNT_SID); nothing was changed`, 1);
  const wanted = gatewayWebhooks(publicUrl);
  const show = (method: string | null | undefined, url: string | null | undefined): string => (url ? `${method ?? '?'} ${url}` : '(none)');
  const before = { voice: show(found.voiceMethod, found.voiceUrl), status: show(found.statusCallbackMethod, found.statusCallback) };
  if (before.voice === `POST ${wanted.voice}` && before.status === `POST ${wanted.status}`) {
    req.print(`Twilio number ${number} (${found.sid}): voice webhooks already point at ${publicUrl}`);
  } else {
    const saved = await call(`updating ${number}`, () =>
      client.incomingPhoneNumbers(found.sid).update({ voiceUrl: wanted.voice, voiceMethod: 'POST', statusCallback: wanted.status, statusCallbackMethod: 'POST' }),
    );
    req.print(`Twilio number ${number} (${found.sid}): voice webhooks set`);
    req.print(`  voice_url        ${show(saved.voiceMethod, saved.voiceUrl)}   (was ${before.voice})`);
    req.print(`  status_callback  ${show(saved.statusCallbackMethod, saved.statusCallback)}   (was ${before.status})`);
  }
  req.print('note: the gateway checks X-Twilio-Signature with TWILIO_AUTH_TOKEN: give it this account\'s auth token');
  if (local) req.print('note: Twilio cannot reach localhost; give a public https URL (e.g. a tunnel) for real calls');
}
