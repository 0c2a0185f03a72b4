/**
 * Twilio request authentication: `X-Twilio-Signature` checked with the twilio
 * package against the URL Twilio called (our public URL + path + query). Fails
 * closed: outside the development profile a missing auth token refuses every
 * request; in development without a token, requests pass with a warning each.
 * The SDK is imported on first use (sdk.ts): the caller awaits `loadTwilio()` before checking a signature.
 */
import { twilioSdk } from './sdk.ts';

export type SignatureVerdict = { ok: true; bypassed: boolean } | { ok: false; reason: string };

export interface SignaturePolicy {
  authToken: string | undefined;
  /** Development profile: allow unsigned traffic when no auth token is configured. */
  allowUnsigned: boolean;
}

export function verifyTwilioSignature(
  policy: SignaturePolicy,
  signature: string | string[] | undefined,
  urls: string[],
  params: Record<string, string>,
): SignatureVerdict {
  if (!policy.authToken) {
    return policy.allowUnsigned ? { ok: true, bypassed: true } : { ok: false, reason: 'TWILIO_AUTH_TOKEN is not configured' };
  }
  if (typeof signature !== 'string' || signature.length === 0) return { ok: false, reason: 'missing X-Twilio-Signature' };
  for (const url of urls) {
    if (twilioSdk().validateRequest(policy.authToken, signature, url, params)) return { ok: true, bypassed: false };
  }
  return { ok: false, reason: 'X-Twilio-Signature does not match' };
}
