/**
 * Reading an SDP offer or answer (RFC 4566) for the SIP ingress: one pass over
 * the lines, split on single characters only (no regular expression that can
 * backtrack), and every address and port a socket will later be handed is
 * checked here — connection data (§5.7: `IN IP4|IP6 <literal>`), media ports
 * (§5.14: 0–65535, digits only) and RTCP addresses (RFC 3605 `a=rtcp`). A
 * description that fails is refused by the caller with 488 and the Warning
 * (RFC 3261 §20.43) given here, before anything is answered or bound.
 */
import net from 'node:net';

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpAddress {
  family: 4 | 6;
  address: string;
}

export interface SdpMedia {
  type: string;
  /** 0 = a rejected or disabled stream (RFC 3264 §6). */
  port: number;
  protocol: string;
  /** The format list as written (payload type numbers for RTP/AVP). */
  formats: string[];
  connection: SdpAddress | null;
  /** a=rtpmap, by payload type: encoding name (upper case) and clock rate. */
  rtpmap: Map<number, { name: string; rate: number }>;
  direction: Direction | null;
  /** a=rtcp (RFC 3605): its port, and its address when one is given. */
  rtcp: { port: number; connection: SdpAddress | null } | null;
  /** a=crypto values as written (RFC 4568; read by sdes.ts). */
  crypto: string[];
}

export interface SessionDescription {
  connection: SdpAddress | null;
  direction: Direction | null;
  media: SdpMedia[];
}

export type SdpRead = { ok: true; sdp: SessionDescription } | { ok: false; warning: string };

/** A Warning header value (RFC 3261 §20.43): code, our agent name, quoted text. */
export const sdpWarning = (code: number, text: string): string => `${code} switchboard "${text.replace(/["\\]/g, '').slice(0, 160)}"`;

const DIRECTIONS: ReadonlySet<string> = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
/** Longest SDP line we read (the whole message is already bounded by the transport). */
const MAX_LINE = 4096;
const MAX_MEDIA = 16;

class SdpError extends Error {}
const fail = (text: string): never => {
  throw new SdpError(text);
};

/** Whole decimal number in [min, max] written with digits only (no sign, exponent, spaces). */
export function readInt(s: string, min: number, max: number): number | null {
  if (s.length === 0 || s.length > 10) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}

/** `IN IP4 <addr>` / `IN IP6 <addr>`: an IP literal of the family it claims (no FQDN, no multicast TTL). */
export function readConnection(fields: string[], where: string): SdpAddress {
  if (fields.length !== 3 || fields[0] !== 'IN') fail(`${where}: expected "IN IP4 <address>" or "IN IP6 <address>"`);
  const [, type, address] = fields as [string, string, string];
  const family = type === 'IP4' ? 4 : type === 'IP6' ? 6 : fail(`${where}: address type ${type.slice(0, 8)} is not IP4 or IP6`);
  if (net.isIP(address) !== family) fail(`${where}: "${address.slice(0, 48)}" is not an IPv${family} address`);
  if (family === 4 && isIpv4Multicast(address)) fail(`${where}: multicast media is not supported`);
  if (family === 6 && address.toLowerCase().startsWith('ff')) fail(`${where}: multicast media is not supported`);
  return { family, address };
}

function isIpv4Multicast(a: string): boolean {
  const first = Number(a.slice(0, a.indexOf('.')));
  return first >= 224;
}

const words = (s: string): string[] => s.split(' ').filter((w) => w !== '');

/** Reads the lines we use; anything else is skipped. Never throws. */
export function readSdp(text: string): SdpRead {
  try {
    return { ok: true, sdp: read(text) };
  } catch (err) {
    if (err instanceof SdpError) return { ok: false, warning: sdpWarning(399, err.message) };
    throw err;
  }
}

function read(text: string): SessionDescription {
  const session: SessionDescription = { connection: null, direction: null, media: [] };
  let current: SdpMedia | null = null;
  let sawVersion = false;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    if (line.length > MAX_LINE) fail(`an SDP line is longer than ${MAX_LINE} characters`);
    if (line.length < 2 || line[1] !== '=' || line[0]! < 'a' || line[0]! > 'z') fail(`malformed SDP line "${line.slice(0, 24)}"`);
    const type = line[0];
    const value = line.slice(2);
    if (!sawVersion) {
      if (type !== 'v' || value !== '0') fail('an SDP description starts with v=0');
      sawVersion = true;
      continue;
    }
    if (type === 'm') {
      if (session.media.length >= MAX_MEDIA) fail(`more than ${MAX_MEDIA} media descriptions`);
      current = readMediaLine(value, session.media.length + 1);
      session.media.push(current);
    } else if (type === 'c') {
      const where = current ? `m-line ${session.media.length} c=` : 'session c=';
      if ((current ? current.connection : session.connection) !== null) fail(`${where}: more than one c= line`);
      const c = readConnection(words(value), where);
      if (current) current.connection = c;
      else session.connection = c;
    } else if (type === 'a') readAttribute(value, current, session);
  }
  if (!sawVersion) fail('empty SDP');
  return session;
}

function readMediaLine(value: string, n: number): SdpMedia {
  const f = words(value);
  if (f.length < 4) fail(`m-line ${n}: expected "<media> <port> <proto> <fmt> …"`);
  const [type, portText, protocol] = f as [string, string, string];
  const slash = portText.indexOf('/');
  const port = readInt(slash < 0 ? portText : portText.slice(0, slash), 0, 65535);
  if (port === null) fail(`m-line ${n}: port "${portText.slice(0, 16)}" is not a number from 0 to 65535`);
  if (slash >= 0 && readInt(portText.slice(slash + 1), 1, 65535) === null) fail(`m-line ${n}: bad port count`);
  return { type, port: port as number, protocol, formats: f.slice(3), connection: null, rtpmap: new Map(), direction: null, rtcp: null, crypto: [] };
}

function readAttribute(value: string, media: SdpMedia | null, session: SessionDescription): void {
  const colon = value.indexOf(':');
  const name = colon < 0 ? value : value.slice(0, colon);
  const arg = colon < 0 ? '' : value.slice(colon + 1);
  if (DIRECTIONS.has(name)) {
    if (media) media.direction = name as Direction;
    else session.direction = name as Direction;
    return;
  }
  if (!media) return;
  if (name === 'rtpmap') {
    // a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]
    const sp = arg.indexOf(' ');
    const pt = readInt(sp < 0 ? arg : arg.slice(0, sp), 0, 127);
    const enc = sp < 0 ? [] : arg.slice(sp + 1).trim().split('/');
    const rate = readInt(enc[1] ?? '', 1, 10_000_000);
    if (pt === null || !enc[0] || rate === null) fail(`malformed a=rtpmap "${arg.slice(0, 32)}"`);
    if (!media.rtpmap.has(pt as number)) media.rtpmap.set(pt as number, { name: (enc[0] as string).toUpperCase(), rate: rate as number });
  } else if (name === 'crypto') {
    if (media.crypto.length < 16) media.crypto.push(arg);
  } else if (name === 'rtcp') {
    // a=rtcp:<port> [IN IP4|IP6 <address>] (RFC 3605 §2.1)
    const f = words(arg);
    const port = readInt(f[0] ?? '', 1, 65535);
    if (port === null) fail(`a=rtcp port "${(f[0] ?? '').slice(0, 16)}" is not a number from 1 to 65535`);
    media.rtcp = { port: port as number, connection: f.length > 1 ? readConnection(f.slice(1), 'a=rtcp') : null };
  }
}
