/**
 * SIP grammar and serializer: compact forms, folding, repeated and comma-joined
 * headers, quoted display names with escapes, IPv6 Vias, URI escaping,
 * multipart SDP extraction, round trips; validation's refusal codes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNameAddr, parseSipUri, parseVia } from '../../../ingress/sip/headers.ts';
import { buildResponse, parseMessage, serialize, type SipRequest } from '../../../ingress/sip/message.ts';
import { sdpOf, validateRequest } from '../../../ingress/sip/validate.ts';

const msg = (lines: string[], body = ''): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
const INVITE = [
  'INVITE sip:15551234567@gw.example.com SIP/2.0',
  'v: SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bKabc;rport',
  'Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKp0',
  'f: "Alice \\"A\\" Smith" <sip:alice@example.com>;tag=a1',
  't: <sip:15551234567@gw.example.com>',
  'i: call-1@example.com',
  'CSeq: 7 INVITE',
  'Max-Forwards: 70',
  'm: <sip:alice@[2001:db8::9]:5062;transport=udp>',
  'Subject: a folded',
  '  subject line',
  'c: application/sdp',
];
const SDP = 'v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

test('parses compact forms, folding, repeated and comma-joined headers, IPv6 and escaped display names', () => {
  const p = parseMessage(msg([...INVITE, `l: ${SDP.length}`], SDP));
  assert.ok(p.ok && p.message.kind === 'request');
  const req = p.message as SipRequest;
  assert.equal(req.method, 'INVITE');
  assert.equal(req.headers.get('call-id'), 'call-1@example.com');
  assert.equal(req.headers.get('Subject'), 'a folded subject line');
  assert.deepEqual(req.headers.values('via').length, 3);
  const v = validateRequest(req, 'udp');
  assert.ok(v.ok);
  assert.equal(v.value.vias[0]?.host, '[2001:db8::9]');
  assert.equal(v.value.vias[0]?.port, 5062);
  assert.equal(v.value.vias[2]?.port, 5070);
  assert.equal(v.value.from.display, 'Alice "A" Smith');
  assert.equal(v.value.from.params.tag, 'a1');
  assert.equal(v.value.sdp, SDP);
});

test('serialize → parse round-trips headers and body, with a correct Content-Length', () => {
  const p = parseMessage(msg([...INVITE, `Content-Length: ${SDP.length}`], SDP));
  assert.ok(p.ok);
  const again = parseMessage(serialize(p.message));
  assert.ok(again.ok);
  assert.deepEqual(again.message.headers.entries, p.message.headers.entries.map((e) => e));
  assert.equal(again.message.body.toString(), SDP);
  const res = buildResponse(p.message as SipRequest, 180, { toTag: 'xyz' });
  const parsedRes = parseMessage(serialize(res));
  assert.ok(parsedRes.ok && parsedRes.message.kind === 'response');
  assert.equal(parsedRes.message.status, 180);
  assert.match(parsedRes.message.headers.get('to') ?? '', /;tag=xyz$/);
  assert.equal(parsedRes.message.headers.lines('via').length, 2, 'Vias copied in order');
});

test('header grammar: name-addr, addr-spec params, Via params, SIP URIs with escapes', () => {
  assert.deepEqual(parseNameAddr('sip:bob@example.com;tag=9'), { display: null, uri: 'sip:bob@example.com', params: { tag: '9' } });
  assert.equal(parseNameAddr('Bell, Alexander <sip:a@example.com>'), null, 'comma in an unquoted display name');
  assert.equal(parseNameAddr('"unbalanced <sip:a@example.com>'), null);
  assert.equal(parseNameAddr('caller<sip:caller@example.com>;tag=3')?.display, 'caller');
  assert.equal(parseVia('SIP/2.0/UDP 192.0.2.15;;,'), null);
  assert.equal(parseVia('SIP / 2.0 / TCP  host.example.com ; branch = z9hG4bK1')?.params.branch, 'z9hG4bK1');
  const u = parseSipUri('sip:sips%3Auser%40example.com@example.net;lr');
  assert.equal(u?.user, 'sips:user@example.com');
  assert.equal(u?.host, 'example.net');
  assert.equal(parseSipUri('sip:user;par=u%40example.net@example.com')?.user, 'user;par=u@example.net');
});

test('validation refuses with the status RFC 3261 asks for', () => {
  const status = (lines: string[], body = ''): number | 'ok' => {
    const p = parseMessage(msg(lines, body));
    assert.ok(p.ok && p.message.kind === 'request');
    const v = validateRequest(p.message as SipRequest, 'udp');
    return v.ok ? 'ok' : v.refusal.status;
  };
  const base = INVITE.filter((l) => !l.startsWith('c:'));
  assert.equal(status(base), 'ok');
  assert.equal(status([base[0]!.replace('SIP/2.0', 'SIP/3.0'), ...base.slice(1)]), 505);
  assert.equal(status(base.filter((l) => !l.startsWith('i:'))), 400);
  assert.equal(status([...base, 'Call-ID: second']), 400);
  assert.equal(status(base.map((l) => (l.startsWith('CSeq') ? 'CSeq: 7 BYE' : l))), 400);
  assert.equal(status([...base, 'Require: 100rel-ish']), 420);
  assert.equal(status([...base, 'Content-Type: text/plain', 'Content-Length: 2'], 'hi'), 415);
  assert.equal(status([...base, 'Accept: text/html']), 406);
  assert.equal(status([...base, 'Content-Length: 99'], 'short'), 400);
  assert.equal(status(['SUBSCRIBE sip:a@b SIP/2.0', ...base.slice(1).map((l) => l.replace('7 INVITE', '7 SUBSCRIBE'))]), 405);
  assert.equal(status(['FOO sip:a@b SIP/2.0', ...base.slice(1).map((l) => l.replace('7 INVITE', '7 FOO'))]), 501);
  assert.equal(status(['INVITE mailto:a@b SIP/2.0', ...base.slice(1)]), 416);
});

test('multipart bodies: the application/sdp part is found, others ignored', () => {
  const body = Buffer.from(`--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n${SDP}\r\n--b1--\r\n`);
  assert.equal(sdpOf('multipart/mixed; boundary="b1"', body), SDP);
  assert.equal(sdpOf('multipart/mixed;boundary=b2', body), null);
});

test('every response but 100 carries a To tag: the dialog\'s when given, else one derived from the request (the same for a retransmission)', () => {
  const parsed = parseMessage(msg(INVITE, SDP));
  assert.ok(parsed.ok && parsed.message.kind === 'request');
  const req = parsed.message as SipRequest;
  const tagOf = (status: number, toTag?: string) => /;tag=([^;\s]+)/.exec(buildResponse(req, status, toTag ? { toTag } : {}).headers.get('to') ?? '')?.[1];
  assert.equal(tagOf(100), undefined, '100 Trying has no To tag');
  assert.equal(tagOf(200, 'dlg1'), 'dlg1');
  const refusal = tagOf(404);
  assert.match(refusal ?? '', /^[0-9a-f]{16}$/);
  assert.equal(tagOf(404), refusal, 'a retransmitted request gets the same tag');
  const other = parseMessage(msg(INVITE.map((l) => (l.startsWith('i:') ? 'i: call-2@example.com' : l)), SDP));
  assert.ok(other.ok);
  assert.notEqual(/;tag=([^;\s]+)/.exec(buildResponse(other.message as SipRequest, 404).headers.get('to') ?? '')?.[1], refusal);
});

test('a response that establishes a dialog copies the INVITE\'s Record-Route values in order (RFC 3261 §12.1.1); others do not', () => {
  const rr = ['Record-Route: <sip:10.0.0.1:5060;lr;ftag=a1>', 'Record-Route: <sip:edge.example.com;lr>, <sip:core.example.com;lr;r2=on>'];
  const parsed = parseMessage(msg([...INVITE, ...rr], SDP));
  assert.ok(parsed.ok);
  const req = parsed.message as SipRequest;
  const routes = (r: ReturnType<typeof buildResponse>): string[] => r.headers.values('record-route');
  const expected = ['<sip:10.0.0.1:5060;lr;ftag=a1>', '<sip:edge.example.com;lr>', '<sip:core.example.com;lr;r2=on>'];
  assert.deepEqual(routes(buildResponse(req, 200, { toTag: 'd1' })), expected, '200 OK');
  assert.deepEqual(routes(buildResponse(req, 180, { toTag: 'd1' })), expected, '180 Ringing (early dialog)');
  assert.deepEqual(routes(buildResponse(req, 100)), [], '100 Trying makes no dialog');
  assert.deepEqual(routes(buildResponse(req, 486)), [], 'a failure makes no dialog');
  // a re-INVITE (To has a tag) refreshes the target, never the route set
  const reinvite = parseMessage(msg([...INVITE.map((l) => (l.startsWith('t:') ? 't: <sip:15551234567@gw.example.com>;tag=d1' : l)), ...rr], SDP));
  assert.ok(reinvite.ok);
  assert.deepEqual(routes(buildResponse(reinvite.message as SipRequest, 200)), []);
  const bye = parseMessage(msg([...INVITE.map((l) => l.replace(/INVITE/g, 'BYE')), ...rr]));
  assert.ok(bye.ok);
  assert.deepEqual(routes(buildResponse(bye.message as SipRequest, 200)), [], 'BYE');
});
