/**
 * Sealing of provider credentials set through the API (schema/provider-accounts.ts): AES-256-GCM under the master key
 * (recording/master-key.ts, the key recordings' data keys are wrapped with), so the log and the table hold only
 * ciphertext. The AAD binds the tenant and the provider: a sealed blob copied to another tenant's or provider's row
 * does not open.
 *
 *   sealed = base64( iv (12) ‖ tag (16) ‖ AES-256-GCM(master, iv, JSON(credentials), AAD "SBACCT1|tenant|provider") )
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { MasterKey } from '../recording/master-key.ts';

const aad = (tenant: string, provider: string): Buffer => Buffer.from(`SBACCT1|${tenant}|${provider}`, 'utf8');

export function sealCredentials(master: MasterKey, tenant: string, provider: string, credentials: Readonly<Record<string, string>>): { sealed: string; keyId: string } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master.key, iv);
  c.setAAD(aad(tenant, provider));
  const body = Buffer.concat([c.update(JSON.stringify(credentials), 'utf8'), c.final()]);
  return { sealed: Buffer.concat([iv, c.getAuthTag(), body]).toString('base64'), keyId: master.keyId };
}

/** The credentials, or null when the blob does not open under this key (another key, or altered). */
export function openCredentials(master: MasterKey, tenant: string, provider: string, sealed: string): Record<string, string> | null {
  try {
    const raw = Buffer.from(sealed, 'base64');
    const d = createDecipheriv('aes-256-gcm', master.key, raw.subarray(0, 12));
    d.setAAD(aad(tenant, provider));
    d.setAuthTag(raw.subarray(12, 28));
    const json = Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null) return null;
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return null;
  }
}
