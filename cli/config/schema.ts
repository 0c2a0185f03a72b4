/**
 * Every environment variable the gateway and the CLI read, in one zod schema (CONTRACT "Configuration"):
 * its name, its type, its default (or the profile's default) and, for `switchboard config`, its section, whether it
 * is a secret and what it means. Nothing else in the code reads these variables: `loadConfig` (index.ts) parses this
 * schema once at start and builds the typed `Config`, and cli/gateway.ts hands each module its section.
 *
 *   process.env ──► only the names below, '' = unset ──► EnvSchema (types, formats, defaults)
 *                                                           │  a bad value: ConfigError "NAME: what is expected"
 *                                                           ▼
 *                                         sections.ts (files, cross-variable rules, profile defaults) ──► Config
 *
 * A variable whose value has a richer form (a CIDR list, a JSON file, ICE servers) is a string here and is parsed
 * by its section builder in sections.ts, which names the variable in its errors as well.
 */
import { z } from 'zod';
import { redactNatsUrls } from './redact.ts';

export type Section = 'gateway' | 'admission' | 'providers' | 'sip' | 'webrtc' | 'speech' | 'recording' | 'agents' | 'client';
export const PROFILES = ['development', 'balanced', 'production', 'maximum_safety'] as const;
export type ProfileName = (typeof PROFILES)[number];

interface Spec<S extends z.ZodType> {
  schema: S;
  section: Section;
  /** The default as a user would write it; null = unset by default (the text in `unset` says what that means). */
  default: string | null;
  /** What an unset value means, when it is not simply a value (e.g. "generated, printed once"). */
  unset?: string;
  /** Per-profile defaults (SWITCHBOARD_PROFILE), instead of `default`. */
  byProfile?: Record<ProfileName, string>;
  /** Masked by `switchboard config`: tokens, secrets, passwords, keys. */
  secret?: boolean;
  /** Shown by `switchboard config` with its secret parts masked (a URL's password). */
  redact?: (value: string) => string;
  meaning: string;
}

const spec = <S extends z.ZodType>(s: Spec<S>): Spec<S> => s;

const port = z.coerce.number().int().min(0).max(65535);
const ms = z.coerce.number({ error: 'expected a whole number of milliseconds' }).int('expected a whole number of milliseconds').min(0, 'expected a whole number of milliseconds ≥ 0');
const raw = z.string();

/** `nats://h:p,nats://h2:p2` → URLs; each `nats://`, `tls://` (or `ws(s)://`) with a host, or a bare `host:port`. */
const natsUrls = z.string().transform((v, ctx) => {
  const urls = v.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  const bad = urls.filter((u) => {
    const withScheme = /^[a-z]+:\/\//i.test(u) ? u : `nats://${u}`;
    try {
      const url = new URL(withScheme);
      return !['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '';
    } catch {
      return true;
    }
  });
  if (urls.length === 0 || bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `SWITCHBOARD_CLUSTER_NATS: expected comma-separated NATS URLs like nats://10.0.0.1:4222; got ${JSON.stringify(bad[0] ?? v)}` });
    return z.NEVER;
  }
  return urls;
});

/** A whole number ≥ 0, 0 = off; the message is the one admission limits have always given. */
const limit = (name: string) =>
  z.string().transform((v, ctx) => {
    if (!/^\d{1,7}$/.test(v.trim())) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a whole number ≥ 0 (0 = no limit); got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return Number(v.trim());
  });

export const VARIABLES = {
  // ── gateway ──────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_HTTP_PORT: spec({ schema: port.default(8080), section: 'gateway', default: '8080', meaning: 'HTTP + WebSocket: webhooks, media sockets, API, console, softphone' }),
  SWITCHBOARD_HOST: spec({ schema: z.string().min(1).default('0.0.0.0'), section: 'gateway', default: '0.0.0.0', meaning: 'bind address (HTTP and SIP)' }),
  SWITCHBOARD_PUBLIC_URL: spec({ schema: z.string().url().default('http://localhost:8080'), section: 'gateway', default: 'http://localhost:8080', meaning: 'base URL given to providers (TwiML, NCCO)' }),
  SWITCHBOARD_DATA_DIR: spec({ schema: z.string().min(1).default('./data'), section: 'gateway', default: './data', meaning: 'database, recordings, keys' }),
  SWITCHBOARD_PROFILE: spec({ schema: z.enum(PROFILES).default('development'), section: 'gateway', default: 'development', meaning: 'sets the defaults marked "profile"' }),
  SWITCHBOARD_FSYNC_POLICY: spec({
    schema: z.enum(['always', 'periodic', 'never']).optional(),
    section: 'gateway',
    default: null,
    byProfile: { development: 'periodic', balanced: 'periodic', production: 'always', maximum_safety: 'always' },
    meaning: 'always | periodic | never (tests only)',
  }),
  SWITCHBOARD_NODE: spec({ schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1–64 letters, digits, _ . -').optional(), section: 'gateway', default: null, unset: 'stored, else node- + random hex', meaning: "this node's name on events and checkpoints" }),
  SWITCHBOARD_NODE_ID: spec({ schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1–64 letters, digits, _ . -').optional(), section: 'gateway', default: null, unset: 'SWITCHBOARD_NODE', meaning: 'the same as SWITCHBOARD_NODE (the name CONTRACT gives it); both set must agree' }),
  SWITCHBOARD_CLUSTER_NATS: spec({ schema: natsUrls.optional(), section: 'gateway', default: null, unset: 'embedded', redact: redactNatsUrls, meaning: 'cluster mode: comma-separated NATS URLs (nats://[user:pass@]host:port); the log is the JetStream stream SWITCHBOARD_LOG' }),
  SWITCHBOARD_CLUSTER_MAX_AGE_MS: spec({ schema: ms.default(0), section: 'gateway', default: '0', meaning: 'cluster mode: messages older than this are trimmed from the stream a node creates (0 = kept)' }),
  SWITCHBOARD_CLUSTER_MAX_BYTES: spec({ schema: z.coerce.number({ error: 'expected a whole number of bytes' }).int('expected a whole number of bytes').min(0, 'expected a whole number of bytes ≥ 0').default(0), section: 'gateway', default: '0', meaning: 'cluster mode: the stream a node creates keeps at most this many bytes, oldest trimmed (0 = no limit)' }),
  SWITCHBOARD_CLUSTER_SNAPSHOT_EVERY: spec({ schema: z.coerce.number({ error: 'expected a whole number' }).int('expected a whole number').min(0, 'expected a whole number ≥ 0').default(0), section: 'gateway', default: '0', meaning: 'cluster mode: publish a snapshot of the database every N applied stream messages (0 = never)' }),
  SWITCHBOARD_CLUSTER_NATS_CREDS: spec({ schema: raw.optional(), section: 'gateway', default: null, unset: 'no creds (or user:pass@ / token@ in the URLs)', secret: true, meaning: 'NATS creds file (user JWT + nkey seed) for cluster mode' }),
  SWITCHBOARD_CLUSTER_NATS_TLS_CA: spec({ schema: raw.optional(), section: 'gateway', default: null, unset: "the system's CAs (when the server asks for TLS)", meaning: 'PEM CA bundle file the NATS servers\' certificates must chain to' }),
  SWITCHBOARD_CLUSTER_NATS_TLS_CERT: spec({ schema: raw.optional(), section: 'gateway', default: null, unset: 'no client certificate', meaning: 'PEM client certificate file for NATS mutual TLS (with _TLS_KEY)' }),
  SWITCHBOARD_CLUSTER_NATS_TLS_KEY: spec({ schema: raw.optional(), section: 'gateway', default: null, unset: 'no client certificate', secret: true, meaning: 'PEM private key file of SWITCHBOARD_CLUSTER_NATS_TLS_CERT' }),
  SWITCHBOARD_CLUSTER_REPLICAS: spec({ schema: z.coerce.number().int().min(1, 'expected 1–5').max(5, 'expected 1–5').default(3), section: 'gateway', default: '3', meaning: 'replicas of the stream a node creates (3 for a 3-server NATS cluster, 1 for one server)' }),
  SWITCHBOARD_ADMIN_TOKEN: spec({ schema: z.string().min(16).optional(), section: 'gateway', default: null, unset: 'generated, printed once', secret: true, meaning: "bootstrap admin's bearer token" }),
  SWITCHBOARD_LOG_LEVEL: spec({ schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), section: 'gateway', default: 'info', meaning: 'log level' }),
  SWITCHBOARD_CLUSTER_LEASE_MS: spec({
    schema: z.coerce.number({ error: 'expected a whole number of milliseconds' }).int('expected a whole number of milliseconds').min(900, 'expected 900–600000 ms').max(600_000, 'expected 900–600000 ms').default(15_000),
    section: 'gateway',
    default: '15000',
    meaning: "cluster mode: how long a node's calls stay its own after its last heartbeat (one heartbeat every lease/3); then another node may take them",
  }),
  SWITCHBOARD_DRAIN_TIMEOUT_MS: spec({
    schema: z.coerce.number({ error: 'expected a whole number of milliseconds' }).int('expected a whole number of milliseconds').min(0, 'expected 0–86400000 ms').max(86_400_000, 'expected 0–86400000 ms').default(600_000),
    section: 'gateway',
    default: '600000',
    meaning: 'draining (SIGTERM, `switchboard drain`): how long live calls may go on; then cluster mode hands them over, embedded mode ends them',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: spec({
    schema: z.url({ error: 'expected an http(s) URL, e.g. http://localhost:4318' }).optional(),
    section: 'gateway',
    default: null,
    unset: 'no tracing (the OpenTelemetry SDK is not loaded)',
    meaning: 'OpenTelemetry: export one trace per call over OTLP/HTTP to <URL>/v1/traces',
  }),
  // ── admission ────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_MAX_CALLS: spec({ schema: limit('SWITCHBOARD_MAX_CALLS').default(0), section: 'admission', default: '0', meaning: 'live calls on this node (0 = no limit); past it new calls get a busy answer' }),
  SWITCHBOARD_MAX_LOOP_LAG_MS: spec({ schema: limit('SWITCHBOARD_MAX_LOOP_LAG_MS').default(0), section: 'admission', default: '0', meaning: "refuse new calls while the event loop's delay p99 exceeds it (0 = off)" }),
  // ── providers ────────────────────────────────────────────────────────────────────────────────────────────────────
  TWILIO_AUTH_TOKEN: spec({ schema: raw.optional(), section: 'providers', default: null, unset: 'webhooks unchecked (development only)', secret: true, meaning: 'checks X-Twilio-Signature' }),
  VONAGE_SIGNATURE_SECRET: spec({ schema: raw.optional(), section: 'providers', default: null, unset: 'webhooks unchecked (development only)', secret: true, meaning: "checks Vonage's signed webhooks and media handshake" }),
  SWITCHBOARD_PROVIDER_ACCOUNTS: spec({ schema: raw.optional(), section: 'providers', default: null, unset: 'no outbound calls through Twilio or Vonage', meaning: 'JSON file of provider credentials per tenant/number for outbound calls (never logged)' }),
  // ── SIP ──────────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_SIP_PORT: spec({ schema: port.default(5060), section: 'sip', default: '5060', meaning: 'SIP over UDP and TCP' }),
  SWITCHBOARD_SIP_TLS_PORT: spec({ schema: port.default(5061), section: 'sip', default: '5061', meaning: 'SIP over TLS (TLS 1.2+), when SWITCHBOARD_SIP_TLS_CERT is set' }),
  SWITCHBOARD_SIP_TLS_CERT: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no TLS listener', meaning: 'PEM certificate (chain) file for SIP over TLS; reloaded when it changes' }),
  SWITCHBOARD_SIP_TLS_KEY: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no TLS listener', secret: true, meaning: 'PEM private key file of SWITCHBOARD_SIP_TLS_CERT; reloaded when it changes' }),
  SWITCHBOARD_SIP_TLS_CA: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no client certificates asked for', meaning: 'PEM CA bundle file: set = mutual TLS, clients must present a certificate issued under it' }),
  SWITCHBOARD_SIP_ENCRYPTION: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'allow (cleartext accepted)', meaning: 'TLS/SRTP policy: LEVEL, or KEY=LEVEL[/LEVEL],… per CIDR or number (require | prefer | allow)' }),
  SWITCHBOARD_RTP_PORTS: spec({ schema: z.string().regex(/^\d{1,5}-\d{1,5}$/, 'expected LOW-HIGH, e.g. 20000-20999').default('20000-20999'), section: 'sip', default: '20000-20999', meaning: 'RTP/RTCP port range, LOW even' }),
  SWITCHBOARD_SIP_ADVERTISE: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'the first non-loopback IPv4 interface', meaning: 'address put in SDP and Contact when bound to 0.0.0.0' }),
  SWITCHBOARD_SIP_ALLOW: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'any source', meaning: 'comma-separated CIDRs allowed to send requests' }),
  SWITCHBOARD_SIP_USERS: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no digest auth', meaning: 'JSON file of digest credentials' }),
  SWITCHBOARD_SIP_REALM: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'advertise address, else host, else hostname', meaning: 'digest realm' }),
  SWITCHBOARD_SIP_RATE: spec({ schema: raw.optional(), section: 'sip', default: '50,100', meaning: 'RATE[,BURST] new requests/s per source, or off' }),
  SWITCHBOARD_SIP_RING_MS: spec({ schema: ms.default(0), section: 'sip', default: '0', meaning: 'ring time between 180 Ringing and the answer' }),
  SWITCHBOARD_SIP_MIN_SE: spec({ schema: z.coerce.number({ error: 'expected a whole number of seconds' }).int('expected a whole number of seconds').min(1, 'expected a whole number of seconds ≥ 1').default(90), section: 'sip', default: '90', meaning: 'session timers (RFC 4028): the smallest Session-Expires accepted (smaller → 422); below 90 only for tests' }),
  SWITCHBOARD_SIP_RTP_TIMEOUT_MS: spec({ schema: ms.default(60_000), section: 'sip', default: '60000', meaning: 'an answered call whose far end sends no RTP for this long ends sip:rtp-timeout (BYE, Reason 408); 0 = never' }),
  SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS: spec({ schema: ms.default(0), section: 'sip', default: '0', meaning: 'the same while the far end holds the call (sendonly, inactive, 0.0.0.0); 0 = never' }),
  SWITCHBOARD_SIP_EARLY_MEDIA: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no early media (180 Ringing)', meaning: 'early media: FILE, or KEY=FILE|none,… per number, CIDR or * (most specific wins); WAV 16-bit PCM mono 8 kHz: 183 + SDP and the prompt before the 200' }),
  SWITCHBOARD_SIP_REFER: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'no blind transfer on SIP calls; REFER refused 403', meaning: 'REFER (RFC 3515): SETTINGS, or KEY=SETTINGS,… per number, CIDR or * (most specific wins); SETTINGS transfer (blind transfers as REFER) | none' }),
  SWITCHBOARD_SIP_OUTBOUND: spec({ schema: raw.optional(), section: 'sip', default: null, unset: 'unauthenticated, straight to the target', meaning: 'JSON file of credentials per target host for outbound calls' }),
  SWITCHBOARD_SIP_DIAL_TIMEOUT_MS: spec({ schema: ms.default(60_000), section: 'sip', default: '60000', meaning: 'outbound: ringing this long → CANCEL' }),
  // ── WebRTC ───────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_WEBRTC_DEMO: spec({ schema: raw.optional(), section: 'webrtc', default: null, byProfile: { development: 'on', balanced: 'off', production: 'off', maximum_safety: 'off' }, meaning: 'the built-in demo number' }),
  SWITCHBOARD_WEBRTC_ICE_SERVERS: spec({ schema: raw.optional(), section: 'webrtc', default: null, unset: 'none (ICE-lite)', secret: true, meaning: 'STUN/TURN URLs or JSON (may hold TURN credentials)' }),
  SWITCHBOARD_WEBRTC_HOST_ADDRESSES: spec({ schema: raw.optional(), section: 'webrtc', default: '127.0.0.1', meaning: "host candidates besides the gateway's own interfaces" }),
  SWITCHBOARD_WEBRTC_PORTS: spec({ schema: raw.optional(), section: 'webrtc', default: null, unset: 'ephemeral', meaning: 'UDP port range for ICE, MIN-MAX' }),
  SWITCHBOARD_WEBRTC_RESUME_GRACE_MS: spec({ schema: ms.min(1, 'expected a whole number of milliseconds > 0').default(60_000), section: 'webrtc', default: '60000', meaning: 'a call with no browser attached is ended after this long' }),
  SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: spec({ schema: raw.optional(), section: 'webrtc', default: '5', meaning: "Opus encoder complexity 0–10 for the agent's audio" }),
  // ── speech ───────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_STT: spec({ schema: raw.default('auto'), section: 'speech', default: 'auto', meaning: 'auto | deepgram | pocketsphinx | none' }),
  SWITCHBOARD_TTS: spec({ schema: raw.default('auto'), section: 'speech', default: 'auto', meaning: 'auto | deepgram | espeak | none' }),
  SWITCHBOARD_VAD: spec({ schema: z.enum(['energy', 'silero']).default('energy'), section: 'speech', default: 'energy', meaning: 'voice activity detector: energy | silero (neural, onnxruntime)' }),
  DEEPGRAM_API_KEY: spec({ schema: raw.optional(), section: 'speech', default: null, secret: true, meaning: 'Deepgram speech' }),
  DEEPGRAM_URL: spec({ schema: raw.optional(), section: 'speech', default: null, unset: "Deepgram's", meaning: "Deepgram's base URL" }),
  SWITCHBOARD_POCKETSPHINX: spec({ schema: raw.optional(), section: 'speech', default: 'pocketsphinx_continuous', meaning: 'the pocketsphinx binary' }),
  // ── recording ────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_FFMPEG: spec({ schema: raw.optional(), section: 'recording', default: 'ffmpeg', meaning: 'for Ogg/MP3 recordings' }),
  SWITCHBOARD_RETENTION_SWEEP_MS: spec({ schema: z.coerce.number().int().min(100).max(86_400_000).default(60_000), section: 'recording', default: '60000', meaning: 'how often the retention sweeper runs' }),
  // ── agents ───────────────────────────────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_AGENT_SILENCE_MS: spec({ schema: ms.optional(), section: 'agents', default: '8000', meaning: "caller silence before an agent's onSilence" }),
  SWITCHBOARD_AGENT_TURN_TIMEOUT_MS: spec({ schema: ms.optional(), section: 'agents', default: '10000', meaning: 'agent CPU time per turn' }),
  SWITCHBOARD_AGENT_INIT_TIMEOUT_MS: spec({ schema: ms.optional(), section: 'agents', default: '5000', meaning: "how long a deployed version's init() may take" }),
  SWITCHBOARD_TOOL_APPROVAL_TIMEOUT_MS: spec({ schema: ms.min(1000, 'expected at least 1000 ms').max(3_600_000, 'expected at most 3600000 ms (1 h)').default(120_000), section: 'agents', default: '120000', meaning: 'how long an approval tool waits for a decision before the agent is told it timed out' }),
  SWITCHBOARD_TOOL_APPROVAL_FILLER: spec({ schema: z.string().min(1).max(500).default('One moment please.'), section: 'agents', default: 'One moment please.', meaning: 'what the caller hears while an approval tool waits' }),
  SWITCHBOARD_HOLD_AUDIO: spec({ schema: raw.optional(), section: 'agents', default: null, unset: 'a tone (440 Hz, 0.4 s each second)', meaning: 'what a caller on hold during a transfer hears: FILE, or NUMBER=FILE|tone,… and *=FILE|tone; WAV 16-bit PCM mono 8 or 16 kHz, checked at start' }),
  SWITCHBOARD_TOOLS_FILE: spec({ schema: raw.optional(), section: 'agents', default: null, unset: 'no configured tools', meaning: 'JSON file of HTTP tools per agent' }),
  // ── the CLI against a running gateway ────────────────────────────────────────────────────────────────────────────
  SWITCHBOARD_URL: spec({ schema: raw.optional(), section: 'client', default: null, unset: 'offline (the data dir)', meaning: 'a running gateway for the CLI (or --url)' }),
  SWITCHBOARD_TOKEN: spec({ schema: raw.optional(), section: 'client', default: null, secret: true, meaning: 'the CLI\'s bearer token (or --token)' }),
  VONAGE_API_KEY: spec({ schema: raw.optional(), section: 'client', default: null, secret: true, meaning: 'switchboard numbers connect --provider vonage' }),
  VONAGE_API_SECRET: spec({ schema: raw.optional(), section: 'client', default: null, secret: true, meaning: 'switchboard numbers connect --provider vonage' }),
  VONAGE_APPLICATION_ID: spec({ schema: raw.optional(), section: 'client', default: null, meaning: 'switchboard numbers connect --provider vonage' }),
  VONAGE_API_HOST: spec({ schema: raw.optional(), section: 'client', default: null, unset: "Vonage's", meaning: 'numbers connect: the Vonage API host' }),
  TWILIO_ACCOUNT_SID: spec({ schema: raw.optional(), section: 'client', default: null, meaning: 'switchboard numbers connect --provider twilio (with TWILIO_AUTH_TOKEN)' }),
  TWILIO_API_BASE: spec({ schema: raw.optional(), section: 'client', default: null, unset: "Twilio's", meaning: 'numbers connect: the Twilio REST API base' }),
  VONAGE_REST_HOST: spec({ schema: raw.optional(), section: 'client', default: null, unset: "Vonage's", meaning: 'numbers connect: the Vonage REST host' }),
};

export type VariableName = keyof typeof VARIABLES;
export const VARIABLE_NAMES = Object.keys(VARIABLES) as VariableName[];

type Shape = { [K in VariableName]: (typeof VARIABLES)[K]['schema'] };
export const EnvSchema = z.object(Object.fromEntries(VARIABLE_NAMES.map((n) => [n, VARIABLES[n].schema])) as Shape);
export type Env = z.infer<typeof EnvSchema>;

/** The variables this schema knows, from `env`; an empty value counts as unset. */
export function pickEnv(env: NodeJS.ProcessEnv, names: readonly VariableName[] = VARIABLE_NAMES): Partial<Record<VariableName, string>> {
  const out: Partial<Record<VariableName, string>> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== '') out[n] = v;
  }
  return out;
}
