/**
 * ingress/werift.ts: werift is not there until `loadWerift()` resolves (an SRTP context built too early is an
 * error, not a silent plain call), then it is, the same module every time; which SDP asks for SRTP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadWerift, sdpWantsSrtp, werift, weriftLoaded } from '../../../ingress/werift.ts';

test('werift() before loadWerift() resolves throws; after, it is the loaded module, shared by every caller', async () => {
  assert.equal(weriftLoaded(), false);
  assert.throws(() => werift(), /werift is not loaded yet/);
  const [a, b] = await Promise.all([loadWerift(), loadWerift()]);
  assert.equal(a, b);
  assert.equal(weriftLoaded(), true);
  assert.equal(werift(), a);
  assert.equal(typeof werift().SrtpSession, 'function');
});

test('sdpWantsSrtp: an m= line in RTP/SAVP or RTP/SAVPF, or an a=crypto line (RTP/AVP under `prefer`); not plain RTP/AVP, not an empty or missing body', () => {
  assert.equal(sdpWantsSrtp('v=0\r\nm=audio 4000 RTP/SAVP 0 101\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n'), true);
  assert.equal(sdpWantsSrtp('v=0\nm=audio 4000 RTP/SAVPF 111\n'), true);
  assert.equal(sdpWantsSrtp('v=0\r\nm=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n'), true);
  assert.equal(sdpWantsSrtp('v=0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n'), false);
  assert.equal(sdpWantsSrtp('v=0\r\ns=RTP/SAVP in a session name\r\nm=audio 4000 RTP/AVP 0\r\n'), false);
  assert.equal(sdpWantsSrtp(''), false);
  assert.equal(sdpWantsSrtp(null), false);
  assert.equal(sdpWantsSrtp(undefined), false);
});
