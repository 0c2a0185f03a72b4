/**
 * The one door for configuration (CONTRACT "Configuration"). `loadConfig(env)` is called once, at start, by the
 * composition root (cli/main.ts → cli/gateway.ts); it parses every variable of schema.ts and returns one typed
 * `Config` in sections, and the gateway hands each module its section — no module below reads the environment.
 * A bad value throws ConfigError naming the variable and what it expects (`switchboard start` and
 * `switchboard config` print it and exit 2).
 *
 *   Config ─┬─ dataDir, host, logLevel, profile
 *           ├─ http       port, publicUrl
 *           ├─ store      durability (profile → fsync), node, cluster (NATS URLs, replicas, credentials, TLS: cluster.ts)
 *           ├─ admin      token
 *           ├─ admission  maxCalls, maxLoopLagMs                                   ─► bridge/admission.ts
 *           ├─ providers  twilio.authToken, vonage.signatureSecret                 ─► ingress/twilio, ingress/vonage
 *           ├─ sip        port, rtpPorts, advertise, ringMs, minSe, rtpTimeout, earlyMedia, refer, dialTimeoutMs, trunk, outbound, tls, encryption ─► ingress/sip
 *           ├─ webrtc     ICE servers, host addresses, ports, demo, Opus, grace   ─► ingress/webrtc
 *           ├─ speech     stt, tts (auto | deepgram | local | none), deepgram, vad ─► cli/speech.ts, media/vad-factory.ts
 *           ├─ recording  ffmpegPath, retentionSweepMs                             ─► recording/, api/
 *           └─ agents     silenceMs, initTimeoutMs, turnTimeoutMs, toolsFile,      ─► agents/, bridge/
 *                         toolApproval, holdAudio
 *
 * `loadStoreConfig` parses only what the offline commands need (data dir, profile, fsync, node), so a bad speech
 * or SIP setting does not stop `switchboard verify`; `clientSettings` is the CLI's side (SWITCHBOARD_URL/_TOKEN).
 */
import path from 'node:path';
import { z } from 'zod';
import type { EncryptionPolicies, OutboundConfig, ProviderAccounts, SipTlsSettings, TrunkConfig, WebrtcConfig } from '../../ingress/settings.ts';
import { resolveDurability, type Durability } from '../../store/index.ts';
import { clusterSettings, type ClusterSettings } from './cluster.ts';
import { EnvSchema, pickEnv, type Env, type ProfileName, type VariableName } from './schema.ts';
import { ConfigError, encryptionSettings, outboundSettings, providerAccountsSettings, speechSettings, tlsSettings, trunkSettings, webrtcSettings, type SpeechSettings } from './sections.ts';

export { ConfigError } from './sections.ts';
export type { SpeechSettings } from './sections.ts';

export interface Config {
  profile: ProfileName;
  dataDir: string;
  /** Bind address of HTTP and SIP (SWITCHBOARD_HOST). */
  host: string;
  logLevel: string;
  http: { port: number; publicUrl: string };
  /** `cluster`: set by SWITCHBOARD_CLUSTER_NATS (cluster mode, the JetStream log); undefined = embedded. */
  store: { durability: Durability; node: string | undefined; cluster: ClusterSettings | undefined };
  admin: { token: string | undefined };
  /** Call ownership (schema/nodes.ts, bridge/ownership.ts): the lease a node's heartbeat gives its calls; the drain's time limit (bridge/drain.ts). */
  ownership: { leaseMs: number; drainTimeoutMs: number };
  admission: { maxCalls: number; maxLoopLagMs: number };
  /** `accounts`: SWITCHBOARD_PROVIDER_ACCOUNTS, the credentials outbound calls are placed with (ingress/provider-accounts.ts). */
  providers: { twilio: { authToken: string | undefined }; vonage: { signatureSecret: string | undefined }; accounts: ProviderAccounts };
  sip: {
    port: number;
    rtpPorts: { low: number; high: number };
    advertise: string | undefined;
    ringMs: number;
    minSe: number;
    /** SWITCHBOARD_SIP_RTP_TIMEOUT_MS, SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS (ingress/sip/rtp-timeout.ts); 0 = never. */
    rtpTimeout: { activeMs: number; holdMs: number };
    earlyMedia: string | undefined;
    refer: string | undefined;
    dialTimeoutMs: number;
    trunk: TrunkConfig;
    outbound: OutboundConfig;
    /** SWITCHBOARD_SIP_TLS_*; undefined = no TLS listener. */
    tls: SipTlsSettings | undefined;
    /** SWITCHBOARD_SIP_ENCRYPTION. */
    encryption: EncryptionPolicies;
  };
  webrtc: WebrtcConfig;
  /** `vad`: SWITCHBOARD_VAD, the caller's voice-activity detector (media/vad-factory.ts). */
  speech: SpeechSettings & { vad: 'energy' | 'silero' };
  recording: { ffmpegPath: string | undefined; retentionSweepMs: number };
  /** OTEL_EXPORTER_OTLP_ENDPOINT: where traces go; unset = tracing off (telemetry/tracing.ts). */
  telemetry: { otlpEndpoint: string | undefined };
  agents: {
    silenceMs: number | undefined;
    initTimeoutMs: number | undefined;
    turnTimeoutMs: number | undefined;
    toolsFile: string | undefined;
    /** SWITCHBOARD_HOLD_AUDIO, loaded and checked by bridge/hold-audio.ts at start. */
    holdAudio: string | undefined;
    toolApproval: { timeoutMs: number; filler: string };
  };
}

/** One line per bad variable: `NAME: what is expected` (a message that already names its variable stays as it is). */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const name = String(i.path[0] ?? '');
      return i.message.startsWith(name) ? i.message : `${name}: ${i.message}`;
    })
    .join('\n  ');
}

function parse<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv, names?: readonly VariableName[]): z.infer<S> {
  const parsed = schema.safeParse(pickEnv(env, names));
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n  ${describeIssues(parsed.error)}`);
  return parsed.data;
}

const STORE_VARIABLES = ['SWITCHBOARD_DATA_DIR', 'SWITCHBOARD_PROFILE', 'SWITCHBOARD_FSYNC_POLICY', 'SWITCHBOARD_NODE', 'SWITCHBOARD_NODE_ID'] as const;

function storeSection(e: Pick<Env, (typeof STORE_VARIABLES)[number]>): { dataDir: string; durability: Durability; node: string | undefined } {
  if (e.SWITCHBOARD_NODE && e.SWITCHBOARD_NODE_ID && e.SWITCHBOARD_NODE !== e.SWITCHBOARD_NODE_ID) {
    throw new ConfigError(`SWITCHBOARD_NODE_ID: ${e.SWITCHBOARD_NODE_ID} differs from SWITCHBOARD_NODE ${e.SWITCHBOARD_NODE}: set one of them`);
  }
  return {
    dataDir: path.resolve(e.SWITCHBOARD_DATA_DIR),
    durability: resolveDurability({ profile: e.SWITCHBOARD_PROFILE, fsync: e.SWITCHBOARD_FSYNC_POLICY }),
    node: e.SWITCHBOARD_NODE ?? e.SWITCHBOARD_NODE_ID,
  };
}

/** The data dir and durability alone, for the offline commands (verify, replay, calls, call, numbers add, users token). */
export function loadStoreConfig(env: NodeJS.ProcessEnv = process.env): { dataDir: string; durability: Durability; node: string | undefined } {
  return storeSection(parse(EnvSchema.pick({ SWITCHBOARD_DATA_DIR: true, SWITCHBOARD_PROFILE: true, SWITCHBOARD_FSYNC_POLICY: true, SWITCHBOARD_NODE: true, SWITCHBOARD_NODE_ID: true }), env, STORE_VARIABLES));
}

function rtpRange(text: string): { low: number; high: number } {
  const [low, high] = text.split('-').map(Number) as [number, number];
  if (low > high || high > 65535 || low % 2 !== 0) throw new ConfigError(`SWITCHBOARD_RTP_PORTS: ${text} must be LOW-HIGH with an even LOW ≤ HIGH ≤ 65535`);
  return { low, high };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parse(EnvSchema, env);
  const store = storeSection(e);
  const host = e.SWITCHBOARD_HOST;
  const advertise = e.SWITCHBOARD_SIP_ADVERTISE?.trim() || undefined;
  return {
    profile: e.SWITCHBOARD_PROFILE,
    dataDir: store.dataDir,
    host,
    logLevel: e.SWITCHBOARD_LOG_LEVEL,
    http: { port: e.SWITCHBOARD_HTTP_PORT, publicUrl: e.SWITCHBOARD_PUBLIC_URL.replace(/\/+$/, '') },
    store: {
      durability: store.durability,
      node: store.node,
      cluster: clusterSettings(e),
    },
    admin: { token: e.SWITCHBOARD_ADMIN_TOKEN },
    ownership: { leaseMs: e.SWITCHBOARD_CLUSTER_LEASE_MS, drainTimeoutMs: e.SWITCHBOARD_DRAIN_TIMEOUT_MS },
    admission: { maxCalls: e.SWITCHBOARD_MAX_CALLS, maxLoopLagMs: e.SWITCHBOARD_MAX_LOOP_LAG_MS },
    providers: { twilio: { authToken: e.TWILIO_AUTH_TOKEN }, vonage: { signatureSecret: e.VONAGE_SIGNATURE_SECRET }, accounts: providerAccountsSettings(e.SWITCHBOARD_PROVIDER_ACCOUNTS) },
    sip: {
      port: e.SWITCHBOARD_SIP_PORT,
      rtpPorts: rtpRange(e.SWITCHBOARD_RTP_PORTS),
      advertise,
      ringMs: e.SWITCHBOARD_SIP_RING_MS,
      minSe: e.SWITCHBOARD_SIP_MIN_SE,
      rtpTimeout: { activeMs: e.SWITCHBOARD_SIP_RTP_TIMEOUT_MS, holdMs: e.SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS },
      earlyMedia: e.SWITCHBOARD_SIP_EARLY_MEDIA,
      refer: e.SWITCHBOARD_SIP_REFER,
      dialTimeoutMs: e.SWITCHBOARD_SIP_DIAL_TIMEOUT_MS,
      trunk: trunkSettings(e, { host, advertise }),
      outbound: outboundSettings(e.SWITCHBOARD_SIP_OUTBOUND),
      tls: tlsSettings(e),
      encryption: encryptionSettings(e.SWITCHBOARD_SIP_ENCRYPTION),
    },
    webrtc: webrtcSettings(e),
    speech: { ...speechSettings(e), vad: e.SWITCHBOARD_VAD },
    recording: { ffmpegPath: e.SWITCHBOARD_FFMPEG, retentionSweepMs: e.SWITCHBOARD_RETENTION_SWEEP_MS },
    telemetry: { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT },
    agents: {
      silenceMs: e.SWITCHBOARD_AGENT_SILENCE_MS,
      initTimeoutMs: e.SWITCHBOARD_AGENT_INIT_TIMEOUT_MS,
      turnTimeoutMs: e.SWITCHBOARD_AGENT_TURN_TIMEOUT_MS,
      toolsFile: e.SWITCHBOARD_TOOLS_FILE,
      holdAudio: e.SWITCHBOARD_HOLD_AUDIO,
      toolApproval: { timeoutMs: e.SWITCHBOARD_TOOL_APPROVAL_TIMEOUT_MS, filler: e.SWITCHBOARD_TOOL_APPROVAL_FILLER },
    },
  };
}

export { clientSettings } from './client.ts';
