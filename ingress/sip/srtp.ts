/**
 * SRTP/SRTCP for one SIP call (RFC 3711, RFC 7714 for AES-GCM) with keys from SDES (sdes.ts). The ciphers and
 * authentication are werift's (`SrtpSession` / `SrtcpSession` from the werift package's public exports; the 32-bit
 * tag of AES_CM_128_HMAC_SHA1_32 is cut and checked by srtp-tag32.ts around werift's _80); this module adds what
 * werift leaves to its caller for SDES:
 *
 *  - the packet index (RFC 3711 §3.3.1 / Appendix A): the far end's rollover counter (ROC) is estimated per SSRC from
 *    the highest sequence number seen, and werift is handed that ROC for each packet;
 *  - replay protection (§3.3.2): a 64-packet sliding window per SSRC on the 48-bit index (and on the 31-bit SRTCP
 *    index); a replayed or too-old packet is dropped before it is decrypted;
 *  - state that survives a restart: the far end's ROC and highest sequence per SSRC (`inbound()`), restored by
 *    `restore()`. After a restart the first packet of a stream is tried with the stored ROC, then ROC + 1 (the far end
 *    wrapped during the gap or after the last stored value), so media continues across the gap.
 *  - the keys at rest (`sealKeys` / `openKeys`): AES-256-GCM under the recording master key with a fresh 96-bit
 *    nonce per seal, the call's SIP Call-ID as associated data; the resume state in the store carries only this.
 *
 *   far end ─SRTP─► unprotectRtp ─► window check ─► werift decrypt (ROC v) ─► window accept ─► RTP (rtp.ts)
 *   rtp.ts ─RTP─► protectRtp ─► werift encrypt (our ROC, counted by werift) ─► SRTP
 *
 * Our own stream needs no stored ROC: a restarted node sends with a new random SSRC (rtp.ts), so its index starts
 * over under the same key without reusing a keystream.
 *
 * werift is not loaded at start (ingress/werift.ts): whoever builds an SrtpContext awaits `loadWerift()` first.
 */
import crypto from 'node:crypto';
import type { SrtcpSession, SrtpSession } from 'werift';
import type { MasterKey } from '../../recording/master-key.ts';
import { SUITES, type SdesSuite, type SrtpKeys } from './sdes.ts';
import { srtcpAsTag80, srtpAsTag80, truncateTag } from './srtp-tag32.ts';
import { werift } from '../werift.ts';

/** The far end's stream state a restart needs (not secret). */
export interface InboundState {
  ssrc: number;
  roc: number;
  seq: number;
}

/** What the dialog snapshot stores for an SRTP call (`DialogSnapshot.srtp`). */
export interface SrtpResume {
  suite: SdesSuite;
  /** The a=crypto tag of the agreed line (a refresh answers with it). */
  tag: number;
  /** keyId of the master key that sealed the keys. */
  keyId: string;
  /** base64(nonce ‖ ciphertext ‖ tag) of the keys. */
  sealed: string;
  inbound?: InboundState[];
}

const WINDOW = 64n;
/** Far-end streams (SSRCs) kept per call: a phone sends one, a re-started one a second; more are refused. */
const MAX_STREAMS = 16;

/** RFC 3711 §3.3.2 replay list: the highest index accepted and a bitmask of the 64 before it. */
export class ReplayWindow {
  private top = -1;
  private bits = 0n;

  /** Whether `index` may be processed (not replayed, not older than the window). */
  check(index: number): boolean {
    if (index > this.top) return true;
    const d = BigInt(this.top - index);
    if (d >= WINDOW) return false;
    return ((this.bits >> d) & 1n) === 0n;
  }

  /** Records `index` as received (after it authenticated). */
  accept(index: number): void {
    if (index > this.top) {
      const shift = this.top < 0 ? WINDOW : BigInt(index - this.top);
      this.bits = shift >= WINDOW ? 1n : ((this.bits << shift) | 1n) & ((1n << WINDOW) - 1n);
      this.top = index;
    } else this.bits |= 1n << BigInt(this.top - index);
  }
}

interface Stream {
  roc: number;
  seq: number;
  window: ReplayWindow;
  /** Restored after a restart and no packet authenticated since: ROC + 1 is tried too. */
  restored: boolean;
}

export type SrtpStats = { authFailed: number; replayed: number };

export class SrtpContext {
  readonly stats: SrtpStats = { authFailed: 0, replayed: 0 };
  private readonly rtp: SrtpSession;
  private readonly rtcp: SrtcpSession;
  private readonly streams = new Map<number, Stream>();
  private readonly rtcpWindows = new Map<number, ReplayWindow>();
  /** The SRTP tag length (bytes); SRTCP's is the same except for _32, whose SRTCP tag stays 80 bits. */
  private readonly tagLength: number;
  /** AES_CM_128_HMAC_SHA1_32: werift's _80 with the SRTP tag cut to 32 bits (srtp-tag32.ts). */
  private readonly short: boolean;
  /** Called when the far end's ROC grows (the caller stores it, so a restart resumes from it). */
  onRollover: ((state: InboundState[]) => void) | null = null;

  private readonly w = werift();

  constructor(readonly keys: SrtpKeys) {
    const config = {
      profile: SUITES[keys.suite].profile,
      keys: { localMasterKey: keys.local.key, localMasterSalt: keys.local.salt, remoteMasterKey: keys.remote.key, remoteMasterSalt: keys.remote.salt },
    };
    this.rtp = new this.w.SrtpSession(config);
    this.rtcp = new this.w.SrtcpSession(config);
    this.tagLength = SUITES[keys.suite].srtpTag;
    this.short = keys.suite === 'AES_CM_128_HMAC_SHA1_32';
  }

  /** An RTP packet (12-byte header, no CSRC or extension: what rtp.ts sends) ─► SRTP. */
  protectRtp(packet: Buffer): Buffer {
    const header = this.w.RtpHeader.deSerialize(packet);
    const out = this.rtp.encrypt(packet.subarray(header.payloadOffset), header);
    return this.short ? truncateTag(out) : out;
  }

  /** SRTP ─► RTP, or null when it does not authenticate, is replayed or too old. */
  unprotectRtp(packet: Buffer): Buffer | null {
    if (packet.length < 12 + this.tagLength) return null;
    const ssrc = packet.readUInt32BE(8);
    const seq = packet.readUInt16BE(2);
    const s = this.streams.get(ssrc);
    if (!s && this.streams.size >= MAX_STREAMS) {
      this.stats.authFailed++;
      return null;
    }
    const v = s ? estimateRoc(s.roc, s.seq, seq) : 0;
    const index = v * 65536 + seq;
    if (s && !s.window.check(index)) {
      this.stats.replayed++;
      return null;
    }
    const tries = s?.restored ? [v, v + 1] : [v];
    for (const roc of tries) {
      const plain = this.tryDecrypt(packet, ssrc, roc, seq);
      if (plain) {
        this.accepted(ssrc, s, roc, seq);
        return plain;
      }
    }
    this.stats.authFailed++;
    return null;
  }

  /** An RTCP compound packet ─► SRTCP (werift counts the SRTCP index). */
  protectRtcp(packet: Buffer): Buffer {
    return this.rtcp.encrypt(packet);
  }

  /** SRTCP ─► RTCP, or null when it does not authenticate or its index was seen. */
  unprotectRtcp(received: Buffer): Buffer | null {
    if (received.length < 8 + 4 + this.tagLength) return null;
    // _32: an SRTCP packet with a 32-bit tag (libre's) is handed to werift with the 80-bit tag it checks; one with
    // the 80-bit tag (RFC 3711 §7.5, libsrtp, ours) goes as it is.
    const packet = (this.short && srtcpAsTag80(received, this.rtcp.remoteContext.srtcpSessionAuthTag)) || received;
    if (packet.length < 8 + 4 + 10) return null;
    const ssrc = packet.readUInt32BE(4);
    // E flag + SRTCP index: before the tag for AES-CM (RFC 3711 §3.4), the last 4 bytes for AES-GCM (RFC 7714 §17).
    const at = this.keys.suite === 'AEAD_AES_128_GCM' ? packet.length - 4 : packet.length - 10 - 4;
    const index = packet.readUInt32BE(at) & 0x7fffffff;
    let w = this.rtcpWindows.get(ssrc);
    if (w && !w.check(index)) {
      this.stats.replayed++;
      return null;
    }
    try {
      const [plain] = this.rtcp.remoteContext.decryptRTCP(packet);
      if (!w) this.rtcpWindows.set(ssrc, (w = new ReplayWindow()));
      w.accept(index);
      return plain;
    } catch {
      this.stats.authFailed++;
      return null;
    }
  }

  /** The far end's streams as a restart needs them. */
  inbound(): InboundState[] {
    return [...this.streams].map(([ssrc, s]) => ({ ssrc, roc: s.roc, seq: s.seq }));
  }

  /** After a restart: the far end's streams as last stored. */
  restore(states: readonly InboundState[]): void {
    for (const st of states) this.streams.set(st.ssrc, { roc: st.roc, seq: st.seq, window: new ReplayWindow(), restored: true });
  }

  private tryDecrypt(packet: Buffer, ssrc: number, roc: number, seq: number): Buffer | null {
    // werift derives the index from its per-SSRC state: hand it our estimate (a state not yet "processed" keeps its ROC).
    this.rtp.remoteContext.srtpSSRCStates[ssrc] = { ssrc, rolloverCounter: roc, lastSequenceNumber: seq, rolloverHasProcessed: false };
    try {
      const whole = this.short ? srtpAsTag80(packet, this.rtp.remoteContext.srtpSessionAuthTag, roc) : packet;
      if (!whole) throw new Error('SRTP 32-bit tag does not authenticate');
      return this.rtp.remoteContext.decryptRtp(whole)[0];
    } catch {
      // A forged packet leaves no state behind for an SSRC we have not authenticated.
      if (!this.streams.has(ssrc)) delete this.rtp.remoteContext.srtpSSRCStates[ssrc];
      return null;
    }
  }

  private accepted(ssrc: number, s: Stream | undefined, roc: number, seq: number): void {
    const index = roc * 65536 + seq;
    if (!s) {
      const w = new ReplayWindow();
      w.accept(index);
      this.streams.set(ssrc, { roc, seq, window: w, restored: false });
      return;
    }
    s.restored = false;
    s.window.accept(index);
    if (index > s.roc * 65536 + s.seq) {
      const rolled = roc > s.roc;
      s.roc = roc;
      s.seq = seq;
      if (rolled) this.onRollover?.(this.inbound());
    }
  }
}

/** RFC 3711 Appendix A: the ROC of sequence number `seq` given the highest one seen (`sl`) and its ROC. */
export function estimateRoc(roc: number, sl: number, seq: number): number {
  if (sl < 32768) return seq - sl > 32768 && roc > 0 ? roc - 1 : roc;
  return sl - 32768 > seq ? (roc + 1) >>> 0 : roc;
}

/** The keys sealed for the store: AES-256-GCM under the recording master key, a fresh nonce, the Call-ID as AAD. */
export function sealKeys(agreed: { tag: number; keys: SrtpKeys }, master: MasterKey, callId: string, inbound?: InboundState[]): SrtpResume {
  const keys = agreed.keys;
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', master.key, nonce);
  c.setAAD(Buffer.from(callId, 'utf8'));
  const plain = Buffer.from(JSON.stringify({ l: b64(keys.local.key, keys.local.salt), r: b64(keys.remote.key, keys.remote.salt) }), 'utf8');
  const body = Buffer.concat([c.update(plain), c.final()]);
  return { suite: keys.suite, tag: agreed.tag, keyId: master.keyId, sealed: Buffer.concat([nonce, body, c.getAuthTag()]).toString('base64'), ...(inbound ? { inbound } : {}) };
}

/** Opens what sealKeys stored; throws when the master key is not the one that sealed it or the data was altered. */
export function openKeys(r: SrtpResume, master: MasterKey, callId: string): SrtpKeys {
  if (r.keyId !== master.keyId) throw new Error(`SRTP keys were sealed with master key ${r.keyId}, not ${master.keyId}`);
  const s = SUITES[r.suite];
  if (!s) throw new Error(`unknown SRTP suite ${String(r.suite)}`);
  const blob = Buffer.from(r.sealed, 'base64');
  if (blob.length < 12 + 16) throw new Error('sealed SRTP keys are truncated');
  const d = crypto.createDecipheriv('aes-256-gcm', master.key, blob.subarray(0, 12));
  d.setAAD(Buffer.from(callId, 'utf8'));
  d.setAuthTag(blob.subarray(blob.length - 16));
  const plain = JSON.parse(Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]).toString('utf8')) as { l: string; r: string };
  const split = (text: string): { key: Buffer; salt: Buffer } => {
    const b = Buffer.from(text, 'base64');
    if (b.length !== s.keyLength + s.saltLength) throw new Error('sealed SRTP key has the wrong length');
    return { key: b.subarray(0, s.keyLength), salt: b.subarray(s.keyLength) };
  };
  return { suite: r.suite, local: split(plain.l), remote: split(plain.r) };
}

/** The snapshot fields for a call's media encryption: `srtp` with the keys sealed, or `none`. */
export function encryptionFields(agreed: { tag: number; keys: SrtpKeys } | undefined, master: () => MasterKey, callId: string): { mediaEncryption: 'srtp' | 'none'; srtp?: SrtpResume } {
  return agreed ? { mediaEncryption: 'srtp', srtp: sealKeys(agreed, master(), callId) } : { mediaEncryption: 'none' };
}

/** Whether two agreements use the same keys both ways. */
export function sameKeys(a: SrtpKeys, b: SrtpKeys): boolean {
  return a.suite === b.suite && a.local.key.equals(b.local.key) && a.local.salt.equals(b.local.salt) && a.remote.key.equals(b.remote.key) && a.remote.salt.equals(b.remote.salt);
}

/** Why a stored `srtp` cannot be used (null when it can). */
export function srtpResumeProblem(v: unknown): string | null {
  const r = v as Partial<Record<keyof SrtpResume, unknown>> | null;
  if (typeof r !== 'object' || r === null) return 'srtp is not usable';
  if (typeof r.suite !== 'string' || !(r.suite in SUITES)) return 'srtp suite is not usable';
  if (typeof r.tag !== 'number' || !Number.isInteger(r.tag) || r.tag < 0 || r.tag > 999_999_999) return 'srtp tag is not usable';
  if (typeof r.keyId !== 'string' || typeof r.sealed !== 'string' || r.sealed.length > 512) return 'srtp keys are not usable';
  const u32 = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  if (r.inbound !== undefined && (!Array.isArray(r.inbound) || r.inbound.length > 16 || !r.inbound.every((i: InboundState) => u32(i?.ssrc) && u32(i?.roc) && u32(i?.seq) && i.seq <= 0xffff))) return 'srtp rollover state is not usable';
  return null;
}

const b64 = (a: Buffer, b: Buffer): string => Buffer.concat([a, b]).toString('base64');
