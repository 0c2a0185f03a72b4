/**
 * Base64 for media payloads, into and out of caller-owned buffers: no string or
 * Buffer is allocated per frame (providers that carry audio in JSON — Twilio,
 * Vonage control messages — send and receive 50 of these a second per call).
 *
 *   encodeBase64Into(bytes, out, at)  bytes → ASCII base64 written into `out` at `at`
 *   decodeBase64Into(text, out)       strict: standard alphabet, padded, length % 4 = 0;
 *                                     returns the byte count, or -1 for anything else
 *
 * The decoder is strict where Node's `Buffer.from(s, 'base64')` is lenient (it
 * skips junk characters silently): input it refuses is what a wire parser must
 * drop as malformed.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ENC = new Uint8Array(64);
/** Character code → 6-bit value, 255 = not in the alphabet. */
const DEC = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) {
  ENC[i] = ALPHABET.charCodeAt(i);
  DEC[ALPHABET.charCodeAt(i)] = i;
}
const PAD = 61; // '='

/** Characters of the base64 text of `n` bytes (padded). */
export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Writes the padded base64 text of `bytes` into `out` from `at`; returns the offset after it. */
export function encodeBase64Into(bytes: Uint8Array, out: Uint8Array, at: number): number {
  const n = bytes.length;
  if (out.length - at < base64Length(n)) throw new RangeError(`base64 output buffer too small: ${out.length - at} < ${base64Length(n)}`);
  let o = at;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out[o++] = ENC[v >>> 18] as number;
    out[o++] = ENC[(v >>> 12) & 63] as number;
    out[o++] = ENC[(v >>> 6) & 63] as number;
    out[o++] = ENC[v & 63] as number;
  }
  if (i < n) {
    const b0 = bytes[i] as number;
    const b1 = i + 1 < n ? (bytes[i + 1] as number) : 0;
    const v = (b0 << 16) | (b1 << 8);
    out[o++] = ENC[v >>> 18] as number;
    out[o++] = ENC[(v >>> 12) & 63] as number;
    out[o++] = i + 1 < n ? (ENC[(v >>> 6) & 63] as number) : PAD;
    out[o++] = PAD;
  }
  return o;
}

/**
 * Decodes strict base64 `text` into `out`; returns the number of bytes written, or -1 when `text` is not
 * strict padded base64 or `out` is too small. `out` may be partly written on failure.
 */
export function decodeBase64Into(text: string, out: Uint8Array): number {
  const len = text.length;
  if (len % 4 !== 0) return -1;
  if (len === 0) return 0;
  let pad = 0;
  if (text.charCodeAt(len - 1) === PAD) pad = text.charCodeAt(len - 2) === PAD ? 2 : 1;
  const bytes = (len / 4) * 3 - pad;
  if (bytes > out.length) return -1;
  const full = pad ? len - 4 : len;
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const a = DEC[text.charCodeAt(i) & 0xff] as number;
    const b = DEC[text.charCodeAt(i + 1) & 0xff] as number;
    const c = DEC[text.charCodeAt(i + 2) & 0xff] as number;
    const d = DEC[text.charCodeAt(i + 3) & 0xff] as number;
    // Any non-alphabet character (255), or a code unit above 0xff aliasing one, fails.
    if ((a | b | c | d) > 63 || (text.charCodeAt(i) | text.charCodeAt(i + 1) | text.charCodeAt(i + 2) | text.charCodeAt(i + 3)) > 127) return -1;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (pad) {
    const i = len - 4;
    const c0 = text.charCodeAt(i);
    const c1 = text.charCodeAt(i + 1);
    const c2 = text.charCodeAt(i + 2);
    if ((c0 | c1 | c2) > 127) return -1;
    const a = DEC[c0] as number;
    const b = DEC[c1] as number;
    if ((a | b) > 63) return -1;
    if (pad === 2) {
      out[o++] = (a << 2) | (b >>> 4);
    } else {
      const c = DEC[c2] as number;
      if (c > 63) return -1;
      out[o++] = (a << 2) | (b >>> 4);
      out[o++] = ((b & 15) << 4) | (c >>> 2);
    }
  }
  return o;
}

/** `decodeBase64Into` for base64 text held as ASCII bytes `src[start, end)` (e.g. inside a received message). */
export function decodeBase64BytesInto(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const len = end - start;
  if (len < 0 || len % 4 !== 0) return -1;
  if (len === 0) return 0;
  let pad = 0;
  if (src[end - 1] === PAD) pad = src[end - 2] === PAD ? 2 : 1;
  if ((len / 4) * 3 - pad > out.length) return -1;
  const full = pad ? end - 4 : end;
  let o = 0;
  for (let i = start; i < full; i += 4) {
    const a = DEC[src[i] as number] as number;
    const b = DEC[src[i + 1] as number] as number;
    const c = DEC[src[i + 2] as number] as number;
    const d = DEC[src[i + 3] as number] as number;
    if ((a | b | c | d) > 63) return -1;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >>> 16;
    out[o++] = (v >>> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (pad) {
    const a = DEC[src[end - 4] as number] as number;
    const b = DEC[src[end - 3] as number] as number;
    if ((a | b) > 63) return -1;
    out[o++] = (a << 2) | (b >>> 4);
    if (pad === 1) {
      const c = DEC[src[end - 2] as number] as number;
      if (c > 63) return -1;
      out[o++] = ((b & 15) << 4) | (c >>> 2);
    }
  }
  return o;
}
