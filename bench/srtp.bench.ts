/**
 * SRTP cost per 20 ms G.711 packet (issue 24), beside plain RTP in the same run: what a SIP call's media path
 * adds when it is encrypted (ingress/sip/srtp.ts over werift). One "packet" = what one call does per 20 ms each
 * way: build our 172-byte RTP packet and protect it, and unprotect the far end's (window check, werift decrypt
 * with the estimated ROC, window accept). Baseline = the same without SRTP: build the packet and parse the far
 * end's (`parseRtp`). All three suites: AES_CM_128_HMAC_SHA1_80, _32 (werift's _80 with the tag cut to 32 bits by
 * srtp-tag32.ts: one more HMAC on receipt) and AEAD_AES_128_GCM.
 *
 *   srtp.<suite>.us_per_packet   µs for protect + unprotect of one packet pair; baseline = plain RTP build + parse.
 *                                Target ≤ 100 µs: at 50 pairs/s per call, 200 SRTP calls cost at most one core
 *   srtp.<suite>.calls_per_core  concurrent calls one core could encrypt and decrypt (50 packet pairs/s each);
 *                                baseline = the same for plain RTP
 * werift makes a cipher (and for AES-CM an HMAC) object per packet; that, not our window or ROC code, is the cost.
 *
 * Env: BENCH_SRTP_N (packets per measurement, default 20000).
 */
import crypto from 'node:crypto';
import { chooseCrypto, type SdesSuite, type SrtpKeys } from '../ingress/sip/sdes.ts';
import { parseRtp } from '../ingress/sip/rtp.ts';
import { SrtpContext } from '../ingress/sip/srtp.ts';
import { fmt, log, now, report, wanted } from './lib.ts';

const N = Number(process.env.BENCH_SRTP_N ?? 20_000);
const payload = crypto.randomBytes(160);

function packet(seq: number, ssrc: number): Buffer {
  const p = Buffer.alloc(172);
  p[0] = 0x80;
  p[1] = 8;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 160) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  payload.copy(p, 12);
  return p;
}

/** µs per packet pair for `n` pairs of `step`. */
function time(n: number, step: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 2000); i++) step(i); // warm-up
  const t0 = now();
  for (let i = 0; i < n; i++) step(i + 2000);
  return ((now() - t0) * 1000) / n;
}

function contexts(suite: SdesSuite): [SrtpContext, SrtpContext] {
  const key = crypto.randomBytes(suite === 'AEAD_AES_128_GCM' ? 28 : 30).toString('base64');
  const c = chooseCrypto([`1 ${suite} inline:${key}`]);
  if (!c.ok) throw new Error(c.reason);
  const mirror: SrtpKeys = { suite, local: c.keys.remote, remote: c.keys.local };
  return [new SrtpContext(c.keys), new SrtpContext(mirror)];
}

const plain = time(N, (i) => {
  const out = packet(i, 1);
  const far = packet(i, 2);
  if (!parseRtp(far) || out.length !== 172) throw new Error('parse');
});
log(`plain RTP build + parse: ${fmt(plain)} µs per packet pair`);

for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM'] as const) {
  if (!wanted([`srtp.${suite}.us_per_packet`, `srtp.${suite}.calls_per_core`])) continue;
  const [gateway, peer] = contexts(suite);
  // The far end's packets, protected ahead of time (its cost is not ours).
  const incoming = Array.from({ length: N + 2000 }, (_, i) => peer.protectRtp(packet(i, 2)));
  const us = time(N, (i) => {
    gateway.protectRtp(packet(i, 1));
    if (!gateway.unprotectRtp(incoming[i] as Buffer)) throw new Error('unprotect failed');
  });
  log(`${suite}: ${fmt(us)} µs per packet pair (protect + unprotect)`);
  report({ figure: `srtp.${suite}.us_per_packet`, value: us, unit: 'µs', baseline: plain, target: { op: '<=', value: 100, unit: 'µs' }, note: 'protect our 20 ms G.711 packet + unprotect the far end’s; baseline = plain RTP build + parse' });
  report({ figure: `srtp.${suite}.calls_per_core`, value: Math.floor(1e6 / (us * 50)), unit: 'calls', baseline: Math.floor(1e6 / (plain * 50)), note: '50 packet pairs/s per call' });
}
