/**
 * Trunk admission settings from the environment, validated at start (an
 * invalid value stops the start with a message naming the variable):
 *
 *   SWITCHBOARD_SIP_ALLOW  comma-separated CIDRs, IPv4 and IPv6 (`203.0.113.0/24,2001:db8::/32`); unset = any source
 *   SWITCHBOARD_SIP_USERS  path to a JSON file `{ "user": "password" }` or `{ "user": { "ha1": "<32 hex>" } }`
 *                          (HA1 = MD5(user:realm:password)); unset = no digest auth
 *   SWITCHBOARD_SIP_REALM  digest realm (default: SWITCHBOARD_SIP_ADVERTISE, else the bound host, else the hostname)
 *   SWITCHBOARD_SIP_RATE   `RATE[,BURST]` requests/s per source address (default `50,100`); `off` disables
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CidrList } from './cidr.ts';
import { ha1Of } from './digest.ts';

export interface TrunkConfig {
  allow: CidrList | null;
  /** username → HA1 for `realm`; null = no digest auth. */
  users: Map<string, string> | null;
  realm: string;
  rate: { rate: number; burst: number } | null;
}

export class TrunkConfigError extends Error {
  override readonly name = 'TrunkConfigError';
}

const UsersFile = z.record(
  z.string().min(1).regex(/^[^\s":]+$/, 'usernames have no spaces, quotes or colons'),
  z.union([z.string().min(1), z.strictObject({ ha1: z.string().regex(/^[0-9a-fA-F]{32}$/, 'ha1 is 32 hex digits') })]),
);

export const DEFAULT_RATE = { rate: 50, burst: 100 };

export function trunkConfigFromEnv(env: NodeJS.ProcessEnv, defaults: { host: string; advertise?: string }): TrunkConfig {
  const fail = (name: string, msg: string): never => {
    throw new TrunkConfigError(`${name}: ${msg}`);
  };
  let allow: CidrList | null = null;
  const allowText = env.SWITCHBOARD_SIP_ALLOW?.trim();
  if (allowText) {
    try {
      allow = CidrList.parse(allowText);
    } catch (err) {
      fail('SWITCHBOARD_SIP_ALLOW', (err as Error).message);
    }
  }

  const realm = env.SWITCHBOARD_SIP_REALM?.trim() || defaultRealm(defaults);
  if (!/^[\x21\x23-\x5b\x5d-\x7e ]{1,128}$/.test(realm)) fail('SWITCHBOARD_SIP_REALM', `"${realm}" must be 1–128 printable characters without quotes or backslashes`);

  let users: Map<string, string> | null = null;
  const usersPath = env.SWITCHBOARD_SIP_USERS?.trim();
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
  const rateText = env.SWITCHBOARD_SIP_RATE?.trim();
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

function defaultRealm(d: { host: string; advertise?: string }): string {
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
