/**
 * AES-256-GCM with a bound context, the one sealing primitive behind every secret the gateway keeps: call content
 * (recording/content-crypto.ts), wrapped content keys (recording/content-keys.ts) and provider credentials
 * (ingress/account-seal.ts).
 *
 *   sealed = iv (12) ‖ ciphertext ‖ tag (16)          AAD: the caller's context string (what the value belongs to)
 *
 * IVs are random, drawn from a pool refilled 512 IVs at a time: as random as one `randomBytes(12)` per value, without
 * a call into the CSPRNG per sealed value (measurable on the store's write path).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const IV_BYTES = 12;
export const TAG_BYTES = 16;

let ivPool = Buffer.alloc(0);
let ivAt = 0;
function nextIv(): Buffer {
  if (ivAt + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_BYTES * 512);
    ivAt = 0;
  }
  const iv = ivPool.subarray(ivAt, ivAt + IV_BYTES);
  ivAt += IV_BYTES;
  return iv;
}

/** `plain` sealed under `key`, bound to `aad`. */
export function sealAead(key: Buffer, aad: string, plain: Buffer | string): Buffer {
  const iv = nextIv();
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const body = typeof plain === 'string' ? c.update(plain, 'utf8') : c.update(plain);
  return Buffer.concat([iv, body, c.final(), c.getAuthTag()]);
}

/** The plaintext of `sealed`; throws when it is too short, or the key or the AAD do not match, or it was altered. */
export function openAead(key: Buffer, aad: string, sealed: Buffer): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value too short');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([d.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), d.final()]);
}
