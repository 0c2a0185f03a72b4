/**
 * SDP offer/answer (RFC 3264) for telephony audio: PCMU, PCMA and
 * telephone-event (RFC 4733). The first audio stream offering G.711 is
 * accepted (the offerer's preference order), every other m-line is rejected
 * with port 0; no usable audio is 488.
 */
import * as sdpTransform from 'sdp-transform';
import type { DialogSnapshot } from './dialog.ts';

export type G711 = 'PCMU' | 'PCMA';
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface NegotiatedMedia {
  codec: G711;
  payloadType: number;
  /** telephone-event/8000 payload type, null when not offered. */
  eventPayloadType: number | null;
  /** Where the far end wants RTP (0.0.0.0 = on hold, RFC 2543 style). */
  remote: { address: string; port: number };
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

export type Negotiation = { ok: true; media: NegotiatedMedia; answer: string } | { ok: false; status: 488 | 400; warning: string };

const STATIC: Readonly<Record<number, G711>> = { 0: 'PCMU', 8: 'PCMA' };
const ANSWER_DIRECTION: Readonly<Record<Direction, Direction>> = { sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive' };

export function negotiate(offer: string, local: LocalMedia): Negotiation {
  let sdp: sdpTransform.SessionDescription;
  try {
    sdp = sdpTransform.parse(offer);
  } catch (err) {
    return { ok: false, status: 400, warning: `unparseable SDP: ${(err as Error).message}` };
  }
  if (!Array.isArray(sdp.media) || sdp.media.length === 0) return { ok: false, status: 488, warning: '304 switchboard "no media in the offer"' };
  let chosen: { index: number; media: NegotiatedMedia } | null = null;
  sdp.media.forEach((m, index) => {
    if (chosen || m.type !== 'audio' || m.port === 0 || !/^RTP\/AVP$/i.test(m.protocol)) return;
    const pts = String(m.payloads ?? '')
      .trim()
      .split(/\s+/)
      .map(Number)
      .filter((n) => Number.isInteger(n));
    const encoding = (pt: number): { name: string; rate: number } | null => {
      const r = m.rtp?.find((x) => x.payload === pt);
      if (r) return { name: r.codec.toUpperCase(), rate: r.rate ?? 8000 };
      const s = STATIC[pt];
      return s ? { name: s, rate: 8000 } : null;
    };
    const codecPt = pts.find((pt) => {
      const e = encoding(pt);
      return e !== null && (e.name === 'PCMU' || e.name === 'PCMA') && e.rate === 8000;
    });
    if (codecPt === undefined) return;
    const te = pts.find((pt) => {
      const e = encoding(pt);
      return e !== null && e.name === 'TELEPHONE-EVENT' && e.rate === 8000;
    });
    const address = m.connection?.ip ?? sdp.connection?.ip ?? '';
    const offered = (m.direction ?? sdp.direction ?? 'sendrecv') as Direction;
    const held = offered === 'sendonly' || offered === 'inactive' || address === '0.0.0.0';
    chosen = {
      index,
      media: {
        codec: (encoding(codecPt) as { name: G711 }).name,
        payloadType: codecPt,
        eventPayloadType: te ?? null,
        remote: { address, port: m.port },
        direction: address === '0.0.0.0' && offered === 'sendrecv' ? 'recvonly' : ANSWER_DIRECTION[offered],
        held,
      },
    };
  });
  const pick = chosen as { index: number; media: NegotiatedMedia } | null;
  if (!pick) return { ok: false, status: 488, warning: '305 switchboard "only PCMU, PCMA and telephone-event are supported"' };
  if (pick.media.remote.address === '') return { ok: false, status: 400, warning: '399 switchboard "no c= line"' };
  return { ok: true, media: pick.media, answer: answerSdp(sdp, pick.index, pick.media, local) };
}

function answerSdp(offer: sdpTransform.SessionDescription, chosen: number, media: NegotiatedMedia, local: LocalMedia): string {
  const ipVer = local.address.includes(':') ? 6 : 4;
  const answer: sdpTransform.SessionDescription = {
    version: 0,
    origin: { username: 'switchboard', sessionId: local.sessionId, sessionVersion: local.sessionVersion, netType: 'IN', ipVer, address: local.address },
    name: 'switchboard',
    connection: { version: ipVer, ip: local.address },
    timing: { start: 0, stop: 0 },
    media: offer.media.map((m, i) => {
      if (i !== chosen) return { type: m.type, port: 0, protocol: m.protocol, payloads: String(m.payloads ?? '0').split(/\s+/)[0] ?? '0', rtp: [], fmtp: [] };
      const pts = [media.payloadType, ...(media.eventPayloadType === null ? [] : [media.eventPayloadType])];
      return {
        type: 'audio',
        port: local.port,
        protocol: 'RTP/AVP',
        payloads: pts.join(' '),
        rtp: [
          { payload: media.payloadType, codec: media.codec, rate: 8000 },
          ...(media.eventPayloadType === null ? [] : [{ payload: media.eventPayloadType, codec: 'telephone-event', rate: 8000 }]),
        ],
        fmtp: media.eventPayloadType === null ? [] : [{ payload: media.eventPayloadType, config: '0-15' }],
        ptime: 20,
        direction: media.direction,
      };
    }),
  };
  return sdpTransform.write(answer);
}

/** Our own offer (outbound calls, and INVITEs that came without one). */
export function offerSdp(local: LocalMedia): string {
  const ipVer = local.address.includes(':') ? 6 : 4;
  return sdpTransform.write({
    version: 0,
    origin: { username: 'switchboard', sessionId: local.sessionId, sessionVersion: local.sessionVersion, netType: 'IN', ipVer, address: local.address },
    name: 'switchboard',
    connection: { version: ipVer, ip: local.address },
    timing: { start: 0, stop: 0 },
    media: [
      {
        type: 'audio',
        port: local.port,
        protocol: 'RTP/AVP',
        payloads: '0 8 101',
        rtp: [
          { payload: 0, codec: 'PCMU', rate: 8000 },
          { payload: 8, codec: 'PCMA', rate: 8000 },
          { payload: 101, codec: 'telephone-event', rate: 8000 },
        ],
        fmtp: [{ payload: 101, config: '0-15' }],
        ptime: 20,
        direction: 'sendrecv',
      },
    ],
  });
}

/**
 * The SDP answer for the media a dialog has now (a re-INVITE that changes nothing, or a session refresh): same
 * codec and event payload type, the session version as stored, recvonly while the call is held.
 */
export function currentAnswer(s: DialogSnapshot, port: number, held: boolean, address: string): string {
  const pts = [s.payloadType, ...(s.eventPayloadType === null ? [] : [s.eventPayloadType])];
  const lines = [
    'v=0',
    `o=switchboard ${s.sdpSession} ${s.sdpVersion} IN IP4 ${address}`,
    's=switchboard',
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} RTP/AVP ${pts.join(' ')}`,
    `a=rtpmap:${s.payloadType} ${s.codec}/8000`,
    ...(s.eventPayloadType === null ? [] : [`a=rtpmap:${s.eventPayloadType} telephone-event/8000`, `a=fmtp:${s.eventPayloadType} 0-15`]),
    'a=ptime:20',
    `a=${held ? 'recvonly' : 'sendrecv'}`,
  ];
  return `${lines.join('\r\n')}\r\n`;
}
