/**
 * WebRTC ingress units: SDP offer validation (a real Chromium offer passes,
 * each defect gives its reason), Opus round trip at 16 kHz (what goes in comes
 * out, re-chunked to 20 ms whatever the packet size), RFC 4733 and data-channel
 * DTMF, and session tokens (forgery, expiry, tampering).
 */
import { Encoder } from '@evan/opus/wasm/index.mjs';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { dataChannelDigit, TelephoneEventDeduper, telephoneEventDigit } from '../../../ingress/webrtc/dtmf.ts';
import { OPUS_FRAME, OpusDecoder, OpusEncoder } from '../../../ingress/webrtc/opus.ts';
import { checkOffer, MAX_SDP_BYTES } from '../../../ingress/webrtc/sdp.ts';
import { SessionTokens } from '../../../ingress/webrtc/session-token.ts';
import { loadConfig } from '../../../cli/config/index.ts';
import type { WebrtcConfig } from '../../../ingress/webrtc/config.ts';

/** WebRTC settings as the ingress gets them: the webrtc section of the configuration. */
const webrtcConfig = (env: NodeJS.ProcessEnv): WebrtcConfig => loadConfig(env).webrtc;

/** An offer as Chromium 1xx makes it (audio + data channel), trimmed of nothing that matters. */
const CHROMIUM_OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS 5a8d',
  'm=audio 40123 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 127.0.0.1',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=candidate:1 1 udp 2113937151 127.0.0.1 40123 typ host generation 0 network-cost 999',
  'a=ice-ufrag:Xy1z',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00',
  'a=setup:actpass',
  'a=mid:0',
  'a=sendrecv',
  'a=msid:5a8d 9f2c',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:13 CN/8000',
  'a=rtpmap:110 telephone-event/48000',
  'a=rtpmap:126 telephone-event/8000',
  'a=ssrc:1234 cname:abc',
  'm=application 40123 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 127.0.0.1',
  'a=ice-ufrag:Xy1z',
  'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  'a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00',
  'a=setup:actpass',
  'a=mid:1',
  'a=sctp-port:5000',
].join('\r\n') + '\r\n';

const edit = (fn: (lines: string[]) => string[]): string => fn(CHROMIUM_OFFER.trimEnd().split('\r\n')).join('\r\n') + '\r\n';

test('a Chromium offer passes: Opus PT, both telephone-event PTs, the data channel, its candidate', () => {
  const r = checkOffer(CHROMIUM_OFFER);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.offer, { opusPayloadType: 111, dtmfPayloadTypes: [110, 126], dataChannel: true, candidates: 1 });
  assert.ok(checkOffer(CHROMIUM_OFFER.replace(/\r\n/g, '\n')).ok, 'bare LF line ends are tolerated');
});

test('each defect of an offer is refused with its reason', () => {
  const cases: Array<[unknown, RegExp]> = [
    [undefined, /SDP offer/],
    ['', /SDP offer/],
    [{ sdp: 'v=0' }, /SDP offer/],
    ['v=1\r\n', /first line must be "v=0"/],
    ['v=0\r\ns=-\r\n', /"o=" must follow/],
    ['v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nt=0 0\r\n', /"s=" must follow/],
    [edit((l) => [...l, 'garbage line']), /malformed SDP line/],
    [edit((l) => [...l, 'a=x\u0007']), /control characters/],
    ['v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n' + 'a=x\r\n'.repeat(MAX_SDP_BYTES / 4), /larger than/],
    [edit((l) => l.slice(0, l.findIndex((x) => x.startsWith('m=audio')))), /no media section/],
    [edit((l) => l.map((x) => (x.startsWith('m=audio') ? x.replace('40123', '0') : x))), /no active audio/],
    [edit((l) => [...l, 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=rtpmap:96 VP8/90000']), /video is not supported/],
    [edit((l) => l.map((x) => (x.startsWith('m=audio') ? x.replace('UDP/TLS/RTP/SAVPF', 'RTP/AVP') : x))), /DTLS-SRTP/],
    [edit((l) => l.map((x) => (x === 'a=sendrecv' ? 'a=recvonly' : x))), /sendrecv/],
    [edit((l) => l.map((x) => (x === 'a=sendrecv' ? 'a=inactive' : x))), /sendrecv/],
    [edit((l) => l.filter((x) => !x.startsWith('a=rtpmap:111'))), /opus\/48000/],
    [edit((l) => l.map((x) => (x.startsWith('m=audio') ? x.replace(' 111 ', ' ') : x))), /opus\/48000/],
    [edit((l) => l.filter((x) => !x.startsWith('a=ice-pwd'))), /ICE credentials/],
    [edit((l) => l.filter((x) => !x.startsWith('a=fingerprint'))), /fingerprint/],
    [edit((l) => l.map((x) => x.replace('a=fingerprint:sha-256', 'a=fingerprint:sha-1'))), /sha-256 or stronger/],
    [edit((l) => l.map((x) => (x === 'a=setup:actpass' ? 'a=setup:holdconn' : x))), /a=setup:holdconn/],
  ];
  for (const [sdp, reason] of cases) {
    const r = checkOffer(sdp);
    assert.equal(r.ok, false, `accepted: ${String(sdp).slice(0, 80)}`);
    if (!r.ok) assert.match(r.reason, reason);
  }
  const two = edit((l) => [...l, 'm=audio 40124 UDP/TLS/RTP/SAVPF 111', 'a=rtpmap:111 opus/48000/2']);
  assert.match((checkOffer(two) as { reason: string }).reason, /exactly one audio/);
});

/** Sum of two tones at 16 kHz: speech-band content Opus must keep. */
function tones(n: number, offset = 0): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = (offset + i) / 16000;
    out[i] = Math.round(6000 * Math.sin(2 * Math.PI * 300 * t) + 3000 * Math.sin(2 * Math.PI * 1234 * t));
  }
  return out;
}

/** Best normalised cross-correlation of `b` against `a` over lags 0..maxLag. */
function correlation(a: Int16Array, b: Int16Array, from: number, to: number, maxLag: number): number {
  let best = 0;
  for (let lag = 0; lag <= maxLag; lag++) {
    let c = 0;
    let ea = 0;
    let eb = 0;
    for (let i = from; i < to; i++) {
      const x = a[i] as number;
      const y = (b[i + lag] ?? 0) as number;
      c += x * y;
      ea += x * x;
      eb += y * y;
    }
    best = Math.max(best, c / Math.sqrt(ea * eb || 1));
  }
  return best;
}

test('Opus round trip at 16 kHz: 1 s of audio comes back as 50 frames of 320 samples, the same signal (codec delay aside)', () => {
  const enc = new OpusEncoder();
  const dec = new OpusDecoder();
  const input = tones(16000);
  const out: Int16Array[] = [];
  for (let f = 0; f < 50; f++) {
    const packet = enc.encode(input.subarray(f * OPUS_FRAME, (f + 1) * OPUS_FRAME));
    assert.ok(packet.length > 2 && packet.length < 200, `packet ${packet.length} bytes`);
    out.push(...dec.decode(packet));
  }
  assert.equal(out.length, 50);
  assert.ok(out.every((f) => f.length === OPUS_FRAME));
  const joined = new Int16Array(16000);
  out.forEach((f, i) => joined.set(f, i * OPUS_FRAME));
  const r = correlation(input, joined, 4000, 12000, 400);
  assert.ok(r > 0.9, `correlation ${r}`);
  // A short frame is zero-padded, not refused.
  assert.ok(enc.encode(new Int16Array(100)).length > 0);
  enc.close();
  dec.close();
});

test('Opus from a browser: 48 kHz-encoded 60 ms packets decode straight to 16 kHz and are re-chunked to 20 ms; a corrupt packet throws', () => {
  const browser = new Encoder({ channels: 1, sample_rate: 48000, application: 'voip' }); // as a browser encodes
  const dec = new OpusDecoder();
  const frames: Int16Array[] = [];
  for (let p = 0; p < 5; p++) {
    const pcm = new Int16Array(2880); // 60 ms at 48 kHz
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(5000 * Math.sin((2 * Math.PI * 440 * (p * 2880 + i)) / 48000));
    frames.push(...dec.decode(browser.encode(pcm)));
  }
  assert.equal(frames.length, 15, '5 × 60 ms = 15 frames of 20 ms');
  assert.ok(frames.every((f) => f.length === OPUS_FRAME));
  const last = frames.at(-1) as Int16Array;
  const rms = Math.sqrt(last.reduce((s, v) => s + v * v, 0) / last.length);
  assert.ok(rms > 2000, `the tone survives (${rms})`);
  assert.throws(() => dec.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])));
  browser.drop();
  dec.close();
});

test('DTMF: RFC 4733 events once per RTP timestamp, whatever the repeats; data-channel messages validated', () => {
  assert.equal(telephoneEventDigit(Buffer.from([1, 0x0a, 0, 160])), '1');
  assert.equal(telephoneEventDigit(Buffer.from([10, 0x8a, 0, 160])), '*');
  assert.equal(telephoneEventDigit(Buffer.from([11, 0, 0, 0])), '#');
  assert.equal(telephoneEventDigit(Buffer.from([15, 0, 0, 0])), 'D');
  assert.equal(telephoneEventDigit(Buffer.from([16, 0, 0, 0])), null, 'not a DTMF event');
  assert.equal(telephoneEventDigit(Buffer.from([1, 0])), null, 'too short');
  const d = new TelephoneEventDeduper();
  const got: string[] = [];
  for (const [ev, ts] of [[2, 1000], [2, 1000], [2, 1000], [2, 1000], [5, 9000], [5, 9000], [2, 20000]] as const) {
    const digit = d.accept(Buffer.from([ev, 0x8a, 0, 160]), ts);
    if (digit) got.push(digit);
  }
  assert.deepEqual(got, ['2', '5', '2']);
  assert.equal(dataChannelDigit('{"type":"dtmf","digit":"2"}'), '2');
  assert.equal(dataChannelDigit(Buffer.from('{"type":"dtmf","digit":"a"}')), 'A');
  for (const bad of ['{"type":"dtmf","digit":"22"}', '{"type":"dtmf","digit":"x"}', '{"type":"hello"}', 'not json', 'null', '"2"', `{"type":"dtmf","digit":"1","pad":"${'x'.repeat(300)}"}`]) {
    assert.equal(dataChannelDigit(bad), null, bad);
  }
});

test('session tokens: genuine ones verify; forged, tampered, expired or foreign-key ones do not', () => {
  let now = 1_000_000;
  const key = randomBytes(32);
  const tokens = new SessionTokens(key, () => now, 60_000);
  const t = tokens.issue({ tenant: 'default', callId: 'call_1', session: 'wrtc_x' });
  assert.match(t, /^sbw_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.deepEqual(tokens.verify(t), { tenant: 'default', callId: 'call_1', session: 'wrtc_x', expiresAt: 1_060_000 });
  const [body, sig] = t.slice(4).split('.') as [string, string];
  const other = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
  other.c = 'call_2';
  assert.equal(tokens.verify(`sbw_${Buffer.from(JSON.stringify(other)).toString('base64url')}.${sig}`), null, 'another call under the same signature');
  assert.equal(tokens.verify(t.slice(0, -2) + (t.endsWith('AA') ? 'BB' : 'AA')), null, 'tampered signature');
  assert.equal(tokens.verify(t.replace('sbw_', 'sbk_')), null);
  assert.equal(tokens.verify(`${t}.extra`), null);
  assert.equal(tokens.verify(null), null);
  assert.equal(new SessionTokens(randomBytes(32), () => now).verify(t), null, 'another data dir key');
  now += 60_001;
  assert.equal(tokens.verify(t), null, 'expired');
});

test('config: ICE-lite by default with 127.0.0.1; STUN/TURN lists and port ranges parsed; bad values refused', () => {
  assert.deepEqual(webrtcConfig({}), { iceServers: [], hostAddresses: ['127.0.0.1'], portRange: undefined, demo: true, opusComplexity: 5, resumeGraceMs: 60_000 });
  const c = webrtcConfig({ SWITCHBOARD_WEBRTC_ICE_SERVERS: 'stun:stun.example.com:3478, turn:turn.example.com', SWITCHBOARD_WEBRTC_PORTS: '40000-40100', SWITCHBOARD_WEBRTC_DEMO: 'off' });
  assert.deepEqual(c.iceServers, [{ urls: 'stun:stun.example.com:3478' }, { urls: 'turn:turn.example.com' }]);
  assert.deepEqual(c.portRange, [40000, 40100]);
  assert.equal(c.demo, false);
  const j = webrtcConfig({ SWITCHBOARD_WEBRTC_ICE_SERVERS: '[{"urls":["turns:t.example.com:443"],"username":"u","credential":"p"}]' });
  assert.deepEqual(j.iceServers, [{ urls: ['turns:t.example.com:443'], username: 'u', credential: 'p' }]);
  assert.throws(() => webrtcConfig({ SWITCHBOARD_WEBRTC_ICE_SERVERS: 'http://x' }), /stun:/);
  assert.throws(() => webrtcConfig({ SWITCHBOARD_WEBRTC_ICE_SERVERS: '[oops' }), /JSON/);
  assert.throws(() => webrtcConfig({ SWITCHBOARD_WEBRTC_PORTS: '5000-4000' }), /MIN-MAX/);
  assert.throws(() => webrtcConfig({ SWITCHBOARD_WEBRTC_HOST_ADDRESSES: 'example.com' }), /IP address/);
  assert.equal(webrtcConfig({}).opusComplexity, 5);
  assert.equal(webrtcConfig({ SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: '10' }).opusComplexity, 10);
  for (const bad of ['11', '-1', 'max', '2.5']) assert.throws(() => webrtcConfig({ SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: bad }), /OPUS_COMPLEXITY.*0 to 10/);
});

test('Opus: 300 live codec pairs in one process (a busy gateway) all keep encoding and decoding through WASM heap growth; signal intact', () => {
  const tone = (hz: number) => new Int16Array(OPUS_FRAME).map((_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 16000)));
  const first = { enc: new OpusEncoder(), dec: new OpusDecoder() };
  assert.equal(first.dec.decode(first.enc.encode(tone(440))).length, 1);
  // opusscript, used before, broke here: ~30–40 pairs grew the heap past its (mis-indexed) views.
  const pairs = Array.from({ length: 300 }, () => ({ enc: new OpusEncoder(), dec: new OpusDecoder() }));
  for (const [i, p] of [first, ...pairs].entries()) {
    let frames: Int16Array[] = [];
    for (let k = 0; k < 4; k++) frames = p.dec.decode(p.enc.encode(tone(300 + (i % 7) * 100)));
    assert.equal(frames.length, 1, `pair ${i}`);
    const mean = frames[0]!.reduce((s, x) => s + Math.abs(x), 0) / OPUS_FRAME;
    assert.ok(mean > 2000, `pair ${i}: decoded tone energy ${mean}`);
  }
  for (const p of [first, ...pairs]) (p.enc.close(), p.dec.close());
  assert.throws(() => first.enc.encode(tone(440)), /closed/);
  assert.deepEqual(first.dec.decode(new Uint8Array(3)), []);
});

test('Opus: every encoder complexity from 0 to 10 carries speech-band audio intact (the gateway defaults to 5)', () => {
  const input = new Int16Array(OPUS_FRAME * 25).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 700 * i) / 16000) + 3000 * Math.sin((2 * Math.PI * 1900 * i) / 16000)));
  for (const complexity of [0, 5, 10]) {
    const enc = new OpusEncoder({ complexity });
    const dec = new OpusDecoder();
    const out = new Int16Array(input.length);
    for (let f = 0; f < 25; f++) out.set(dec.decode(enc.encode(input.subarray(f * OPUS_FRAME, (f + 1) * OPUS_FRAME)))[0]!, f * OPUS_FRAME);
    const r = correlation(input, out, 2000, 7000, 400);
    assert.ok(r > 0.9, `complexity ${complexity}: correlation ${r}`);
    enc.close();
    dec.close();
  }
});

test('Opus: a corrupt, empty or oversized packet throws (the leg counts and drops it) and the decoder keeps working', () => {
  const enc = new OpusEncoder();
  const dec = new OpusDecoder();
  assert.throws(() => dec.decode(new Uint8Array(0)), /0 bytes/);
  assert.throws(() => dec.decode(new Uint8Array(9000)), /9000 bytes/);
  // TOC code 3 (arbitrary frame count) with a count byte of 0 frames: invalid per RFC 6716 §3.2.5.
  assert.throws(() => dec.decode(Uint8Array.of(0x03, 0x00)), /opus/i);
  const pcm = new Int16Array(OPUS_FRAME).fill(4000);
  assert.equal(dec.decode(enc.encode(pcm)).length, 1);
  // Short input is zero-padded to one 20 ms frame.
  assert.equal(dec.decode(enc.encode(new Int16Array(100))).length, 1);
  enc.close();
  dec.close();
});
