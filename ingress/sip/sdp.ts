/**
 * SDP offer/answer (RFC 3264) for telephony audio: PCMU, PCMA and
 * telephone-event (RFC 4733). The first audio stream offering G.711 is
 * accepted (the offerer's preference order), every other m-line is rejected
 * with port 0. The description is read by sdp-read.ts, which checks every
 * address and port before a socket sees one; anything unusable (no audio we
 * speak, a bad address or port, a family we do not speak) is 488 with a
 * Warning, so nothing is answered, bound or sent for it.
 *
 * SRTP (RFC 4568 SDES): an RTP/SAVP stream is answered in RTP/SAVP with one a=crypto line (sdes.ts chooses the
 * suite and makes our key); `SrtpPolicy` `require` refuses plain RTP (488, Warning 399), `prefer` also answers
 * a=crypto offered in RTP/AVP. RTP/SAVPF and DTLS-SRTP are refused with Warning 302.
 */
import type { DialogSnapshot } from './dialog.ts';
import { readSdp, sdpWarning, type Direction, type SdpMedia, type SessionDescription } from './sdp-read.ts';
import { chooseCrypto, cryptoAttribute, type SrtpKeys } from './sdes.ts';

export type { Direction } from './sdp-read.ts';
export type G711 = 'PCMU' | 'PCMA';

export interface NegotiatedMedia {
  codec: G711;
  payloadType: number;
  /** telephone-event/8000 payload type, null when not offered. */
  eventPayloadType: number | null;
  /** Where the far end wants RTP (0.0.0.0 = on hold, RFC 2543 style): a checked IP literal and a port in 1–65534. */
  remote: { address: string; port: number };
  /** Where it wants RTCP when it said so (RFC 3605 a=rtcp); absent = the RTP port + 1. */
  rtcp?: { address: string; port: number };
  /** Our direction (the answer's). */
  direction: Direction;
  /** The far end puts us on hold (sendonly / inactive / c=0.0.0.0). */
  held: boolean;
}

export interface LocalMedia {
  address: string;
  port: number;
  sessionId: number;
  sessionVersion: number;
}

/** Media encryption a trunk or route asks for (the SRTP half of SWITCHBOARD_SIP_ENCRYPTION, encryption-policy.ts): `require` refuses plain RTP, `prefer` answers a=crypto in RTP/AVP too, `allow` = SRTP only when offered as RTP/SAVP. */
export type SrtpPolicy = 'require' | 'prefer' | 'allow';

/** SDES-SRTP agreed for a stream (sdes.ts): the keys, and the a=crypto tag our answer echoed. */
export interface SrtpAgreement {
  tag: number;
  keys: SrtpKeys;
}

export type Negotiation = { ok: true; media: NegotiatedMedia; answer: string; srtp?: SrtpAgreement } | { ok: false; status: 488; warning: string };

const STATIC: Readonly<Record<number, G711>> = { 0: 'PCMU', 8: 'PCMA' };
const ANSWER_DIRECTION: Readonly<Record<Direction, Direction>> = { sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive' };

const refuse = (code: number, text: string): Negotiation => ({ ok: false, status: 488, warning: sdpWarning(code, text) });

/**
 * RFC 3264 §6: answers `offer` (or reads an answer to our offer). Every refusal is 488 Not Acceptable Here with a
 * Warning: 399 for an unusable description (bad syntax, address or port), 301 for an address family we do not
 * speak, 304/305 when no stream is acceptable.
 */
export function negotiate(offer: string, local: LocalMedia, policy: SrtpPolicy = 'allow', current?: SrtpKeys): Negotiation {
  const read = readSdp(offer);
  if (!read.ok) return { ok: false, status: 488, warning: read.warning };
  const sdp = read.sdp;
  if (sdp.media.length === 0) return refuse(304, 'no media in the offer');
  const index = sdp.media.findIndex((m) => m.type === 'audio' && m.port !== 0 && RTP_PROFILES.has(m.protocol.toUpperCase()) && g711Of(m) !== null);
  const m = sdp.media[index];
  if (!m) {
    // RTP/SAVPF (WebRTC-style feedback) and DTLS-SRTP are not spoken over SIP: say so rather than "no codec".
    if (sdp.media.some((x) => x.type === 'audio' && x.port !== 0 && /SAVPF$|^UDP\/TLS\//i.test(x.protocol))) return refuse(302, 'RTP/SAVPF and DTLS-SRTP are not supported: offer RTP/SAVP with a=crypto (SDES) or RTP/AVP');
    return refuse(305, 'only PCMU, PCMA and telephone-event are supported');
  }
  let srtp: SrtpAgreement | undefined;
  if (m.protocol.toUpperCase() === 'RTP/SAVP' || (policy !== 'allow' && m.crypto.length > 0)) {
    const c = chooseCrypto(m.crypto);
    if (!c.ok) return refuse(305, `SRTP: ${c.reason}`);
    // A re-offer in an SRTP call keeps our key when the suite is unchanged (RFC 4568 §7.1.4 lets the answerer keep it).
    srtp = { tag: c.tag, keys: current && current.suite === c.keys.suite ? { ...c.keys, local: current.local } : c.keys };
  } else if (policy === 'require') return refuse(399, 'this trunk requires SRTP: offer RTP/SAVP with a=crypto (RFC 4568)');
  const conn = m.connection ?? sdp.connection;
  if (!conn) return refuse(399, 'no c= line for the audio stream');
  const ours = local.address.includes(':') ? 6 : 4;
  if (conn.family !== ours) return refuse(301, `media address must be IPv${ours}`);
  // The RTCP port is the RTP port + 1 (RFC 3550 §11) unless a=rtcp names one; the + 1 must be a port too.
  if (m.port > 65534) return refuse(399, `media port ${m.port} leaves no RTCP port`);
  if (m.rtcp?.connection && m.rtcp.connection.family !== ours) return refuse(301, `RTCP address must be IPv${ours}`);
  const codecPt = g711Of(m) as number;
  const te = payloadTypes(m).find((pt) => {
    const e = encoding(m, pt);
    return e !== null && e.name === 'TELEPHONE-EVENT' && e.rate === 8000;
  });
  const offered = m.direction ?? sdp.direction ?? 'sendrecv';
  const unspecified = conn.address === '0.0.0.0' || conn.address === '::';
  const media: NegotiatedMedia = {
    codec: (encoding(m, codecPt) as { name: G711 }).name,
    payloadType: codecPt,
    eventPayloadType: te ?? null,
    remote: { address: conn.address, port: m.port },
    ...(m.rtcp ? { rtcp: { address: m.rtcp.connection?.address ?? conn.address, port: m.rtcp.port } } : {}),
    direction: unspecified && offered === 'sendrecv' ? 'recvonly' : ANSWER_DIRECTION[offered],
    held: offered === 'sendonly' || offered === 'inactive' || unspecified,
  };
  const crypto = srtp ? cryptoAttribute(srtp.tag, srtp.keys.suite, srtp.keys.local) : undefined;
  return { ok: true, media, answer: answerSdp(sdp, index, media, local, crypto), ...(srtp ? { srtp } : {}) };
}

const RTP_PROFILES: ReadonlySet<string> = new Set(['RTP/AVP', 'RTP/SAVP']);

function payloadTypes(m: SdpMedia): number[] {
  const out: number[] = [];
  for (const f of m.formats) {
    const n = f.length <= 3 && /^\d+$/.test(f) ? Number(f) : NaN;
    if (n <= 127) out.push(n);
  }
  return out;
}

function encoding(m: SdpMedia, pt: number): { name: string; rate: number } | null {
  const r = m.rtpmap.get(pt);
  if (r) return r;
  const s = STATIC[pt];
  return s ? { name: s, rate: 8000 } : null;
}

/** The first G.711 payload type of the stream in the offerer's order, or null. */
function g711Of(m: SdpMedia): number | null {
  return (
    payloadTypes(m).find((pt) => {
      const e = encoding(m, pt);
      return e !== null && (e.name === 'PCMU' || e.name === 'PCMA') && e.rate === 8000;
    }) ?? null
  );
}

/** RFC 4566 §5: the session part of every description we send (v=, o=, s=, c=, t=). */
function sessionLines(sessionId: string | number, version: string | number, address: string): string[] {
  const ip = address.includes(':') ? 'IP6' : 'IP4';
  return ['v=0', `o=switchboard ${sessionId} ${version} IN ${ip} ${address}`, 's=switchboard', `c=IN ${ip} ${address}`, 't=0 0'];
}

function answerSdp(offer: SessionDescription, chosen: number, media: NegotiatedMedia, local: LocalMedia, crypto?: string): string {
  const lines = sessionLines(local.sessionId, local.sessionVersion, local.address);
  offer.media.forEach((m, i) => {
    // Every other stream is rejected with port 0, its first format echoed (RFC 3264 §6).
    if (i !== chosen) return void lines.push(`m=${m.type} 0 ${m.protocol} ${m.formats[0] ?? '0'}`);
    const pts = [media.payloadType, ...(media.eventPayloadType === null ? [] : [media.eventPayloadType])];
    // The offer's profile echoed (RTP/SAVP, or RTP/AVP carrying a=crypto under `prefer`).
    lines.push(`m=audio ${local.port} ${crypto ? m.protocol : 'RTP/AVP'} ${pts.join(' ')}`, `a=rtpmap:${media.payloadType} ${media.codec}/8000`);
    if (media.eventPayloadType !== null) lines.push(`a=rtpmap:${media.eventPayloadType} telephone-event/8000`, `a=fmtp:${media.eventPayloadType} 0-15`);
    if (crypto) lines.push(`a=crypto:${crypto}`);
    lines.push('a=ptime:20', `a=${media.direction}`);
  });
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * Our own offer (outbound calls, and INVITEs that came without one). With `crypto` (sdes.ts offerCrypto): its
 * a=crypto lines, in RTP/SAVP when SRTP is required, else in RTP/AVP (best-effort SRTP: a peer that does not speak
 * it ignores them and answers plain RTP).
 */
export function offerSdp(local: LocalMedia, crypto?: { lines: string[]; required: boolean }): string {
  const lines = [
    ...sessionLines(local.sessionId, local.sessionVersion, local.address),
    `m=audio ${local.port} ${crypto?.required ? 'RTP/SAVP' : 'RTP/AVP'} 0 8 101`,
    ...(crypto ? crypto.lines.map((l) => `a=crypto:${l}`) : []),
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15',
    'a=ptime:20',
    'a=sendrecv',
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The SDP answer for the media a dialog has now (a re-INVITE that changes nothing, or a session refresh): same
 * codec and event payload type, the session version as stored, recvonly while the call is held.
 */
export function currentAnswer(s: DialogSnapshot, port: number, held: boolean, address: string, srtp?: SrtpAgreement): string {
  const pts = [s.payloadType, ...(s.eventPayloadType === null ? [] : [s.eventPayloadType])];
  const lines = [
    ...sessionLines(s.sdpSession, s.sdpVersion, address),
    `m=audio ${port} ${srtp ? 'RTP/SAVP' : 'RTP/AVP'} ${pts.join(' ')}`,
    `a=rtpmap:${s.payloadType} ${s.codec}/8000`,
    ...(srtp ? [`a=crypto:${cryptoAttribute(srtp.tag, srtp.keys.suite, srtp.keys.local)}`] : []),
    ...(s.eventPayloadType === null ? [] : [`a=rtpmap:${s.eventPayloadType} telephone-event/8000`, `a=fmtp:${s.eventPayloadType} 0-15`]),
    'a=ptime:20',
    `a=${held ? 'recvonly' : 'sendrecv'}`,
  ];
  return `${lines.join('\r\n')}\r\n`;
}
