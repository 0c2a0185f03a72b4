/**
 * The inbound hot path: a Twilio `media` message read straight from the
 * received bytes — no text decoding, no JSON.parse, no objects — for the 50
 * messages a second each call sends. It accepts only the plain shape Twilio
 * sends, and only when it is sure the full path (JSON.parse + MediaMsg in
 * messages.ts) would accept the same message with the same meaning:
 *
 *   {"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"3",
 *    "timestamp":"60","payload":"…"},"streamSid":"MZ…"}        (keys in any order, JSON whitespace allowed)
 *
 * Every string must be printable ASCII without `"` or `\` (so its bytes are its
 * characters), each key at most once, no other keys, no other value types;
 * sequenceNumber/chunk/timestamp 1–12 digits, streamSid 1–64 characters, track
 * at most 32, payload at most MAX_MEDIA_PAYLOAD_CHARS. Anything else returns
 * null and the full path decides (and words the error), so validation at the
 * edge is unchanged; a differential test holds the two together. The payload
 * is returned as a byte range for the caller to base64-decode in place.
 */
import { MAX_MEDIA_PAYLOAD_CHARS } from './messages.ts';

export interface ScannedMedia {
  sequenceNumber: number;
  /** No `track`, or `track` = "inbound". */
  inbound: boolean;
  payloadStart: number;
  payloadEnd: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

// Key ids (bit flags, to refuse duplicates).
const EVENT = 1;
const SEQ = 2;
const SID = 4;
const MEDIA = 8;
const TRACK = 16;
const CHUNK = 32;
const TS = 64;
const PAYLOAD = 128;

/** Reusable result: the caller reads it before the next scan (single-threaded, synchronous). */
const out: ScannedMedia = { sequenceNumber: 0, inbound: true, payloadStart: 0, payloadEnd: 0 };
let pos = 0;
let strStart = 0;
let strEnd = 0;

function skipWs(b: Uint8Array): void {
  while (pos < b.length) {
    const c = b[pos] as number;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
    pos++;
  }
}

/** Reads a plain string at `pos` into [strStart, strEnd); false for anything not plain printable ASCII. */
function readString(b: Uint8Array): boolean {
  if (b[pos] !== QUOTE) return false;
  strStart = ++pos;
  while (pos < b.length) {
    const c = b[pos] as number;
    if (c === QUOTE) {
      strEnd = pos++;
      return true;
    }
    if (c < 0x20 || c > 0x7e || c === BACKSLASH) return false;
    pos++;
  }
  return false;
}

function equals(b: Uint8Array, s: string): boolean {
  if (strEnd - strStart !== s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[strStart + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** The current string as a `seq` (1–12 ASCII digits), or -1. */
function seqValue(b: Uint8Array): number {
  const n = strEnd - strStart;
  if (n < 1 || n > 12) return -1;
  let v = 0;
  for (let i = strStart; i < strEnd; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function keyId(b: Uint8Array, inMedia: boolean): number {
  if (inMedia) {
    if (equals(b, 'payload')) return PAYLOAD;
    if (equals(b, 'track')) return TRACK;
    if (equals(b, 'chunk')) return CHUNK;
    if (equals(b, 'timestamp')) return TS;
    return 0;
  }
  if (equals(b, 'event')) return EVENT;
  if (equals(b, 'sequenceNumber')) return SEQ;
  if (equals(b, 'streamSid')) return SID;
  if (equals(b, 'media')) return MEDIA;
  return 0;
}

/** Reads the `media` object's members; false when it is not plain. */
function scanMediaObject(b: Uint8Array): boolean {
  if (b[pos] !== 0x7b) return false;
  pos++;
  let seen = 0;
  skipWs(b);
  if (b[pos] === 0x7d) return false; // payload is required
  for (;;) {
    skipWs(b);
    if (!readString(b)) return false;
    const id = keyId(b, true);
    if (id === 0 || seen & id) return false;
    seen |= id;
    skipWs(b);
    if (b[pos++] !== 0x3a) return false;
    skipWs(b);
    if (!readString(b)) return false;
    const len = strEnd - strStart;
    if (id === PAYLOAD) {
      if (len > MAX_MEDIA_PAYLOAD_CHARS) return false;
      out.payloadStart = strStart;
      out.payloadEnd = strEnd;
    } else if (id === TRACK) {
      if (len > 32) return false;
      out.inbound = equals(b, 'inbound');
    } else if (seqValue(b) < 0) {
      return false;
    }
    skipWs(b);
    const c = b[pos++];
    if (c === 0x7d) return (seen & PAYLOAD) !== 0;
    if (c !== 0x2c) return false;
  }
}

/** The message in `b` if it is a plain `media` message (see above), else null. The result is reused. */
export function scanMedia(b: Uint8Array): ScannedMedia | null {
  pos = 0;
  out.inbound = true;
  let seen = 0;
  skipWs(b);
  if (b[pos++] !== 0x7b) return null;
  for (;;) {
    skipWs(b);
    if (!readString(b)) return null;
    const id = keyId(b, false);
    if (id === 0 || seen & id) return null;
    seen |= id;
    skipWs(b);
    if (b[pos++] !== 0x3a) return null;
    skipWs(b);
    if (id === MEDIA) {
      if (!scanMediaObject(b)) return null;
    } else {
      if (!readString(b)) return null;
      if (id === EVENT) {
        if (!equals(b, 'media')) return null;
      } else if (id === SEQ) {
        const v = seqValue(b);
        if (v < 0) return null;
        out.sequenceNumber = v;
      } else {
        const len = strEnd - strStart; // streamSid
        if (len < 1 || len > 64) return null;
      }
    }
    skipWs(b);
    const c = b[pos++];
    if (c === 0x7d) break;
    if (c !== 0x2c) return null;
  }
  skipWs(b);
  if (pos !== b.length) return null;
  return (seen & (EVENT | SEQ | MEDIA)) === (EVENT | SEQ | MEDIA) ? out : null;
}
