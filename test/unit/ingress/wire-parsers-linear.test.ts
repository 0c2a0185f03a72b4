/**
 * Every parser that reads bytes from the wire runs in time linear in its input,
 * on inputs built to make a backtracking pattern blow up (long whitespace runs,
 * repeated separators, unterminated quotes, folded lines…): a Via of
 * `SIP/2.0/UDP h` + 65,000 spaces + `x` once froze the event loop for ~25 s.
 *
 * Each case is run on 16 KiB and on 64 KiB of the same shape; linear code takes
 * about 4× as long on the bigger one, quadratic code 16×. The bound is generous
 * (10× the small run, plus 25 ms of slack for a busy machine's noise), so only
 * super-linear growth fails it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRange } from '../../../api/range.ts';
import { presentedToken } from '../../../api/auth/principal.ts';
import { parseDigest } from '../../../ingress/sip/digest.ts';
import { parseCSeq, parseHostPort, parseNameAddr, parseParams, parseSipUri, parseVia, splitList } from '../../../ingress/sip/headers.ts';
import { buildResponse, parseMessage, type SipRequest } from '../../../ingress/sip/message.ts';
import { readSdp } from '../../../ingress/sip/sdp-read.ts';
import { negotiate } from '../../../ingress/sip/sdp.ts';
import { sdpOf, validateRequest } from '../../../ingress/sip/validate.ts';
import { parseInbound } from '../../../ingress/twilio/messages.ts';
import { bearerToken } from '../../../ingress/vonage/jwt.ts';
import { l16Rate, parseText } from '../../../ingress/vonage/messages.ts';

const SMALL = 16 * 1024;
const BIG = 64 * 1024;

/** `unit` repeated to `n` characters (cut to length). */
const fill = (unit: string, n: number): string => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

function sipRequest(headerLines: string[], body = ''): Buffer {
  return Buffer.from(
    [
      'INVITE sip:1000@127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKlin',
      'From: <sip:a@127.0.0.1>;tag=1',
      'To: <sip:1000@127.0.0.1>',
      'Call-ID: lin@test',
      'CSeq: 1 INVITE',
      'Max-Forwards: 70',
      ...headerLines,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

/** The UAS path for one datagram: raw parse, then every check a request goes through before admission. */
function uasPath(bytes: Buffer): void {
  const p = parseMessage(bytes);
  if (p.ok && p.message.kind === 'request') validateRequest(p.message, 'udp');
}

const request = (to: string): SipRequest => {
  const p = parseMessage(sipRequest([]));
  assert.ok(p.ok && p.message.kind === 'request');
  p.message.headers.set('to', to);
  return p.message;
};

const sdpWith = (lines: string[]): string => ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', ...lines, ''].join('\r\n');
const local = { address: '127.0.0.1', port: 30000, sessionId: 1, sessionVersion: 1 };

/** name → (size → the parser run on an adversarial input of that size). */
const CASES: Record<string, (n: number) => () => unknown> = {
  // SIP (RFC 3261): the whole datagram path, then each header grammar on its own.
  'SIP datagram: Via with a long whitespace run': (n) => {
    const b = sipRequest([`Via: SIP/2.0/UDP h${fill(' ', n)}x`]);
    return () => uasPath(b);
  },
  'SIP datagram: thousands of folded continuation lines': (n) => {
    const b = sipRequest([`Subject: a`, ...Array.from({ length: Math.floor(n / 4) }, () => ' b')]);
    return () => uasPath(b);
  },
  'SIP datagram: thousands of header fields': (n) => {
    const b = sipRequest(Array.from({ length: Math.floor(n / 6) }, () => 'X: y'));
    return () => uasPath(b);
  },
  'SIP datagram: comma-separated Via list': (n) => {
    const b = sipRequest([`Via: ${fill('SIP/2.0/UDP h,', n)}`]);
    return () => uasPath(b);
  },
  'SIP datagram: one long line without a line end': (n) => {
    const b = Buffer.from(`INVITE ${fill('a', n)}`);
    return () => uasPath(b);
  },
  'parseVia: spaces around slashes, then no sent-by': (n) => () => parseVia(`SIP${fill(' ', n / 2)}/2.0${fill(' ', n / 2)}/UDP`),
  'parseVia: sent-by of spaces then a semicolon run': (n) => () => parseVia(`SIP/2.0/UDP h ${fill(' ;', n)}`),
  'parseNameAddr: display name of many tokens then a bad char': (n) => () => parseNameAddr(`${fill('a ', n)}!<sip:a@b>`),
  'parseNameAddr: unterminated quoted display name with escapes': (n) => () => parseNameAddr(`"${fill('\\"', n)}`),
  'parseNameAddr: many angle brackets': (n) => () => parseNameAddr(fill('<', n)),
  'parseParams: many empty-valued parameters': (n) => () => parseParams(fill(';a=', n)),
  'parseParams: an unterminated quoted value': (n) => () => parseParams(`;a="${fill('\\x', n)}`),
  'parseSipUri: many @ and :': (n) => () => parseSipUri(`sip:${fill('@:', n)}`),
  'parseHostPort: a long name then a bad port': (n) => () => parseHostPort(`${fill('a.', n)}:x`),
  'parseCSeq: whitespace run then junk': (n) => () => parseCSeq(`1${fill(' ', n)}x y`),
  'splitList: commas and quotes': (n) => () => splitList(fill('",', n)),
  'buildResponse: To with a semicolon then a whitespace run (tag search)': (n) => {
    const r = request(`<sip:a@b>;${fill(' ', n)}x`);
    return () => buildResponse(r, 486);
  },
  'parseDigest: many directives': (n) => () => parseDigest(`Digest ${fill('a=b,', n)}`),
  'parseDigest: an unterminated quoted value': (n) => () => parseDigest(`Digest realm="${fill('\\a', n)}`),
  'parseDigest: whitespace runs between directives': (n) => () => parseDigest(`Digest a=b${fill(' ', n)}x`),
  'sdpOf: multipart body with many part headers': (n) => {
    const body = Buffer.from(`--b\r\n${fill('content-type ', n)}\r\n\r\nx\r\n--b--`);
    return () => sdpOf('multipart/mixed;boundary=b', body);
  },
  'sdpOf: boundary parameter with a whitespace run': (n) => () => sdpOf(`multipart/mixed; boundary${fill(' ', n)}`, Buffer.from('x')),
  // SDP (RFC 4566).
  'SDP: a c= line of spaces': (n) => () => readSdp(`v=0\r\nc=IN IP4${fill(' ', n)}x\r\n`),
  'SDP: an m= line with thousands of formats': (n) => () => negotiate(['v=0', 'c=IN IP4 127.0.0.1', `m=audio 4000 RTP/AVP ${fill('96 ', n)}0`, ''].join('\r\n'), local),
  'SDP: a long rtpmap': (n) => () => negotiate(sdpWith([`a=rtpmap:0 ${fill('x/', n)}`]), local),
  'SDP: thousands of attribute lines': (n) => () => negotiate(sdpWith(Array.from({ length: Math.floor(n / 12) }, (_, i) => `a=rtpmap:${i % 128} PCMU/8000`)), local),
  'SDP: thousands of empty lines': (n) => () => readSdp(`v=0\r\n${fill('\r\n', n)}m=audio 4000 RTP/AVP 0\r\n`),
  // HTTP headers parsed by our own code.
  'HTTP Range: whitespace runs': (n) => () => parseRange(`bytes=${fill(' ', n)}1-2x`, 100),
  'HTTP Range: many ranges': (n) => () => parseRange(`bytes=${fill('1-2,', n)}`, 100),
  'HTTP Authorization (API): Bearer then a whitespace run': (n) => () => presentedToken({ headers: { authorization: `Bearer ${fill(' ', n)}a b` } }),
  'HTTP Authorization (Vonage): Bearer JWT-like junk': (n) => () => bearerToken(`Bearer ${fill('a.', n)}!`),
  'HTTP Content-Type (Vonage L16): whitespace runs': (n) => () => l16Rate(`audio/l16${fill(' ', n / 2)};${fill(' ', n / 2)}rate=1x`),
  // Media-socket messages (Twilio, Vonage).
  'Twilio media message: a long payload and nesting': (n) => {
    const text = JSON.stringify({ event: 'start', start: { streamSid: fill('M', n / 2), customParameters: { a: fill('\\', n / 2) } } });
    return () => parseInbound(text);
  },
  'Vonage text message: long strings': (n) => {
    const text = JSON.stringify({ event: 'websocket:dtmf', digit: fill('1', Math.min(n, 15 * 1024)) });
    return () => parseText(text);
  },
};

/** The fastest of `runs` timings of `fn`, in ms (the least disturbed by other work on the machine). */
function fastest(fn: () => unknown, runs: number): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    const ms = performance.now() - t0;
    best = Math.min(best, ms);
    if (ms > 2000) break; // already super-linear: no need to wait for more runs
  }
  return best;
}

test('every wire parser takes linear time on adversarial 64 KiB inputs (16 KiB vs 64 KiB, generous bound)', { timeout: 300_000 }, () => {
  const slow: string[] = [];
  const report: string[] = [];
  for (const [name, make] of Object.entries(CASES)) {
    const small = make(SMALL);
    const big = make(BIG);
    small(); // warm up (JIT)
    big();
    const ts = fastest(small, 5);
    const tb = fastest(big, 5);
    report.push(`${name}: ${ts.toFixed(2)} ms → ${tb.toFixed(2)} ms`);
    if (tb > 10 * ts + 25) slow.push(`${name}: 16 KiB ${ts.toFixed(1)} ms, 64 KiB ${tb.toFixed(1)} ms`);
  }
  assert.deepEqual(slow, [], `super-linear parsers:\n${slow.join('\n')}\n\nall:\n${report.join('\n')}`);
});
