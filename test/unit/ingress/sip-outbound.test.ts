/**
 * The pieces of outbound calling that need no network: SWITCHBOARD_SIP_OUTBOUND
 * parsing and host matching, the client digest answer (checked by our own
 * server-side verifier), the end reasons of failed calls, and the UAC dialog a
 * 2xx creates (route set reversed, remote target, the ACK's CSeq).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../cli/config/index.ts';
import { Dialog } from '../../../ingress/sip/dialog.ts';
import { answerChallenge, DigestVerifier, digestResponse, ha1Of, NonceMint, parseDigest } from '../../../ingress/sip/digest.ts';
import { endReasonFor } from '../../../ingress/sip/end-reasons.ts';
import { Headers } from '../../../ingress/sip/headers.ts';
import { OutboundConfig, OutboundConfigError } from '../../../ingress/sip/outbound-config.ts';
import { tmpDir } from '../../helpers/tmp.ts';

test('SWITCHBOARD_SIP_OUTBOUND: hosts match exactly, then by parent domain (longest), then *; passwords stay out of describe()', () => {
  const c = OutboundConfig.parse({
    'pbx.example.com': { username: 'a', password: 'secret-a' },
    'example.com': { username: 'b', password: 'secret-b', proxy: '10.0.0.5:5080;transport=tcp', from_domain: 'example.com' },
    '*': { username: 'c', password: 'secret-c' },
  });
  assert.equal(c.routeFor('PBX.example.com')?.username, 'a');
  assert.equal(c.routeFor('sip.example.com')?.username, 'b');
  assert.deepEqual(c.routeFor('a.b.example.com')?.proxy, { host: '10.0.0.5', port: 5080, transport: 'tcp' });
  assert.equal(c.routeFor('a.b.example.com')?.fromDomain, 'example.com');
  assert.equal(c.routeFor('other.org')?.username, 'c');
  assert.equal(c.routeFor('notexample.com')?.username, 'c', 'a suffix match is by whole labels');
  assert.equal(OutboundConfig.parse({ 'x.org': { username: 'u', password: 'p' } }).routeFor('y.org'), null);
  assert.doesNotMatch(c.describe(), /secret/);
  assert.match(c.describe(), /pbx\.example\.com→a/);
  assert.equal(loadConfig({}).sip.outbound.size, 0);
});

test('SWITCHBOARD_SIP_OUTBOUND: a bad file stops the start naming the variable and the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ 'pbx.example.com': { username: 'a' } }, /pbx\.example\.com\.password/],
    [{ 'pbx.example.com': { username: 'a', password: 'p', proxy: 'not a host' } }, /proxy: host\[:port\]/],
    [{ 'pbx.example.com': { username: 'a b', password: 'p' } }, /username: no spaces/],
    [{ "bad host!": { username: "a", password: "p" } }, /"bad host!": a key is a host name, an IP address or \*/],
    [{ 'x.org': { username: 'a', password: 'p', secret: 1 } }, /secret/],
    [[1, 2], /SWITCHBOARD_SIP_OUTBOUND/],
  ];
  for (const [json, re] of bad) {
    assert.throws(() => OutboundConfig.parse(json), (err: unknown) => err instanceof OutboundConfigError && /^SWITCHBOARD_SIP_OUTBOUND/.test(err.message) && re.test(err.message), JSON.stringify(json));
  }
  const dir = tmpDir('sb-outbound-cfg-');
  const file = path.join(dir, 'o.json');
  fs.writeFileSync(file, '{ not json');
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_OUTBOUND: file }), /SWITCHBOARD_SIP_OUTBOUND: cannot read .*o\.json as JSON/);
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_OUTBOUND: path.join(dir, 'missing.json') }), /SWITCHBOARD_SIP_OUTBOUND: cannot read/);
});

test('digest client: the answer to our own server challenge verifies (MD5, qop=auth, nc, cnonce, opaque echoed); a wrong password does not', () => {
  const verifier = new DigestVerifier('switchboard.test', new Map([['agent7', ha1Of('agent7', 'switchboard.test', 'right-password')]]), new NonceMint(crypto.randomBytes(32)));
  const challenge = `${verifier.challenge(false)}, opaque="xyz"`;
  const uri = 'sip:bob@127.0.0.1:5070';
  const good = answerChallenge(challenge, { username: 'agent7', password: 'right-password', method: 'INVITE', uri });
  assert.ok(good.ok);
  const p = parseDigest(good.header)!;
  assert.equal(p.qop, 'auth');
  assert.equal(p.nc, '00000001');
  assert.match(p.cnonce ?? '', /^[0-9a-f]{16}$/);
  assert.equal(p.opaque, 'xyz');
  assert.equal(p.uri, uri);
  assert.doesNotMatch(good.header, /right-password/);
  assert.deepEqual(verifier.verify({ method: 'INVITE', uri, authorizations: [good.header] }), { ok: true, username: 'agent7' });
  const wrong = answerChallenge(verifier.challenge(false), { username: 'agent7', password: 'wrong', method: 'INVITE', uri });
  assert.ok(wrong.ok);
  assert.equal(verifier.verify({ method: 'INVITE', uri, authorizations: [wrong.header] }).ok, false);
});

test('digest client: RFC 2069 form without qop; SHA-256, auth-int only, or a challenge without a nonce are refused', () => {
  const a = answerChallenge('Digest realm="r", nonce="n1"', { username: 'u', password: 'p', method: 'INVITE', uri: 'sip:x@h' });
  assert.ok(a.ok);
  const p = parseDigest(a.header)!;
  assert.equal(p.qop, undefined);
  assert.equal(p.response, digestResponse({ ha1: ha1Of('u', 'r', 'p'), method: 'INVITE', uri: 'sip:x@h', nonce: 'n1' }));
  assert.match(JSON.stringify(answerChallenge('Digest realm="r", nonce="n", algorithm=SHA-256', { username: 'u', password: 'p', method: 'INVITE', uri: 'sip:x@h' })), /SHA-256 is not supported/);
  assert.match(JSON.stringify(answerChallenge('Digest realm="r", nonce="n", qop="auth-int"', { username: 'u', password: 'p', method: 'INVITE', uri: 'sip:x@h' })), /auth-int is not supported/);
  assert.match(JSON.stringify(answerChallenge('Digest realm="r"', { username: 'u', password: 'p', method: 'INVITE', uri: 'sip:x@h' })), /no realm or nonce/);
  assert.match(JSON.stringify(answerChallenge('Basic realm="r"', { username: 'u', password: 'p', method: 'INVITE', uri: 'sip:x@h' })), /not a Digest/);
});

test('end reasons of unanswered outbound calls', () => {
  assert.equal(endReasonFor(486), 'sip:busy');
  assert.equal(endReasonFor(600), 'sip:busy');
  assert.equal(endReasonFor(603), 'sip:declined');
  assert.equal(endReasonFor(404), 'sip:not-found');
  assert.equal(endReasonFor(480), 'sip:unavailable');
  assert.equal(endReasonFor(407), 'sip:auth-failed');
  assert.equal(endReasonFor(302), 'sip:redirected-302');
  assert.equal(endReasonFor(503), 'sip:server-error-503');
  assert.equal(endReasonFor(415), 'sip:rejected-415');
});

test('UAC dialog from a 2xx: remote tag from To, target from Contact, Record-Route reversed; the ACK keeps the INVITE CSeq, BYE takes the next', () => {
  const h = new Headers();
  h.add('to', '<sip:bob@pbx.example>;tag=far');
  h.add('contact', '<sip:bob@192.0.2.10:5070>');
  h.add('record-route', '<sip:p2.example;lr>, <sip:p1.example;lr>');
  const media = { rtpPort: 31000, remoteMedia: { address: '192.0.2.10', port: 4000 }, codec: 'PCMU' as const, payloadType: 0, eventPayloadType: 101, sdpSession: 1, sdpVersion: 1 };
  const d = Dialog.fromAnswer({ headers: h }, { callId: 'c1', localTag: 'near', localUri: '<sip:+1555@10.0.0.1>', remoteUri: '<sip:bob@pbx.example>', requestUri: 'sip:bob@pbx.example', cseq: 2 }, { transport: 'udp', address: '192.0.2.1', port: 5060 }, media);
  assert.equal(d.snap.remoteTag, 'far');
  assert.equal(d.snap.remoteTarget, 'sip:bob@192.0.2.10:5070');
  assert.deepEqual(d.snap.routeSet, ['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
  const ack = d.request('ACK', 'SIP/2.0/UDP 10.0.0.1:5060', { cseq: 2 });
  assert.equal(ack.req.headers.get('cseq'), '2 ACK');
  assert.equal(ack.req.uri, 'sip:bob@192.0.2.10:5070');
  assert.deepEqual(ack.req.headers.lines('route'), ['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
  assert.equal(ack.req.headers.get('from'), '<sip:+1555@10.0.0.1>;tag=near');
  assert.equal(ack.req.headers.get('to'), '<sip:bob@pbx.example>;tag=far');
  const bye = d.request('BYE', 'SIP/2.0/UDP 10.0.0.1:5060');
  assert.equal(bye.req.headers.get('cseq'), '3 BYE');
});
