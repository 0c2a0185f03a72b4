/**
 * AES_CM_128_HMAC_SHA1_32 (ingress/sip/srtp-tag32.ts over werift's _80): the key derivation werift does for it
 * against RFC 3711 Appendix B.3, AES-CM against Appendix B.2, the 32-bit tag being the first 4 bytes of the 80-bit
 * one (RFC 3711 §4.2), a round trip, and tampering (a flipped bit in the payload, the header or the tag) dropped.
 * SRTCP: ours carries the 80-bit tag; one with libre's 32-bit tag is accepted, a tampered one of either is not.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { RtpHeader, SrtpSession } from 'werift';
import { chooseCrypto, type SrtpKeys } from '../../../ingress/sip/sdes.ts';
import { SrtpContext } from '../../../ingress/sip/srtp.ts';
import { loadWerift } from '../../../ingress/werift.ts';
import { srtcpAsTag80, srtpAsTag80, truncateTag } from '../../../ingress/sip/srtp-tag32.ts';
import { buildReport, ReceiverStats } from '../../../ingress/sip/rtcp.ts';

// SrtpContext takes werift as loaded on first use (ingress/werift.ts); these peers load it up front.
await loadWerift();

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('RFC 3711 B.3: the session keys werift derives for the AES-CM suites (the _32 suite uses them unchanged)', () => {
  const master = { key: hex('E1F97A0D3E018BE0D64FA32C06DE4139'), salt: hex('0EC675AD498AFEEBB6960B3AABE6') };
  const s = new SrtpSession({ profile: 1, keys: { localMasterKey: master.key, localMasterSalt: master.salt, remoteMasterKey: master.key, remoteMasterSalt: master.salt } });
  const c = s.localContext;
  assert.equal(c.srtpSessionKey.toString('hex'), 'c61e7a93744f39ee10734afe3ff7a087', 'cipher key (label 0)');
  assert.equal(c.srtpSessionSalt.toString('hex'), '30cbbc08863d8c85d49db34a9ae1', 'cipher salt (label 2)');
  // B.3 lists 94 bytes of auth keystream; HMAC-SHA1 uses the first 160 bits.
  assert.equal(c.srtpSessionAuthTag.toString('hex'), 'cebe321f6ff7716b6fd4ab49af256a156d38baa4', 'auth key (label 1)');
});

test('RFC 3711 B.2: AES-CM keystream through werift (SSRC 0, ROC 0, seq 0)', () => {
  // Encrypting zeros yields the keystream. B.2 gives the session key and salt, so they are put into the cipher werift
  // built (the counter-mode code under test is werift's).
  const zero = { localMasterKey: Buffer.alloc(16), localMasterSalt: Buffer.alloc(14), remoteMasterKey: Buffer.alloc(16), remoteMasterSalt: Buffer.alloc(14) };
  const s = new SrtpSession({ profile: 1, keys: zero });
  const cipher = s.localContext.cipher as unknown as { srtpSessionKey: Buffer; srtpSessionSalt: Buffer };
  cipher.srtpSessionKey = hex('2B7E151628AED2A6ABF7158809CF4F3C');
  cipher.srtpSessionSalt = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD');
  const out = s.localContext.cipher.encryptRtp(RtpHeader.deSerialize(rtp(0, 0, Buffer.alloc(0))), Buffer.alloc(48), 0);
  assert.equal(out.subarray(12, 60).toString('hex'), hex('E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0').toString('hex'));
});

function rtp(seq: number, ssrc = 0x0badcafe, payload = crypto.randomBytes(160)): Buffer {
  const p = Buffer.alloc(12 + payload.length);
  p[0] = 0x80;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 160) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  payload.copy(p, 12);
  return p;
}

/** A gateway context and the far end's, for `suite`, from one SDES exchange. */
function pair(suite: 'AES_CM_128_HMAC_SHA1_32' | 'AES_CM_128_HMAC_SHA1_80'): { keys: SrtpKeys; us: SrtpContext; far: SrtpContext } {
  const c = chooseCrypto([`1 ${suite} inline:${crypto.randomBytes(30).toString('base64')}`]);
  assert.ok(c.ok);
  return { keys: c.keys, us: new SrtpContext(c.keys), far: new SrtpContext({ suite, local: c.keys.remote, remote: c.keys.local }) };
}

test('_32: the tag is the first 32 bits of the _80 tag of the same packet (same keys, same ciphertext)', () => {
  const { keys } = pair('AES_CM_128_HMAC_SHA1_32');
  const as80 = new SrtpContext({ ...keys, suite: 'AES_CM_128_HMAC_SHA1_80' });
  const as32 = new SrtpContext(keys);
  const plain = rtp(7);
  const p80 = as80.protectRtp(plain);
  const p32 = as32.protectRtp(plain);
  assert.equal(p80.length, 12 + 160 + 10);
  assert.equal(p32.length, 12 + 160 + 4);
  assert.deepEqual(p32, p80.subarray(0, p80.length - 6));
  assert.deepEqual(truncateTag(p80), p32);
});

test('_32: round trip both ways; a flipped bit in the payload, the header or the tag is dropped; the window still works', () => {
  const { us, far } = pair('AES_CM_128_HMAC_SHA1_32');
  const speech = crypto.randomBytes(160);
  const sent = far.protectRtp(rtp(100, 1, speech));
  assert.equal(sent.indexOf(speech.subarray(0, 16)), -1, 'no clear payload on the wire');
  const got = us.unprotectRtp(sent);
  assert.ok(got);
  assert.deepEqual(got.subarray(12), speech);
  assert.ok(far.unprotectRtp(us.protectRtp(rtp(9, 2))), 'the other way');

  for (const at of [20, 12 + 159, 2, 8, 12 + 160, 12 + 160 + 3]) {
    const p = Buffer.from(far.protectRtp(rtp(200 + at, 1)));
    p[at] = (p[at] as number) ^ 0x10;
    assert.equal(us.unprotectRtp(p), null, `bit flipped at byte ${at}`);
  }
  assert.equal(us.stats.authFailed, 6);
  assert.equal(us.unprotectRtp(sent), null, 'a replay is dropped');
  assert.equal(us.stats.replayed, 1);
  // An _80 packet of the same keys is not a _32 packet.
  const as80 = new SrtpContext({ ...far.keys, suite: 'AES_CM_128_HMAC_SHA1_80' });
  assert.equal(us.unprotectRtp(as80.protectRtp(rtp(300, 1))), null);
});

test('_32: rollover across 2^16 and a restarted context resuming the far end ROC', () => {
  const { us, far } = pair('AES_CM_128_HMAC_SHA1_32');
  for (let seq = 65530; seq < 65536 + 5; seq++) assert.ok(us.unprotectRtp(far.protectRtp(rtp(seq, 3))), `seq ${seq}`);
  assert.deepEqual(us.inbound(), [{ ssrc: 3, roc: 1, seq: 4 }]);
  const restarted = new SrtpContext(us.keys);
  restarted.restore(us.inbound());
  assert.ok(restarted.unprotectRtp(far.protectRtp(rtp(65536 + 50, 3))));
});

test('_32 SRTCP: ours carries the 80-bit tag; the far end’s with an 80-bit (libsrtp) or a 32-bit (libre) tag is accepted, tampered ones are not', () => {
  const { keys, us, far } = pair('AES_CM_128_HMAC_SHA1_32');
  const report = buildReport({ ssrc: 1, packets: 3, octets: 480, rtpTimestamp: 0 }, new ReceiverStats(), 'x@y', Date.now());
  const ours = us.protectRtcp(report);
  assert.equal(ours.length, report.length + 4 + 10, 'E flag + index + an 80-bit tag');
  assert.deepEqual(far.unprotectRtcp(ours), report);

  const sent80 = far.protectRtcp(report);
  assert.deepEqual(us.unprotectRtcp(sent80), report);
  // libre's form: the same packet with the tag cut to 32 bits.
  const sent32 = truncateTag(far.protectRtcp(report));
  assert.deepEqual(us.unprotectRtcp(sent32), report);
  assert.equal(us.unprotectRtcp(sent32), null, 'replayed');
  for (const p of [far.protectRtcp(report), truncateTag(far.protectRtcp(report))]) {
    const bad = Buffer.from(p);
    bad[10] = (bad[10] as number) ^ 1;
    assert.equal(us.unprotectRtcp(bad), null);
  }
  // The helper alone: a wrong key does not authenticate.
  const session = new SrtpSession({ profile: 1, keys: { localMasterKey: keys.local.key, localMasterSalt: keys.local.salt, remoteMasterKey: keys.remote.key, remoteMasterSalt: keys.remote.salt } });
  assert.equal(srtcpAsTag80(sent32, session.localContext.srtcpSessionAuthTag), null);
  assert.equal(srtpAsTag80(far.protectRtp(rtp(1, 1)), session.localContext.srtpSessionAuthTag, 0), null);
});
