/**
 * The list of ingress adapters this gateway mounts, in mount order (shut-down closes them in reverse), and the
 * only module outside ingress/<provider>/ that imports an adapter. To add a provider: write
 * ingress/<provider>/ implementing `IngressAdapter` (ingress/port.ts) and add it here with its settings.
 *
 * The settings come in as one neutral object (`IngressSettings`), built by the gateway from its configuration
 * (cli/config/, parsed once): an adapter reads no process environment of its own.
 */
import type { IngressAdapter, MountedIngress } from './port.ts';
import type { ProviderAccounts } from './provider-accounts.ts';
import { PROVIDER as SIP } from './sip/app.ts';
import { sipAdapter, type SipIngress } from './sip/index.ts';
import { twilioAdapter } from './twilio/index.ts';
import { vonageAdapter } from './vonage/index.ts';
import { webrtcAdapter } from './webrtc/index.ts';
import type { WebrtcConfig } from './webrtc/config.ts';
import type { TrunkConfig } from './sip/trunk-config.ts';
import type { OutboundConfig } from './sip/outbound-config.ts';
import type { EncryptionPolicies } from './sip/encryption-policy.ts';
import type { SipTlsSettings } from './sip/tls.ts';
import type { RtpTimeoutLimits } from './sip/rtp-timeout.ts';
import { OUTBOUND_CPS as sipCps } from './sip/cps.ts';
import { OUTBOUND_CPS as twilioCps } from './twilio/cps.ts';
import { OUTBOUND_CPS as vonageCps } from './vonage/cps.ts';
import { PROVIDER as TWILIO } from './twilio/index.ts';
import { PROVIDER as VONAGE } from './vonage/index.ts';

export type { SipIngress } from './sip/index.ts';

export interface IngressSettings {
  publicUrl: string;
  /** Development profile: unsigned provider webhooks pass (with a warning) when no secret is set. */
  development: boolean;
  /** Bind address (SWITCHBOARD_HOST). */
  host: string;
  /** TWILIO_AUTH_TOKEN. */
  twilioAuthToken: string | undefined;
  /** VONAGE_SIGNATURE_SECRET. */
  vonageSignatureSecret: string | undefined;
  /** SWITCHBOARD_PROVIDER_ACCOUNTS: the credentials outbound calls are placed with (absent: none). */
  accounts?: ProviderAccounts;
  /** SWITCHBOARD_SIP_* (port, RTP range, advertise, ring and dial timeouts, session-timer Min-SE, early media, trunk admission, outbound routes, TLS, encryption policy). */
  sip: { port: number; rtpPorts: { low: number; high: number }; advertise: string | undefined; ringMs: number; minSe: number; rtpTimeout?: RtpTimeoutLimits; earlyMedia: string | undefined; refer?: string | undefined; dialTimeoutMs: number; trunk: TrunkConfig; outbound: OutboundConfig; tls?: SipTlsSettings; encryption?: EncryptionPolicies };
  /** SWITCHBOARD_WEBRTC_*. */
  webrtc: WebrtcConfig;
}

/** The built-in adapters: Twilio, WebRTC, Vonage (HTTP routes), then SIP (its own sockets, once HTTP listens). */
export function builtinAdapters(s: IngressSettings): IngressAdapter[] {
  return [
    twilioAdapter({ publicUrl: s.publicUrl, authToken: s.twilioAuthToken, development: s.development, accounts: s.accounts?.of('twilio') }),
    webrtcAdapter({ config: s.webrtc }),
    vonageAdapter({ publicUrl: s.publicUrl, signatureSecret: s.vonageSignatureSecret, development: s.development, accounts: s.accounts?.of('vonage') }),
    sipAdapter({ host: s.host, ...s.sip, accounts: s.accounts?.of(SIP) }),
  ];
}

/** The SIP ingress among mounted adapters (its port, stack and dialer, for tests and benches), if mounted. */
export function sipIngress(mounted: ReadonlyMap<string, MountedIngress>): SipIngress | undefined {
  return mounted.get(SIP) as SipIngress | undefined;
}

/** `switchboard numbers connect --provider vonage` (cli/numbers-connect.ts): points a Vonage number at this gateway. */
export const vonageNumberConnect = (): Promise<typeof import('./vonage/connect.ts')> => import('./vonage/connect.ts');

/** `switchboard numbers connect NUMBER --provider twilio` (cli/numbers-connect.ts): points a Twilio number at this gateway. */
export const twilioNumberConnect = (): Promise<typeof import('./twilio/connect.ts')> => import('./twilio/connect.ts');

/**
 * Each provider's documented outbound calls per second (cited in ingress/<provider>/cps.ts): a campaign's default
 * pace when it calls from a number of that provider (campaigns/, api/routes/campaigns.ts).
 */
export const outboundCallsPerSecond: Readonly<Record<string, number>> = { [TWILIO]: twilioCps, [VONAGE]: vonageCps, [SIP]: sipCps };
