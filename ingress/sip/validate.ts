/**
 * Request validation for a UAS, in the order of RFC 3261 §8.2 (and RFC 4475's
 * torture cases): size (513, limits in message.ts), syntax (400), version (505), method (405/501), URI scheme
 * (416), extensions (420), content (415/406). A request that passes carries
 * its parsed core headers.
 */
import { parseCSeq, parseNameAddr, parseSipUri, parseVia, type CSeq, type NameAddr, type Via } from './headers.ts';
import type { SipRequest } from './message.ts';

/** Methods this UAS implements. */
export const ALLOW = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'INFO', 'PRACK', 'UPDATE', 'REFER', 'NOTIFY'] as const;
/** Known SIP methods we do not accept at this endpoint (405, not 501). */
const KNOWN_NOT_ALLOWED = new Set(['REGISTER', 'SUBSCRIBE', 'MESSAGE', 'PUBLISH']);
/** Option tags we support: RFC 4028 session timers (session-timer.ts), RFC 3262 reliable provisionals (prack.ts). */
export const SUPPORTED = ['timer', '100rel'] as const;
const SINGLE = ['call-id', 'from', 'to', 'cseq', 'max-forwards', 'content-length', 'content-type'];

export interface Refusal {
  status: number;
  reason?: string;
  headers?: Array<[string, string]>;
  /** Why, for the log. */
  detail: string;
}

export interface ValidRequest {
  req: SipRequest;
  vias: Via[];
  from: NameAddr;
  to: NameAddr;
  callId: string;
  cseq: CSeq;
  /** The SDP of an INVITE/ACK/UPDATE/PRACK (the application/sdp part of a multipart body), else null. */
  sdp: string | null;
}

const bad = (detail: string): Refusal => ({ status: 400, reason: `Bad Request (${detail})`.slice(0, 120), detail });
const allowHeader = (): [string, string] => ['Allow', ALLOW.join(', ')];

export function validateRequest(req: SipRequest, transport: 'udp' | 'tcp' | 'tls'): { ok: true; value: ValidRequest } | { ok: false; refusal: Refusal } {
  const fail = (refusal: Refusal) => ({ ok: false as const, refusal });
  const h = req.headers;
  if (req.tooLarge) return fail({ status: 513, reason: 'Message Too Large', detail: req.tooLarge });
  // Version first: a SIP/7.0 request is refused as such, whatever else is wrong with it.
  if (/^SIP\/\d+\.\d+$/i.test(req.version) && req.version.toUpperCase() !== 'SIP/2.0') return fail({ status: 505, detail: `version ${req.version}` });
  if (req.badStartLine || req.version.toUpperCase() !== 'SIP/2.0') return fail(bad('malformed request line'));
  if (!/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(req.method)) return fail(bad('method is not a token'));
  if (req.uri.startsWith('<') || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(req.uri)) return fail(bad('malformed Request-URI'));
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) if (!h.has(name)) return fail(bad(`missing ${name}`));
  for (const name of SINGLE) if (h.lines(name).length > 1) return fail(bad(`more than one ${name}`));
  const vias: Via[] = [];
  for (const line of h.lines('via')) {
    // An empty element (",,") is malformed, not skipped.
    for (const v of splitVias(line)) {
      const via = v === '' ? null : parseVia(v);
      if (!via) return fail(bad('malformed Via'));
      vias.push(via);
    }
  }
  const from = parseNameAddr(h.get('from') as string);
  const to = parseNameAddr(h.get('to') as string);
  if (!from) return fail(bad('malformed From'));
  if (!to) return fail(bad('malformed To'));
  const callId = (h.get('call-id') as string).trim();
  if (callId === '' || /\s/.test(callId)) return fail(bad('malformed Call-ID'));
  const cseq = parseCSeq(h.get('cseq') as string);
  if (!cseq) return fail(bad('malformed CSeq'));
  if (cseq.method !== req.method) return fail(bad('CSeq method does not match'));
  const mf = h.get('max-forwards');
  if (mf !== undefined && (!/^\d{1,10}$/.test(mf) || Number(mf) > 255)) return fail(bad('malformed Max-Forwards'));
  const expires = h.get('expires');
  if (expires !== undefined && (!/^\d{1,10}$/.test(expires) || Number(expires) > 2 ** 32 - 1)) return fail(bad('malformed Expires'));
  const cl = h.get('content-length');
  if (cl !== undefined) {
    if (!/^\d{1,9}$/.test(cl)) return fail(bad('malformed Content-Length'));
    const n = Number(cl);
    if (n > req.body.length) return fail(bad('Content-Length larger than the body'));
    req.body = req.body.subarray(0, n);
  } else if (transport !== 'udp') req.body = Buffer.alloc(0);
  for (const c of h.values('contact')) if (c !== '*' && !parseNameAddr(c)) return fail(bad('malformed Contact'));

  if (!(ALLOW as readonly string[]).includes(req.method)) {
    if (KNOWN_NOT_ALLOWED.has(req.method)) return fail({ status: 405, headers: [allowHeader()], detail: `${req.method} not allowed here` });
    return fail({ status: 501, headers: [allowHeader()], detail: `unknown method ${req.method}` });
  }
  const scheme = (req.uri.split(':')[0] as string).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips' && scheme !== 'tel') return fail({ status: 416, detail: `URI scheme ${scheme}` });
  if (scheme !== 'tel' && !parseSipUri(req.uri)) return fail(bad('malformed Request-URI'));
  if (req.method !== 'ACK' && req.method !== 'CANCEL') {
    const unsupported = h.values('require').filter((t) => !(SUPPORTED as readonly string[]).includes(t.toLowerCase()));
    if (unsupported.length) return fail({ status: 420, headers: [['Unsupported', unsupported.join(', ')]], detail: `Require: ${unsupported.join(', ')}` });
  }
  let sdp: string | null = null;
  if (req.method === 'INVITE' || req.method === 'ACK' || req.method === 'UPDATE' || req.method === 'PRACK') {
    const offers = req.method === 'INVITE' || req.method === 'UPDATE';
    const enc = h.get('content-encoding');
    if (enc !== undefined && enc.toLowerCase() !== 'identity' && offers) {
      return fail({ status: 415, headers: [['Accept-Encoding', 'identity'], ['Accept', 'application/sdp']], detail: `Content-Encoding ${enc}` });
    }
    if (req.body.length > 0) {
      sdp = sdpOf(h.get('content-type') ?? '', req.body);
      if (sdp === null && offers) return fail({ status: 415, headers: [['Accept', 'application/sdp']], detail: `Content-Type ${h.get('content-type') ?? '(none)'}` });
    }
    const accept = h.values('accept');
    if (req.method === 'INVITE' && accept.length && !accept.some((a) => /^(application\/(sdp|\*)|\*\/\*)\s*(;|$)/i.test(a))) {
      return fail({ status: 406, headers: [['Accept', 'application/sdp']], detail: `Accept: ${accept.join(', ')}` });
    }
  }
  return { ok: true, value: { req, vias, from, to, callId, cseq, sdp } };
}

/** Splits one Via line into via-parms (commas inside quoted params stay). */
function splitVias(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** application/sdp, or the application/sdp part of a multipart body (RFC 2046); null if none. */
export function sdpOf(contentType: string, body: Buffer): string | null {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/sdp') return body.toString('utf8');
  if (!type.startsWith('multipart/')) return null;
  const m = /boundary\s*=\s*"?([^";]+)"?/i.exec(contentType);
  if (!m) return null;
  const text = body.toString('latin1');
  for (const part of text.split(`--${m[1] as string}`).slice(1)) {
    if (part.startsWith('--')) break;
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    if (/content-type\s*:\s*application\/sdp/i.test(part.slice(0, sep))) return Buffer.from(part.slice(sep + 4).replace(/\r\n$/, ''), 'latin1').toString('utf8');
  }
  return null;
}
