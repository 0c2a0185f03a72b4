/**
 * G.711 µ-law and A-law companding, table driven.
 *
 * Decode tables (256 entries) and encode tables (65 536 entries, indexed by the
 * 16-bit sample's unsigned bit pattern) are built once at module load from the
 * classic segment algorithm (Sun / CCITT reference code, as used by SoX).
 *
 * Bit-exactness: the output equals SoX 14.4 (`sox -D ... -t ul|al`, i.e. with
 * dither off) for every one of the 65 536 input values, and decoding equals
 * SoX for all 256 codes. SoX reduces 16-bit input to 14 bits (µ-law) or 13
 * bits (A-law) by rounding, (x + 2) >> 2 and (x + 4) >> 3 with the top values
 * clipped, before the reference companding. Implementations that truncate
 * instead (e.g. Sun g711.c `linear2ulaw`, which does `pcm_val >> 2`) can pick
 * the neighbouring code for inputs within 2 (µ-law) / 4 (A-law) of a decision
 * boundary; the difference is never more than one quantisation step.
 */

const BIAS = 0x84; // µ-law bias, in 16-bit units (33 in 14-bit units)
const CLIP_14 = 8159; // µ-law magnitude clip, 14-bit units
const SEG_UEND = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff] as const;
const SEG_AEND = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff] as const;

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) {
    if (value <= (ends[i] as number)) return i;
  }
  return ends.length;
}

/** µ-law code for a 14-bit two's complement sample (reference algorithm). */
function linear14ToMuLaw(pcm14: number): number {
  let mask: number;
  let v = pcm14;
  if (v < 0) {
    v = -v;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (v > CLIP_14) v = CLIP_14;
  v += BIAS >> 2;
  const seg = segment(v, SEG_UEND);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((v >> (seg + 1)) & 0x0f)) ^ mask;
}

/** A-law code for a 13-bit two's complement sample (reference algorithm). */
function linear13ToALaw(pcm13: number): number {
  let mask: number;
  let v = pcm13;
  if (v >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    v = -v - 1;
  }
  const seg = segment(v, SEG_AEND);
  if (seg >= 8) return 0x7f ^ mask;
  const quant = seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return ((seg << 4) | quant) ^ mask;
}

function muLawToLinear16(code: number): number {
  const u = ~code & 0xff;
  let t = ((u & 0x0f) << 3) + BIAS;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? BIAS - t : t - BIAS;
}

function aLawToLinear16(code: number): number {
  const a = code ^ 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & 0x80 ? t : -t;
}

const MU_DECODE = new Int16Array(256);
const A_DECODE = new Int16Array(256);
const MU_ENCODE = new Uint8Array(65536);
const A_ENCODE = new Uint8Array(65536);

for (let code = 0; code < 256; code++) {
  MU_DECODE[code] = muLawToLinear16(code);
  A_DECODE[code] = aLawToLinear16(code);
}
for (let x = -32768; x <= 32767; x++) {
  const pcm14 = x >= 32766 ? 8191 : (x + 2) >> 2;
  const pcm13 = x >= 32764 ? 4095 : (x + 4) >> 3;
  MU_ENCODE[x & 0xffff] = linear14ToMuLaw(pcm14);
  A_ENCODE[x & 0xffff] = linear13ToALaw(pcm13);
}

function checkOut<T extends Int16Array | Uint8Array>(out: T, needed: number): T {
  if (out.length < needed) {
    throw new RangeError(`output buffer too small: ${out.length} < ${needed}`);
  }
  return out;
}

/** Decodes µ-law bytes to PCM. Writes into `out` (if given, at least as long as `bytes`). */
export function muLawDecode(bytes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = out ? checkOut(out, bytes.length) : new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) dst[i] = MU_DECODE[bytes[i] as number] as number;
  return dst;
}

/** Encodes PCM to µ-law bytes. Writes into `out` (if given, at least as long as `pcm`). */
export function muLawEncode(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = out ? checkOut(out, pcm.length) : new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) dst[i] = MU_ENCODE[(pcm[i] as number) & 0xffff] as number;
  return dst;
}

/** Decodes A-law bytes to PCM. Writes into `out` (if given, at least as long as `bytes`). */
export function aLawDecode(bytes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = out ? checkOut(out, bytes.length) : new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) dst[i] = A_DECODE[bytes[i] as number] as number;
  return dst;
}

/** Encodes PCM to A-law bytes. Writes into `out` (if given, at least as long as `pcm`). */
export function aLawEncode(pcm: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = out ? checkOut(out, pcm.length) : new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) dst[i] = A_ENCODE[(pcm[i] as number) & 0xffff] as number;
  return dst;
}

/** µ-law code of digital silence (0xFF). */
export const MU_LAW_SILENCE = 0xff;
/** A-law code of digital silence (0xD5). */
export const A_LAW_SILENCE = 0xd5;
