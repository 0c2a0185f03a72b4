/**
 * SDES-SRTP (ingress/sip/sdes.ts, srtp.ts): a=crypto reading and suite choice, SDP offer/answer with RTP/SAVP,
 * protect/unprotect round trips through werift all three suites, replay refused, rollover across 2^16, keys sealed for
 * the store and opened after a "restart".
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { masterKeyFromBytes } from '../../../recording/master-key.ts';
import { answerSrtp, answeredCrypto, chooseCrypto, cryptoAttribute, offerCrypto, readCryptoLine, type SdesSuite, type SrtpKeys } from '../../../ingress/sip/sdes.ts';
import { estimateRoc, openKeys, ReplayWindow, sealKeys, SrtpContext } from '../../../ingress/sip/srtp.ts';
import { loadWerift } from '../../../ingress/werift.ts';
import { negotiate, offerSdp } from '../../../ingress/sip/sdp.ts';
import { OutboundConfig } from '../../../ingress/sip/outbound-config.ts';
import { buildReport, ReceiverStats } from '../../../ingress/sip/rtcp.ts';

// SrtpContext takes werift as loaded on first use (ingress/werift.ts); these peers load it up front.
await loadWerift();

const key80 = crypto.randomBytes(30).toString('base64');
const keyGcm = crypto.randomBytes(28).toString('base64');

test('a=crypto: good lines read (_32 too); bad keys, MKI, short lifetimes, session params and unknown suites refused with a reason', () => {
  const ok = readCryptoLine(`1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`);
  assert.ok(ok.ok && ok.line.key.key.length === 16 && ok.line.key.salt.length === 14);
  assert.ok(readCryptoLine(`2 AEAD_AES_128_GCM inline:${keyGcm}|2^31`).ok, 'a lifetime of 2^31 is fine');
  const short = readCryptoLine(`3 AES_CM_128_HMAC_SHA1_32 inline:${key80}`);
  assert.ok(short.ok && short.line.suite === 'AES_CM_128_HMAC_SHA1_32' && short.line.key.salt.length === 14);
  const bad: Array<[string, RegExp]> = [
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${crypto.randomBytes(29).toString('base64')}`, /30 bytes/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${keyGcm}`, /30 bytes/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!`, /base64/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${key80}|2^20`, /lifetime/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${key80}|2^31|1:4`, /MKI/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${key80} KDR=1`, /session parameters/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${key80};inline:${key80}`, /several keys/],
    [`1 AES_256_CM_HMAC_SHA1_80 inline:${key80}`, /not supported/],
    [`x AES_CM_128_HMAC_SHA1_80 inline:${key80}`, /tag/],
    [`1 AES_CM_128_HMAC_SHA1_80`, /needs/],
  ];
  for (const [line, why] of bad) {
    const r = readCryptoLine(line);
    assert.equal(r.ok, false, line);
    assert.match((r as { reason: string }).reason, why, line);
  }
});

test('suite choice: GCM before _80 before _32 whatever the offer order; the tag echoed; only _32 = _32', () => {
  const c = chooseCrypto([`1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`, `2 AES_CM_128_HMAC_SHA1_32 inline:${key80}`, `3 AEAD_AES_128_GCM inline:${keyGcm}`]);
  assert.ok(c.ok);
  assert.equal(c.tag, 3);
  assert.equal(c.keys.suite, 'AEAD_AES_128_GCM');
  assert.equal(c.keys.local.key.length + c.keys.local.salt.length, 28);
  const only80 = chooseCrypto([`7 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]);
  assert.ok(only80.ok && only80.tag === 7 && only80.keys.suite === 'AES_CM_128_HMAC_SHA1_80');
  const over32 = chooseCrypto([`2 AES_CM_128_HMAC_SHA1_32 inline:${key80}`, `5 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]);
  assert.ok(over32.ok && over32.tag === 5 && over32.keys.suite === 'AES_CM_128_HMAC_SHA1_80', '_80 preferred over _32 offered first');
  const only32 = chooseCrypto([`1 AES_CM_128_HMAC_SHA1_32 inline:${key80}`]);
  assert.ok(only32.ok && only32.tag === 1 && only32.keys.suite === 'AES_CM_128_HMAC_SHA1_32' && only32.keys.local.salt.length === 14);
  const none = chooseCrypto([`1 AES_256_CM_HMAC_SHA1_80 inline:${key80}`]);
  assert.ok(!none.ok && /AES_256_CM_HMAC_SHA1_80 is not supported/.test(none.reason));
  // Two calls never share a key.
  const again = chooseCrypto([`7 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]);
  assert.ok(again.ok && !again.keys.local.key.equals(only80.keys.local.key));
});

const offer = (proto: string, extra: string[]): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio 4000 ${proto} 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', ...extra, ''].join('\r\n');
const local = { address: '127.0.0.1', port: 5000, sessionId: 1, sessionVersion: 1 };

test('SDP: RTP/SAVP answered with RTP/SAVP and our own key; a plain offer unchanged under allow, refused under require', () => {
  const n = negotiate(offer('RTP/SAVP', [`a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]), local);
  assert.ok(n.ok);
  assert.match(n.answer, /m=audio 5000 RTP\/SAVP 0 101/);
  const line = /a=crypto:(.*)\r\n/.exec(n.answer)?.[1] ?? '';
  const ours = readCryptoLine(line);
  assert.ok(ours.ok && ours.line.tag === 4 && ours.line.suite === 'AES_CM_128_HMAC_SHA1_80');
  assert.ok(!ours.line.key.key.equals(Buffer.from(key80, 'base64').subarray(0, 16)), 'our key is not the offerer’s');
  assert.equal(n.srtp?.keys.suite, 'AES_CM_128_HMAC_SHA1_80');

  const plain = negotiate(offer('RTP/AVP', []), local);
  assert.ok(plain.ok && plain.srtp === undefined && !/crypto/.test(plain.answer) && /RTP\/AVP/.test(plain.answer));
  const required = negotiate(offer('RTP/AVP', []), local, 'require');
  assert.ok(!required.ok && /requires SRTP/.test(required.warning));

  const bad = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key80}|2^31|1:4`]), local);
  assert.ok(!bad.ok && bad.status === 488 && /MKI/.test(bad.warning));
  const savpf = negotiate(offer('RTP/SAVPF', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]), local);
  assert.ok(!savpf.ok && /^302 /.test(savpf.warning) && /SAVPF/.test(savpf.warning));
  const dtls = negotiate(offer('UDP/TLS/RTP/SAVP', ['a=fingerprint:sha-256 AA']), local);
  assert.ok(!dtls.ok && /DTLS-SRTP/.test(dtls.warning));
});

test('UAC: our offer lines, the answer must pick one of them', () => {
  const o = offerCrypto();
  assert.deepEqual(o.lines.map((l) => l.split(' ')[1]), ['AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'], '_32 listed last');
  const first = o.keys.get(1);
  assert.ok(first);
  const theirs = crypto.randomBytes(28).toString('base64');
  const a = answeredCrypto([`1 AEAD_AES_128_GCM inline:${theirs}`], o.keys);
  assert.ok(a.ok && a.keys.local.key.equals(first.key.key));
  assert.ok(!answeredCrypto([`9 AEAD_AES_128_GCM inline:${theirs}`], o.keys).ok);
  assert.ok(!answeredCrypto([], o.keys).ok);
});

function pair(suite: SdesSuite): [SrtpContext, SrtpContext] {
  const c = chooseCrypto([`1 ${suite} inline:${suite === 'AEAD_AES_128_GCM' ? keyGcm : key80}`]);
  assert.ok(c.ok);
  const mirror: SrtpKeys = { suite, local: c.keys.remote, remote: c.keys.local };
  return [new SrtpContext(c.keys), new SrtpContext(mirror)];
}

function rtp(seq: number, ssrc = 0x11223344, payload = Buffer.alloc(160, 0x55)): Buffer {
  const p = Buffer.alloc(12 + payload.length);
  p[0] = 0x80;
  p[1] = 0;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE(seq * 160, 4);
  p.writeUInt32BE(ssrc, 8);
  payload.copy(p, 12);
  return p;
}

for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM'] as const) {
  test(`${suite}: round trip both ways, payload hidden on the wire, replay and tampering refused`, () => {
    const [a, b] = pair(suite);
    const speech = crypto.randomBytes(160);
    const sent = a.protectRtp(rtp(100, 1, speech));
    assert.equal(sent.length, 12 + 160 + { AEAD_AES_128_GCM: 16, AES_CM_128_HMAC_SHA1_80: 10, AES_CM_128_HMAC_SHA1_32: 4 }[suite]);
    assert.equal(sent.indexOf(speech.subarray(0, 16)), -1, 'no clear payload on the wire');
    const got = b.unprotectRtp(sent);
    assert.ok(got);
    assert.deepEqual(got.subarray(12), speech);
    assert.equal(b.unprotectRtp(sent), null, 'a replay is dropped');
    assert.equal(b.stats.replayed, 1);
    const tampered = Buffer.from(a.protectRtp(rtp(101, 1, speech)));
    tampered[20] = (tampered[20] as number) ^ 1;
    assert.equal(b.unprotectRtp(tampered), null);
    assert.equal(b.stats.authFailed, 1);
    // Reordered but in the window: accepted once.
    const p103 = a.protectRtp(rtp(103, 1));
    const p102 = a.protectRtp(rtp(102, 1));
    assert.ok(b.unprotectRtp(p103));
    assert.ok(b.unprotectRtp(p102));
    assert.equal(b.unprotectRtp(p102), null);
    // The other way.
    assert.ok(a.unprotectRtp(b.protectRtp(rtp(5, 2))));
    // SRTCP both ways, replay refused.
    const report = buildReport({ ssrc: 1, packets: 3, octets: 480, rtpTimestamp: 0 }, new ReceiverStats(), 'x@y', Date.now());
    const sr = a.protectRtcp(report);
    assert.deepEqual(b.unprotectRtcp(sr), report);
    assert.equal(b.unprotectRtcp(sr), null);
    // Later reports (a higher SRTCP index) pass; an old one replayed does not.
    const later = Array.from({ length: 5 }, () => a.protectRtcp(report));
    for (const p of later) assert.deepEqual(b.unprotectRtcp(p), report);
    assert.equal(b.unprotectRtcp(later[2]!), null);
    // Forged packets under new SSRCs leave nothing behind.
    for (let i = 0; i < 100; i++) assert.equal(b.unprotectRtp(rtp(1, 1000 + i)), null);
    assert.ok(Object.keys((b as unknown as { rtp: { remoteContext: { srtpSSRCStates: object } } }).rtp.remoteContext.srtpSSRCStates).length <= 2);
  });

  test(`${suite}: rollover of the sequence number, and a restart resumes the far end's ROC across a gap`, () => {
    const [a, b] = pair(suite);
    for (let seq = 65530; seq < 65536 + 10; seq++) assert.ok(b.unprotectRtp(a.protectRtp(rtp(seq))), `seq ${seq}`);
    assert.deepEqual(b.inbound(), [{ ssrc: 0x11223344, roc: 1, seq: 9 }]);
    // A restart: a new context from the same keys, the stored state; the sender went on (and wrapped again) meanwhile.
    const restarted = new SrtpContext(b.keys);
    restarted.restore([{ ssrc: 0x11223344, roc: 0, seq: 65000 }]); // the last stored value was before the wrap
    for (let seq = 65536 + 200; seq < 65536 + 205; seq++) assert.ok(restarted.unprotectRtp(a.protectRtp(rtp(seq))), `after restart, seq ${seq}`);
    assert.equal(restarted.inbound()[0]?.roc, 1);
  });
}

test('replay window and ROC estimate (RFC 3711 Appendix A)', () => {
  const w = new ReplayWindow();
  w.accept(1000);
  assert.equal(w.check(1000), false);
  assert.equal(w.check(999), true);
  assert.equal(w.check(1000 - 64), false, 'older than the window');
  w.accept(1100);
  assert.equal(w.check(1000), false);
  assert.equal(estimateRoc(0, 65500, 10), 1);
  assert.equal(estimateRoc(1, 10, 65500), 0);
  assert.equal(estimateRoc(0, 10, 65500), 0);
  assert.equal(estimateRoc(2, 40000, 40001), 2);
});

test('keys sealed for the store: opened by the same master key and Call-ID only; no key bytes in the clear', () => {
  const c = chooseCrypto([`1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]);
  assert.ok(c.ok);
  const master = masterKeyFromBytes(crypto.randomBytes(32));
  const sealed = sealKeys({ tag: 1, keys: c.keys }, master, 'call-1@x', [{ ssrc: 5, roc: 2, seq: 7 }]);
  const json = JSON.stringify(sealed);
  for (const k of [c.keys.local.key, c.keys.remote.key]) {
    assert.ok(!json.includes(k.toString('base64').slice(0, 12)) && !json.includes(k.toString('hex').slice(0, 12)));
  }
  assert.notEqual(sealKeys({ tag: 1, keys: c.keys }, master, 'call-1@x').sealed.slice(0, 16), sealed.sealed.slice(0, 16), 'a fresh nonce per seal');
  const opened = openKeys(sealed, master, 'call-1@x');
  assert.ok(opened.local.key.equals(c.keys.local.key) && opened.remote.salt.equals(c.keys.remote.salt));
  assert.throws(() => openKeys(sealed, master, 'call-2@x'));
  assert.throws(() => openKeys(sealed, masterKeyFromBytes(crypto.randomBytes(32)), 'call-1@x'), /sealed with master key/);
});

test('UAC: the SRTP half of the route encryption policy asks (require = RTP/SAVP, prefer = a=crypto in RTP/AVP); the answer read against our offer', () => {
  const routes = OutboundConfig.parse({ 'secure.example': { username: 'u', password: 'p', encryption: 'allow/require' }, '*': { username: 'u', password: 'p' } });
  assert.equal(routes.routeFor('secure.example')?.encryption.srtp, 'require');
  assert.equal(routes.routeFor('other.example')?.encryption.srtp, 'allow');
  assert.throws(() => OutboundConfig.parse({ x: { username: 'u', password: 'p', encryption: 'allow/always' } }), /encryption/);

  const o = offerCrypto();
  const required = offerSdp(local, { lines: o.lines, required: true });
  assert.match(required, /m=audio 5000 RTP\/SAVP 0 8 101\r\na=crypto:1 AEAD_AES_128_GCM inline:\S+\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:\S+\r\na=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:/);
  assert.match(offerSdp(local, { lines: o.lines, required: false }), /m=audio 5000 RTP\/AVP 0 8 101\r\na=crypto:1 /);
  assert.doesNotMatch(offerSdp(local), /crypto|SAVP/);

  const theirKey = crypto.randomBytes(30);
  const theirs = { key: theirKey.subarray(0, 16), salt: theirKey.subarray(16) };
  const answer = (proto: string, lines: string[]): string => offer(proto, lines.map((l) => `a=crypto:${l}`));
  const ok = answerSrtp(answer('RTP/SAVP', [cryptoAttribute(2, 'AES_CM_128_HMAC_SHA1_80', theirs)]), { keys: o.keys, required: true });
  assert.ok(ok.ok && ok.agreed && ok.agreed.keys.suite === 'AES_CM_128_HMAC_SHA1_80' && ok.agreed.keys.remote.key.equals(theirs.key) && ok.agreed.keys.local.key.equals(o.keys.get(2)!.key.key));
  const plainRequired = answerSrtp(answer('RTP/AVP', []), { keys: o.keys, required: true });
  assert.ok(!plainRequired.ok && /required/.test(plainRequired.reason));
  const plainPreferred = answerSrtp(answer('RTP/AVP', []), { keys: o.keys, required: false });
  assert.ok(plainPreferred.ok && plainPreferred.agreed === undefined, 'best effort: a plain answer is plain RTP');
  const wrongSuite = answerSrtp(answer('RTP/SAVP', [cryptoAttribute(2, 'AEAD_AES_128_GCM', { key: theirs.key, salt: theirs.salt.subarray(0, 12) })]), { keys: o.keys, required: true });
  assert.ok(!wrongSuite.ok && /not offered/.test(wrongSuite.reason));
});

test('a re-offer in an SRTP call keeps our key when the suite is unchanged', () => {
  const first = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]), local);
  assert.ok(first.ok && first.srtp);
  const again = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]), local, 'allow', first.srtp.keys);
  assert.ok(again.ok && again.srtp && again.srtp.keys.local.key.equals(first.srtp.keys.local.key));
  const gcm = negotiate(offer('RTP/SAVP', [`a=crypto:1 AEAD_AES_128_GCM inline:${keyGcm}`]), local, 'allow', first.srtp.keys);
  assert.ok(gcm.ok && gcm.srtp && gcm.srtp.keys.suite === 'AEAD_AES_128_GCM' && gcm.srtp.keys.local.key.length === 16);
  // `prefer` answers a=crypto offered in RTP/AVP (best-effort SRTP) and echoes the profile; `allow` does not.
  const avp = offer('RTP/AVP', [`a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:${key80}`]);
  const preferred = negotiate(avp, local, 'prefer');
  assert.ok(preferred.ok && preferred.srtp && /m=audio 5000 RTP\/AVP /.test(preferred.answer) && /a=crypto:3 /.test(preferred.answer));
  const allowed = negotiate(avp, local, 'allow');
  assert.ok(allowed.ok && !allowed.srtp && !/a=crypto/.test(allowed.answer));
});
