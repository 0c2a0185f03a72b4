/**
 * The short authentication tag of AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2.2; RFC 3711 §4.2, §7.5, §8.2), on top of
 * werift's AES_CM_128_HMAC_SHA1_80. This module owns only the tag length; no cipher is written here.
 *
 * The two suites differ in one thing: the SRTP authentication tag, HMAC-SHA1(k_a, header ‖ ciphertext ‖ ROC),
 * is truncated to its leftmost 80 bits for _80 and to its leftmost 32 bits for _32. The key derivation (k_e, k_s,
 * k_a from the master key and salt, RFC 3711 §4.3) and AES-128 counter mode are the same, so werift's _80 context
 * does them:
 *
 *   protect    werift _80: header ‖ ciphertext ‖ tag[0..10)  ──drop 6 bytes──►  header ‖ ciphertext ‖ tag[0..4)
 *   unprotect  header ‖ ciphertext ‖ t4 ─► HMAC-SHA1 (node:crypto) under werift's derived k_a over
 *              header ‖ ciphertext ‖ ROC; t4 compared in constant time with its first 4 bytes
 *              ─ no match ─► dropped (null)
 *              ─ match ────► header ‖ ciphertext ‖ tag[0..10) to werift, which decrypts (AES-CM)
 *
 * SRTCP keeps the 80-bit tag for this suite (RFC 3711 §7.5 and libsrtp: a short tag is for RTP media only), so we
 * send SRTCP exactly as for _80. libre (baresip's SRTP) truncates its SRTCP tag to 32 bits too, so on receipt an
 * SRTCP packet whose 80-bit tag does not authenticate is also tried as one with a 32-bit tag (`srtcpAsTag80`); it
 * authenticates against the same key, and RTCP only feeds our reception statistics.
 */
import crypto from 'node:crypto';

/** werift's AES-CM tag length and the short one. */
export const TAG80 = 10;
export const TAG32 = 4;
/** E flag + SRTCP index (RFC 3711 §3.4), before the tag. */
const SRTCP_INDEX = 4;

/** A werift _80 SRTP packet ─► the same packet with the 32-bit tag. */
export function truncateTag(packet80: Buffer): Buffer {
  return packet80.subarray(0, packet80.length - (TAG80 - TAG32));
}

/**
 * An SRTP packet with a 32-bit tag ─► the same packet with the 80-bit tag werift checks, or null when the 32-bit
 * tag does not authenticate. `authKey` is werift's derived SRTP k_a (`remoteContext.srtpSessionAuthTag`), `roc` the
 * rollover counter the packet is tried with.
 */
export function srtpAsTag80(packet: Buffer, authKey: Buffer, roc: number): Buffer | null {
  if (packet.length < 12 + TAG32) return null;
  const body = packet.subarray(0, packet.length - TAG32);
  const rocRaw = Buffer.alloc(4);
  rocRaw.writeUInt32BE(roc >>> 0);
  const full = crypto.createHmac('sha1', authKey).update(body).update(rocRaw).digest();
  if (!crypto.timingSafeEqual(full.subarray(0, TAG32), packet.subarray(body.length))) return null;
  return Buffer.concat([body, full.subarray(0, TAG80)]);
}

/**
 * An SRTCP packet with a 32-bit tag (libre's) ─► the same packet with the 80-bit tag werift checks, or null when it
 * does not authenticate. `authKey` is werift's derived SRTCP k_a (`remoteContext.srtcpSessionAuthTag`).
 */
export function srtcpAsTag80(packet: Buffer, authKey: Buffer): Buffer | null {
  if (packet.length < 8 + SRTCP_INDEX + TAG32) return null;
  const body = packet.subarray(0, packet.length - TAG32);
  const full = crypto.createHmac('sha1', authKey).update(body).digest();
  if (!crypto.timingSafeEqual(full.subarray(0, TAG32), packet.subarray(body.length))) return null;
  return Buffer.concat([body, full.subarray(0, TAG80)]);
}
