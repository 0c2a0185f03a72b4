/**
 * The sections of `Config` whose variables have a richer form than schema.ts checks: SIP trunk admission (a CIDR
 * list, a credentials file, the realm that file's HA1s are computed in, a rate), outbound SIP credentials (a JSON
 * file), WebRTC (ICE servers as URLs or JSON, host addresses, a port range, the profile's demo default) and speech
 * (the STT/TTS choice against DEEPGRAM_API_KEY). Each builder reads the parsed `Env`, never `process.env`, and a bad
 * value throws ConfigError naming its variable — the messages the modules gave when they read the variables
 * themselves.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { CidrList, DEFAULT_RATE, defaultRealm, EncryptionPolicies, EncryptionPolicyError, ha1Of, OutboundConfig, OutboundConfigError, ProviderAccounts, ProviderAccountsError, type SipTlsSettings, type TrunkConfig, type WebrtcConfig } from '../../ingress/settings.ts';
import type { Env } from './schema.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const fail = (name: string, msg: string): never => {
  throw new ConfigError(`${name}: ${msg}`);
};

// ── SIP ──────────────────────────────────────────────────────────────────────────────────────────────────────────────

const UsersFile = z.record(
  z.string().min(1).regex(/^[^\s":]+$/, 'usernames have no spaces, quotes or colons'),
  z.union([z.string().min(1), z.strictObject({ ha1: z.string().regex(/^[0-9a-fA-F]{32}$/, 'ha1 is 32 hex digits') })]),
);

/** SWITCHBOARD_SIP_ALLOW, _USERS (read here, hashed in the realm), _REALM and _RATE. */
export function trunkSettings(e: Pick<Env, 'SWITCHBOARD_SIP_ALLOW' | 'SWITCHBOARD_SIP_USERS' | 'SWITCHBOARD_SIP_REALM' | 'SWITCHBOARD_SIP_RATE'>, defaults: { host: string; advertise?: string }): TrunkConfig {
  let allow: CidrList | null = null;
  const allowText = e.SWITCHBOARD_SIP_ALLOW?.trim();
  if (allowText) {
    try {
      allow = CidrList.parse(allowText);
    } catch (err) {
      fail('SWITCHBOARD_SIP_ALLOW', (err as Error).message);
    }
  }

  const realm = e.SWITCHBOARD_SIP_REALM?.trim() || defaultRealm(defaults);
  if (!/^[\x21\x23-\x5b\x5d-\x7e ]{1,128}$/.test(realm)) fail('SWITCHBOARD_SIP_REALM', `"${realm}" must be 1–128 printable characters without quotes or backslashes`);

  let users: Map<string, string> | null = null;
  const usersPath = e.SWITCHBOARD_SIP_USERS?.trim();
  if (usersPath) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(usersPath, 'utf8'));
    } catch (err) {
      fail('SWITCHBOARD_SIP_USERS', `cannot read ${usersPath} as JSON: ${(err as Error).message}`);
    }
    const parsed = UsersFile.safeParse(json);
    if (!parsed.success) fail('SWITCHBOARD_SIP_USERS', `${usersPath}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
    const entries = Object.entries(parsed.data ?? {});
    if (entries.length === 0) fail('SWITCHBOARD_SIP_USERS', `${usersPath} lists no users`);
    users = new Map(entries.map(([u, v]) => [u, typeof v === 'string' ? ha1Of(u, realm, v) : v.ha1.toLowerCase()]));
  }

  let rate: TrunkConfig['rate'] = DEFAULT_RATE;
  const rateText = e.SWITCHBOARD_SIP_RATE?.trim();
  if (rateText) {
    if (/^off$/i.test(rateText)) rate = null;
    else {
      const m = /^(\d+(?:\.\d+)?)(?:\s*,\s*(\d+))?$/.exec(rateText);
      const r = m ? Number(m[1]) : NaN;
      const burst = m?.[2] !== undefined ? Number(m[2]) : Math.max(1, Math.ceil(2 * r));
      if (!m || !(r > 0) || !(burst >= 1)) fail('SWITCHBOARD_SIP_RATE', `"${rateText}" must be RATE[,BURST] (requests/s per source, e.g. 50,100) or off`);
      rate = { rate: r, burst };
    }
  }
  return { allow, users, realm, rate };
}

/** SWITCHBOARD_SIP_OUTBOUND (a path); unset = no outbound credentials. */
export function outboundSettings(file: string | undefined): OutboundConfig {
  const path = file?.trim();
  if (!path) return OutboundConfig.empty();
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`SWITCHBOARD_SIP_OUTBOUND: cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  try {
    return OutboundConfig.parse(json, `SWITCHBOARD_SIP_OUTBOUND (${path})`);
  } catch (err) {
    if (err instanceof OutboundConfigError) throw new ConfigError(err.message);
    throw err;
  }
}

/** SWITCHBOARD_PROVIDER_ACCOUNTS (a path); unset = no provider accounts (outbound calls through SIP only). */
export function providerAccountsSettings(file: string | undefined): ProviderAccounts {
  const path = file?.trim();
  if (!path) return ProviderAccounts.empty();
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`SWITCHBOARD_PROVIDER_ACCOUNTS: cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  try {
    return ProviderAccounts.parse(json, `SWITCHBOARD_PROVIDER_ACCOUNTS (${path})`);
  } catch (err) {
    if (err instanceof ProviderAccountsError) throw new ConfigError(err.message);
    throw err;
  }
}

/** SWITCHBOARD_SIP_TLS_PORT, _CERT, _KEY, _CA: undefined (no TLS listener) unless both CERT and KEY are set. */
export function tlsSettings(e: Pick<Env, 'SWITCHBOARD_SIP_TLS_PORT' | 'SWITCHBOARD_SIP_TLS_CERT' | 'SWITCHBOARD_SIP_TLS_KEY' | 'SWITCHBOARD_SIP_TLS_CA'>): SipTlsSettings | undefined {
  const certFile = e.SWITCHBOARD_SIP_TLS_CERT?.trim();
  const keyFile = e.SWITCHBOARD_SIP_TLS_KEY?.trim();
  const caFile = e.SWITCHBOARD_SIP_TLS_CA?.trim() || undefined;
  if (!certFile && !keyFile) {
    if (caFile) fail('SWITCHBOARD_SIP_TLS_CA', 'is set but SWITCHBOARD_SIP_TLS_CERT and SWITCHBOARD_SIP_TLS_KEY are not (mutual TLS needs the TLS listener)');
    return undefined;
  }
  if (!certFile) return fail('SWITCHBOARD_SIP_TLS_CERT', 'must be set with SWITCHBOARD_SIP_TLS_KEY (the certificate of that key)');
  if (!keyFile) return fail('SWITCHBOARD_SIP_TLS_KEY', 'must be set with SWITCHBOARD_SIP_TLS_CERT (the private key of that certificate)');
  return { port: e.SWITCHBOARD_SIP_TLS_PORT, certFile, keyFile, caFile };
}

/** SWITCHBOARD_SIP_ENCRYPTION; unset = allow everything. */
export function encryptionSettings(text: string | undefined): EncryptionPolicies {
  try {
    return EncryptionPolicies.parse(text);
  } catch (err) {
    if (err instanceof EncryptionPolicyError) throw new ConfigError(err.message);
    throw err;
  }
}

// ── WebRTC ───────────────────────────────────────────────────────────────────────────────────────────────────────────

const IceUrl = z.string().regex(/^(stun|stuns|turn|turns):[^\s,]{1,250}$/, 'ICE server URLs start with stun:, stuns:, turn: or turns:');
const IceServers = z.array(z.object({ urls: z.union([IceUrl, z.array(IceUrl).min(1).max(8)]), username: z.string().max(256).optional(), credential: z.string().max(256).optional() })).max(8);

type WebrtcEnv = Pick<Env, 'SWITCHBOARD_PROFILE' | 'SWITCHBOARD_WEBRTC_ICE_SERVERS' | 'SWITCHBOARD_WEBRTC_HOST_ADDRESSES' | 'SWITCHBOARD_WEBRTC_PORTS' | 'SWITCHBOARD_WEBRTC_DEMO' | 'SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY' | 'SWITCHBOARD_WEBRTC_RESUME_GRACE_MS'>;

export function webrtcSettings(e: WebrtcEnv): WebrtcConfig {
  const raw = (e.SWITCHBOARD_WEBRTC_ICE_SERVERS ?? '').trim();
  let servers: unknown = [];
  if (raw.startsWith('[')) {
    try {
      servers = JSON.parse(raw);
    } catch (err) {
      fail('SWITCHBOARD_WEBRTC_ICE_SERVERS', `not valid JSON (${(err as Error).message})`);
    }
  } else if (raw !== '') {
    servers = raw.split(',').map((u) => ({ urls: u.trim() }));
  }
  const parsed = IceServers.safeParse(servers);
  if (!parsed.success) fail('SWITCHBOARD_WEBRTC_ICE_SERVERS', parsed.error.issues.map((i) => i.message).join('; '));
  const hosts = (e.SWITCHBOARD_WEBRTC_HOST_ADDRESSES ?? '127.0.0.1').split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (const h of hosts) if (!/^[0-9a-fA-F.:]{2,45}$/.test(h)) fail('SWITCHBOARD_WEBRTC_HOST_ADDRESSES', `${h} is not an IP address`);
  let portRange: [number, number] | undefined;
  const ports = e.SWITCHBOARD_WEBRTC_PORTS?.trim();
  if (ports) {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(ports);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (!m || lo < 1024 || hi > 65535 || lo >= hi) fail('SWITCHBOARD_WEBRTC_PORTS', 'expected MIN-MAX with 1024 <= MIN < MAX <= 65535');
    portRange = [lo, hi];
  }
  // The demo number is for trying the product: on by default in development only (a production gateway
  // publishes no anonymous number unless an operator asks for it).
  const demoDefault = e.SWITCHBOARD_PROFILE === 'development' ? 'on' : 'off';
  const demo = !/^(off|0|false|no)$/i.test(e.SWITCHBOARD_WEBRTC_DEMO ?? demoDefault);
  const cx = (e.SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY ?? '5').trim();
  if (!/^(10|[0-9])$/.test(cx)) fail('SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY', `"${cx}" must be an integer from 0 to 10`);
  return { iceServers: parsed.data ?? [], hostAddresses: hosts, portRange, demo, opusComplexity: Number(cx), resumeGraceMs: e.SWITCHBOARD_WEBRTC_RESUME_GRACE_MS };
}

// ── speech ───────────────────────────────────────────────────────────────────────────────────────────────────────────

export interface SpeechSettings {
  /** `local`: pocketsphinx when installed (explicitly asked for, or `auto` without a Deepgram key). */
  stt: 'deepgram' | 'local' | 'none';
  /** `none`: no speech synthesis — prompts and agent speech are skipped (silent). */
  tts: 'deepgram' | 'espeak' | 'none';
  /** DEEPGRAM_API_KEY and DEEPGRAM_URL, when a key is set. */
  deepgram: { apiKey: string; url?: string } | null;
  pocketsphinx?: string;
}

/** SWITCHBOARD_STT / SWITCHBOARD_TTS against DEEPGRAM_API_KEY. */
export function speechSettings(e: Pick<Env, 'SWITCHBOARD_STT' | 'SWITCHBOARD_TTS' | 'DEEPGRAM_API_KEY' | 'DEEPGRAM_URL' | 'SWITCHBOARD_POCKETSPHINX'>): SpeechSettings {
  const sttWanted = e.SWITCHBOARD_STT.toLowerCase();
  const ttsWanted = e.SWITCHBOARD_TTS.toLowerCase();
  const key = e.DEEPGRAM_API_KEY;
  const url = e.DEEPGRAM_URL;
  let stt: SpeechSettings['stt'];
  if (sttWanted === 'deepgram' || (sttWanted === 'auto' && key)) {
    if (!key) throw new ConfigError('SWITCHBOARD_STT=deepgram needs DEEPGRAM_API_KEY');
    stt = 'deepgram';
  } else if (sttWanted === 'pocketsphinx' || sttWanted === 'auto') stt = 'local';
  else if (sttWanted === 'none') stt = 'none';
  else throw new ConfigError(`SWITCHBOARD_STT must be auto, deepgram, pocketsphinx or none; got ${sttWanted}`);
  let tts: SpeechSettings['tts'];
  if (ttsWanted === 'deepgram' || (ttsWanted === 'auto' && key)) {
    if (!key) throw new ConfigError('SWITCHBOARD_TTS=deepgram needs DEEPGRAM_API_KEY');
    tts = 'deepgram';
  } else if (ttsWanted === 'espeak' || ttsWanted === 'auto') tts = 'espeak';
  else if (ttsWanted === 'none') tts = 'none';
  else throw new ConfigError(`SWITCHBOARD_TTS must be auto, deepgram, espeak or none; got ${ttsWanted}`);
  const pocketsphinx = e.SWITCHBOARD_POCKETSPHINX;
  return { stt, tts, deepgram: key ? { apiKey: key, ...(url ? { url } : {}) } : null, ...(pocketsphinx ? { pocketsphinx } : {}) };
}
