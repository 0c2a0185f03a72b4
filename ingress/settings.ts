/**
 * The adapters' own settings, for the configuration (cli/config/) to parse into the typed objects the adapters
 * take: the SIP trunk (allow list, digest users, rate), outbound routes, TLS files and the encryption policy, and the WebRTC settings. Beside
 * ingress/adapters.ts, the only module outside ingress/<provider>/ that imports from an adapter's folder — and a
 * light one: it loads the settings modules only, not the adapters (their SIP stacks, werift), so an offline command
 * (`switchboard verify`) that reads the configuration does not load them.
 */
export { CidrList } from './sip/cidr.ts';
export { ha1Of } from './sip/digest.ts';
export { EncryptionPolicies, EncryptionPolicyError } from './sip/encryption-policy.ts';
export { OutboundConfig, OutboundConfigError } from './sip/outbound-config.ts';
export type { SipTlsSettings } from './sip/tls.ts';
export { DEFAULT_RATE, defaultRealm, type TrunkConfig } from './sip/trunk-config.ts';
export type { WebrtcConfig } from './webrtc/config.ts';
export { ProviderAccounts, ProviderAccountsError } from './provider-accounts.ts';
