/**
 * Sealing of provider credentials set through the API (schema/provider-accounts.ts): AES-256-GCM under the master key
 * (recording/master-key.ts, the key recordings' data keys are wrapped with), so the log and the table hold only
 * ciphertext. The AAD binds the tenant and the provider: a sealed blob copied to another tenant's or provider's row
 * does not open.
 *
 *   sealed = base64( recording/aead.ts sealAead(master, "SBACCT1|tenant|provider", JSON(credentials)) )
 */
import { openAead, sealAead } from '../recording/aead.ts';
import type { MasterKey } from '../recording/master-key.ts';

const aad = (tenant: string, provider: string): string => `SBACCT1|${tenant}|${provider}`;

export function sealCredentials(master: MasterKey, tenant: string, provider: string, credentials: Readonly<Record<string, string>>): { sealed: string; keyId: string } {
  return { sealed: sealAead(master.key, aad(tenant, provider), JSON.stringify(credentials)).toString('base64'), keyId: master.keyId };
}

/** The credentials, or null when the blob does not open under this key (another key, or altered). */
export function openCredentials(master: MasterKey, tenant: string, provider: string, sealed: string): Record<string, string> | null {
  try {
    const json = openAead(master.key, aad(tenant, provider), Buffer.from(sealed, 'base64')).toString('utf8');
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null) return null;
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return null;
  }
}
