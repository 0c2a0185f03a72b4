/**
 * SIP messages: the raw parse (start line, unfolded header fields, body) and
 * the serializer. The raw parse accepts anything shaped like a SIP message, so
 * that a malformed request can still be answered (400 needs its Via, Call-ID,
 * CSeq…); `validate.ts` then decides whether the request is acceptable.
 *
 *   bytes ─► parseMessage ─► SipRequest | SipResponse ─► validateRequest ─► transaction layer
 *
 * Sizes are bounded here, before any header is interpreted: more than
 * MAX_MESSAGE bytes is not parsed at all; a header field longer than
 * MAX_HEADER_LINE or more than MAX_HEADERS fields marks a request `tooLarge`
 * (validate.ts answers 513 Message Too Large, RFC 3261 §21.5.14) and a
 * response unparseable. The parse is one pass with no backtracking pattern.
 * A response built here copies the request's Via, From, To, Call-ID and CSeq, and — when it establishes a dialog
 * (1xx with a tag, 2xx to an initial INVITE) — its Record-Route values (RFC 3261 §12.1.1).
 */
import { createHash } from 'node:crypto';
import { Headers, isToken, prettyName } from './headers.ts';

export interface SipRequest {
  kind: 'request';
  method: string;
  uri: string;
  version: string;
  /** The request line did not have exactly three space-separated parts. */
  badStartLine: boolean;
  /** Why the request is beyond our size limits (a header field too long, too many fields): answered 513. */
  tooLarge?: string;
  headers: Headers;
  body: Buffer;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  version: string;
  headers: Headers;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

export type ParseResult = { ok: true; message: SipMessage } | { ok: false; error: string };

/** Larger than any legitimate SIP message we expect: a datagram beyond it is dropped, a stream message refused (513). */
export const MAX_MESSAGE = 64 * 1024;
/** One header field, after unfolding. */
export const MAX_HEADER_LINE = 8 * 1024;
export const MAX_HEADERS = 128;

const CRLF2 = Buffer.from('\r\n\r\n');
const LF2 = Buffer.from('\n\n');

/** Where the header section ends: index of the blank line and the body's start. */
export function headerEnd(buf: Buffer, from = 0): { end: number; bodyStart: number } | null {
  const crlf = buf.indexOf(CRLF2, from);
  const lf = buf.indexOf(LF2, from);
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { end: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { end: lf, bodyStart: lf + 2 };
  return null;
}

/** Skips the CRLFs keep-alives and stray line ends may put before a message. */
export function skipLeadingLineEnds(buf: Buffer): number {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x0d || buf[i] === 0x0a)) i++;
  return i;
}

/** Parses one message (for a stream, `buf` is exactly one framed message). */
export function parseMessage(input: Buffer): ParseResult {
  const buf = input.subarray(skipLeadingLineEnds(input));
  if (buf.length === 0) return { ok: false, error: 'empty' };
  if (buf.length > MAX_MESSAGE) return { ok: false, error: `larger than ${MAX_MESSAGE} bytes` };
  const he = headerEnd(buf);
  const head = buf.subarray(0, he ? he.end : buf.length).toString('utf8');
  const body = he ? buf.subarray(he.bodyStart) : Buffer.alloc(0);
  const lines = unfold(head);
  const start = lines[0] ?? '';
  const headers = new Headers();
  let tooLarge: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '' && !he) continue; // no blank line before the end: a message without a body
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, error: `malformed header line: ${line.slice(0, 40)}` };
    const name = line.slice(0, colon).trim();
    if (!isToken(name)) return { ok: false, error: `bad header name: ${name.slice(0, 40)}` };
    if (line.length > MAX_HEADER_LINE) tooLarge ??= `a ${name.slice(0, 40)} header field longer than ${MAX_HEADER_LINE} bytes`;
    if (headers.entries.length >= MAX_HEADERS) tooLarge ??= `more than ${MAX_HEADERS} header fields`;
    headers.add(name, line.slice(colon + 1).trim());
  }
  if (start.length > MAX_HEADER_LINE) tooLarge ??= `a start line longer than ${MAX_HEADER_LINE} bytes`;
  if (/^SIP\//i.test(start)) {
    const m = /^(SIP\/\d+\.\d+) (\d{3})(?: (.*))?$/.exec(start);
    if (!m) return { ok: false, error: 'malformed status line' };
    if (tooLarge) return { ok: false, error: `response ${tooLarge}` };
    return { ok: true, message: { kind: 'response', version: m[1] as string, status: Number(m[2]), reason: m[3] ?? '', headers, body } };
  }
  const parts = start.split(' ');
  const badStartLine = parts.length !== 3 || parts.some((p) => p === '');
  const words = start.split(/\s+/).filter((w) => w !== '');
  if (words.length < 2) return { ok: false, error: 'malformed request line' };
  return {
    ok: true,
    message: { kind: 'request', method: words[0] as string, uri: words[1] as string, version: words[2] ?? '', badStartLine, headers, body, ...(tooLarge ? { tooLarge } : {}) },
  };
}

/**
 * The start line and header fields of a header block, folded lines (LWS continuations, RFC 3261 §7.3.1) joined
 * with one space. Continuations are collected and joined once, so a run of folded lines costs linear time.
 */
function unfold(head: string): string[] {
  const fields: string[][] = [];
  for (const raw of head.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 1 && last) {
      const t = line.trim();
      if (t !== '') last.push(t);
    } else fields.push([line]);
  }
  return fields.map((parts) => (parts.length === 1 ? (parts[0] as string) : [(parts[0] as string).trimEnd(), ...parts.slice(1)].join(' ')));
}

/** Serializes with a correct Content-Length (and long header names). */
export function serialize(msg: SipMessage): Buffer {
  const start = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0` : `SIP/2.0 ${msg.status} ${msg.reason}`;
  const lines = [start];
  for (const { name, value } of msg.headers.entries) if (name !== 'content-length') lines.push(`${prettyName(name)}: ${value}`);
  lines.push(`Content-Length: ${msg.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), msg.body]);
}

export const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK', 302: 'Moved Temporarily',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme', 420: 'Bad Extension', 422: 'Session Interval Too Small', 480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist',
  483: 'Too Many Hops', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here', 491: 'Request Pending',
  500: 'Server Internal Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Server Time-out', 505: 'Version Not Supported', 603: 'Decline',
};

/**
 * Builds a response to `req` (RFC 3261 §8.2.6): Via, From, To, Call-ID and
 * CSeq copied; a To tag added when absent (the dialog's, or one derived from the request).
 */
export function buildResponse(
  req: SipRequest,
  status: number,
  opts: { reason?: string; toTag?: string; headers?: Array<[string, string]>; body?: Buffer; contentType?: string } = {},
): SipResponse {
  const h = new Headers();
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) for (const v of req.headers.lines(name)) h.add(name, v);
  // A response that establishes a dialog (1xx with a tag, 2xx to an initial INVITE) carries the request's
  // Record-Route values, in order (RFC 3261 §12.1.1): the caller's in-dialog requests then go through the proxies.
  if (status > 100 && status < 300 && req.method === 'INVITE' && !/;\s*tag\s*=/i.test(req.headers.get('to') ?? '')) {
    for (const v of req.headers.lines('record-route')) h.add('record-route', v);
  }
  if (status > 100) {
    // Every response but 100 carries a To tag (RFC 3261 §8.2.6.2). Outside a dialog it is derived from the
    // request, so a retransmitted request gets the very same response.
    const to = h.get('to');
    if (to !== undefined && !/;\s*tag\s*=/i.test(to)) h.set('to', `${to};tag=${opts.toTag ?? derivedTag(req)}`);
  }
  // 100 Trying copies a Timestamp (RFC 3261 §8.2.6.1).
  const ts = req.headers.get('timestamp');
  if (status === 100 && ts !== undefined) h.add('timestamp', ts);
  for (const [k, v] of opts.headers ?? []) h.add(k, v);
  const body = opts.body ?? Buffer.alloc(0);
  if (body.length > 0 && opts.contentType) h.set('content-type', opts.contentType);
  return { kind: 'response', status, reason: opts.reason ?? REASONS[status] ?? 'Unknown', version: 'SIP/2.0', headers: h, body };
}

/** A stable To tag for a response outside a dialog: the same request (or its retransmission) gets the same tag. */
function derivedTag(req: SipRequest): string {
  const parts = ['call-id', 'from', 'cseq', 'via'].map((n) => req.headers.get(n) ?? '');
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16);
}
