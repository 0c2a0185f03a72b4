/**
 * Content encryption (crypto-shredding, issue 17): the values of a call's content fields are sealed with the call's
 * own content key (recording/content-keys.ts) before they reach the log, and opened for reading. Destroying the key
 * makes every copy of the ciphertext (log, tables, `_changes`, backups) unreadable for good.
 *
 *   text   'sbc1.' ‖ base64url( iv(12) ‖ AES-256-GCM(key, utf8 text) ‖ tag(16) )       (a string stays a string)
 *   json   { "$sbc1": 'sbc1.' ‖ … of canonicalJson(value) }                             (any other value)
 *   AAD    'sbc1|' ‖ call id ‖ '|' ‖ field name: a sealed value cannot be moved to another call or field.
 *
 * Nothing else is kept beside the ciphertext (no length hint beyond the ciphertext's own, no key id).
 */
import { IV_BYTES, TAG_BYTES, openAead, sealAead } from './aead.ts';
import { canonicalJson, type Json } from '../store/index.ts';

export const SEALED_PREFIX = 'sbc1.';
export const SEALED_KEY = '$sbc1';
export class ContentSealError extends Error {
  constructor(
    readonly code: 'content_key_destroyed' | 'content_tampered' | 'content_bad_format',
    message: string,
  ) {
    super(message);
    this.name = 'ContentSealError';
  }
}

const aad = (callId: string, field: string): string => `sbc1|${callId}|${field}`;

/** Seals one string under the call's key. */
export function sealText(key: Buffer, callId: string, field: string, plain: string): string {
  return SEALED_PREFIX + sealAead(key, aad(callId, field), plain).toString('base64url');
}

/** Opens a string sealed by `sealText`; throws `content_tampered` when the key, call or field do not match. */
export function openText(key: Buffer, callId: string, field: string, sealed: string): string {
  if (!isSealedText(sealed)) throw new ContentSealError('content_bad_format', 'not a sealed value');
  const body = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  if (body.length < IV_BYTES + TAG_BYTES) throw new ContentSealError('content_bad_format', 'sealed value too short');
  try {
    return openAead(key, aad(callId, field), body).toString('utf8');
  } catch {
    throw new ContentSealError('content_tampered', `sealed ${field} of call ${callId} does not open with its key`);
  }
}

/** Seals any JSON value: a string becomes a sealed string, anything else `{ $sbc1: sealed JSON }`. Null stays null. */
export function sealValue(key: Buffer, callId: string, field: string, value: unknown): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (typeof value === 'string') return sealText(key, callId, field, value);
  // canonical (sorted keys), as the plain store keeps JSON: an opened value reads exactly as it would have unsealed
  return { [SEALED_KEY]: sealText(key, callId, field, canonicalJson(value as Json)) };
}

/** Opens what `sealValue` sealed; values that are not sealed (older, plain data) come back as they are. */
export function openValue(key: Buffer, callId: string, field: string, value: unknown): unknown {
  if (isSealedText(value)) return openText(key, callId, field, value);
  if (isSealedObject(value)) return JSON.parse(openText(key, callId, field, value[SEALED_KEY])) as unknown;
  return value;
}

export function isSealedText(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(SEALED_PREFIX);
}

export function isSealedObject(value: unknown): value is { [SEALED_KEY]: string } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === SEALED_KEY && isSealedText((value as Record<string, unknown>)[SEALED_KEY]);
}

/** True when the value is sealed (either form). */
export function isSealed(value: unknown): boolean {
  return isSealedText(value) || isSealedObject(value);
}
