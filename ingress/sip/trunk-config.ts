/**
 * Trunk admission settings, as cli/config/ builds them from the environment at
 * start (an invalid value stops the start with a message naming the variable):
 *
 *   SWITCHBOARD_SIP_ALLOW  comma-separated CIDRs, IPv4 and IPv6 (`203.0.113.0/24,2001:db8::/32`); unset = any source
 *   SWITCHBOARD_SIP_USERS  path to a JSON file `{ "user": "password" }` or `{ "user": { "ha1": "<32 hex>" } }`
 *                          (HA1 = MD5(user:realm:password)); unset = no digest auth
 *   SWITCHBOARD_SIP_REALM  digest realm (default: SWITCHBOARD_SIP_ADVERTISE, else the bound host, else the hostname)
 *   SWITCHBOARD_SIP_RATE   `RATE[,BURST]` requests/s per source address (default `50,100`); `off` disables
 *   SWITCHBOARD_SIP_SRTP   `require` | `prefer` | `allow` (default): SDES-SRTP media (sdes.ts, sdp.ts SrtpPolicy)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CidrList } from './cidr.ts';
import type { SrtpPolicy } from './sdp.ts';

export interface TrunkConfig {
  allow: CidrList | null;
  /** username → HA1 for `realm`; null = no digest auth. */
  users: Map<string, string> | null;
  realm: string;
  rate: { rate: number; burst: number } | null;
  /** Media encryption (SWITCHBOARD_SIP_SRTP); absent = `allow`. */
  srtp?: SrtpPolicy;
}

export class TrunkConfigError extends Error {
  override readonly name = 'TrunkConfigError';
}

export const DEFAULT_RATE = { rate: 50, burst: 100 };

/** Any source, no digest auth, the default rate: the settings when none are given (tests, embedding). */
export function defaultTrunkConfig(d: { host: string; advertise?: string }): TrunkConfig {
  return { allow: null, users: null, realm: defaultRealm(d), rate: DEFAULT_RATE };
}

/** The digest realm when SWITCHBOARD_SIP_REALM is unset: the advertised address, else the bound host, else the hostname. */
export function defaultRealm(d: { host: string; advertise?: string }): string {
  if (d.advertise) return d.advertise;
  if (d.host !== '0.0.0.0' && d.host !== '::') return d.host;
  return os.hostname() || 'switchboard';
}

/**
 * The nonce key (32 bytes in DATA_DIR/sip-nonce.key, 0600), created on first use, so that nonces survive a
 * restart; without a data directory a per-process key.
 */
export function loadNonceSecret(dataDir: string | undefined): Buffer {
  if (!dataDir) return crypto.randomBytes(32);
  const file = path.join(dataDir, 'sip-nonce.key');
  try {
    fs.writeFileSync(file, crypto.randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = fs.readFileSync(file);
  if (key.length < 32) throw new TrunkConfigError(`${file}: the SIP nonce key is truncated; delete it to make a new one`);
  return key;
}
