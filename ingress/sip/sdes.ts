/**
 * SDES key exchange for SRTP (RFC 4568): reading the `a=crypto` lines of an offer, choosing one suite, and writing
 * ours (a fresh key from crypto.randomBytes per call and direction). The ciphers themselves are werift's (srtp.ts).
 *
 *   a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]
 *
 * Suites we speak, in our order of preference (the first acceptable line of the best suite wins; within a suite,
 * the offerer's order):
 *   1. AEAD_AES_128_GCM (RFC 7714): an AEAD — encryption and a 128-bit authentication tag in one pass, no SHA-1.
 *   2. AES_CM_128_HMAC_SHA1_80 (RFC 3711's default): what every SIP phone and trunk speaks.
 *   3. AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2.2): _80 with the SRTP tag cut to 32 bits (srtp-tag32.ts); answered only
 *      when no better suite is offered, and listed last in our own offers.
 * An offer with no usable line is refused with 488 and a Warning naming why: a line with an MKI (one key per
 * direction, no key switching), a key lifetime below 2^31 packets (we never re-key), several keys in one line,
 * session parameters (KDR, UNENCRYPTED_SRTP, …), an unknown suite, or a key of the wrong length or bad base64.
 */
import crypto from 'node:crypto';
import { readSdp } from './sdp-read.ts';

export type SdesSuite = 'AEAD_AES_128_GCM' | 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';

/**
 * werift protection profiles (ProtectionProfileAeadAes128Gcm = 7, ProtectionProfileAes128CmHmacSha1_80 = 1; _32 runs
 * on the _80 profile, its tag cut by srtp-tag32.ts) and the SRTP authentication tag length in bytes.
 */
export const SUITES: Readonly<Record<SdesSuite, { profile: 1 | 7; keyLength: number; saltLength: number; srtpTag: number }>> = {
  AEAD_AES_128_GCM: { profile: 7, keyLength: 16, saltLength: 12, srtpTag: 16 },
  AES_CM_128_HMAC_SHA1_80: { profile: 1, keyLength: 16, saltLength: 14, srtpTag: 10 },
  AES_CM_128_HMAC_SHA1_32: { profile: 1, keyLength: 16, saltLength: 14, srtpTag: 4 },
};
/** Our preference, best first. */
export const SUITE_PREFERENCE: readonly SdesSuite[] = ['AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

/** Master key and salt of one direction. */
export interface SrtpKey {
  key: Buffer;
  salt: Buffer;
}

/** One SRTP context both ways: the suite, our key (what we send with) and the far end's (what it sends with). */
export interface SrtpKeys {
  suite: SdesSuite;
  local: SrtpKey;
  remote: SrtpKey;
}

export type CryptoLine = { tag: number; suite: SdesSuite; key: SrtpKey };
export type CryptoRead = { ok: true; line: CryptoLine } | { ok: false; reason: string };

const MIN_LIFETIME = 2 ** 31;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Reads one `a=crypto` value (what follows `a=crypto:`). Never throws. */
export function readCryptoLine(value: string): CryptoRead {
  const f = value.split(/[ \t]+/).filter((w) => w !== '');
  const fail = (reason: string): CryptoRead => ({ ok: false, reason });
  if (f.length < 3) return fail('a=crypto needs a tag, a suite and key parameters');
  const [tagText, suiteText, keyParams] = f as [string, string, string];
  if (!/^\d{1,9}$/.test(tagText)) return fail(`a=crypto tag "${tagText.slice(0, 12)}" is not a number`);
  if (!(suiteText in SUITES)) return fail(`suite ${suiteText.slice(0, 40)} is not supported`);
  const suite = suiteText as SdesSuite;
  if (f.length > 3) return fail(`${suite}: session parameters are not supported`);
  if (keyParams.includes(';')) return fail(`${suite}: several keys in one line are not supported`);
  if (!keyParams.startsWith('inline:')) return fail(`${suite}: key method must be inline`);
  const [keySalt = '', ...rest] = keyParams.slice('inline:'.length).split('|');
  for (const p of rest) {
    if (p.includes(':')) return fail(`${suite}: an MKI is not supported`);
    const lifetime = p.startsWith('2^') ? 2 ** Number(p.slice(2)) : Number(p);
    if (!/^(2\^\d{1,2}|\d{1,15})$/.test(p) || !(lifetime >= MIN_LIFETIME)) return fail(`${suite}: key lifetime ${p.slice(0, 16)} is shorter than 2^31 (we never re-key)`);
  }
  const s = SUITES[suite];
  if (!B64.test(keySalt)) return fail(`${suite}: key is not base64`);
  const bytes = Buffer.from(keySalt, 'base64');
  if (bytes.length !== s.keyLength + s.saltLength || bytes.toString('base64').replace(/=+$/, '') !== keySalt.replace(/=+$/, '')) {
    return fail(`${suite}: key must be ${s.keyLength + s.saltLength} bytes of base64`);
  }
  return { ok: true, line: { tag: Number(tagText), suite, key: { key: bytes.subarray(0, s.keyLength), salt: bytes.subarray(s.keyLength) } } };
}

export type CryptoChoice = { ok: true; tag: number; keys: SrtpKeys } | { ok: false; reason: string };

/** Chooses one offered line (our suite preference, then the offerer's order) and makes our fresh key for it. */
export function chooseCrypto(values: readonly string[]): CryptoChoice {
  if (values.length === 0) return { ok: false, reason: 'no a=crypto line' };
  const lines: CryptoLine[] = [];
  const reasons: string[] = [];
  for (const v of values) {
    const r = readCryptoLine(v);
    if (r.ok) lines.push(r.line);
    else reasons.push(r.reason);
  }
  for (const suite of SUITE_PREFERENCE) {
    const line = lines.find((l) => l.suite === suite);
    if (line) return { ok: true, tag: line.tag, keys: { suite, local: freshKey(suite), remote: line.key } };
  }
  return { ok: false, reason: `no usable a=crypto line (${reasons.join('; ')})` };
}

/** A new master key and salt for `suite`. */
export function freshKey(suite: SdesSuite): SrtpKey {
  const s = SUITES[suite];
  const b = crypto.randomBytes(s.keyLength + s.saltLength);
  return { key: b.subarray(0, s.keyLength), salt: b.subarray(s.keyLength) };
}

/** Our `a=crypto` value for `key`. */
export function cryptoAttribute(tag: number, suite: SdesSuite, key: SrtpKey): string {
  return `${tag} ${suite} inline:${Buffer.concat([key.key, key.salt]).toString('base64')}`;
}

/** Our offer's `a=crypto` lines (UAC): one fresh key per suite, best first; the chosen tag's key is kept. */
export function offerCrypto(): { lines: string[]; keys: Map<number, { suite: SdesSuite; key: SrtpKey }> } {
  const keys = new Map<number, { suite: SdesSuite; key: SrtpKey }>();
  const lines = SUITE_PREFERENCE.map((suite, i) => {
    const key = freshKey(suite);
    keys.set(i + 1, { suite, key });
    return cryptoAttribute(i + 1, suite, key);
  });
  return { lines, keys };
}

/**
 * The SRTP outcome of an answer to our offer with `offered` lines (UAC): the agreed keys, none (a plain answer to a
 * best-effort offer), or a failure (a plain answer when SRTP is required, an a=crypto line we did not offer).
 */
export function answerSrtp(answer: string, offered: { keys: Map<number, { suite: SdesSuite; key: SrtpKey }>; required: boolean }): { ok: true; agreed?: { tag: number; keys: SrtpKeys } } | { ok: false; reason: string } {
  const read = readSdp(answer);
  const m = read.ok ? read.sdp.media.find((x) => x.type === 'audio' && x.port !== 0) : undefined;
  if (!m || m.crypto.length === 0) return offered.required ? { ok: false, reason: 'SRTP is required: the answer has no a=crypto' } : { ok: true };
  const c = answeredCrypto(m.crypto, offered.keys);
  return c.ok ? { ok: true, agreed: { tag: c.tag, keys: c.keys } } : { ok: false, reason: c.reason };
}

/** Reads the answer to our offer: exactly one line, with a tag and suite we offered. */
export function answeredCrypto(values: readonly string[], offered: Map<number, { suite: SdesSuite; key: SrtpKey }>): CryptoChoice {
  if (values.length !== 1) return { ok: false, reason: `the answer must carry one a=crypto line, it has ${values.length}` };
  const r = readCryptoLine(values[0] as string);
  if (!r.ok) return { ok: false, reason: r.reason };
  const ours = offered.get(r.line.tag);
  if (!ours || ours.suite !== r.line.suite) return { ok: false, reason: `the answer's a=crypto tag ${r.line.tag} ${r.line.suite} was not offered` };
  return { ok: true, tag: r.line.tag, keys: { suite: ours.suite, local: ours.key, remote: r.line.key } };
}
