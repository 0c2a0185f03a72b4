/**
 * Session timers (RFC 4028), reliable provisionals (RFC 3262): header grammar, the UAS's choice of interval and
 * refresher, the timer / retransmission state machines on a virtual clock, what validation now lets through, and the early-media prompt file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Scheduler } from '../../../ingress/sip/client-transaction.ts';
import { Headers } from '../../../ingress/sip/headers.ts';
import { formatRAck, parseRAck, parseRSeq, ReliableProvisional, requires100rel } from '../../../ingress/sip/prack.ts';
import { expireAfterMs, intervalAfter422, MAX_SESSION_EXPIRES, negotiateUas, parseMinSe, parseSessionExpires, refreshAfterMs, SessionTimer, timerFromAnswer, uasTimerHeaders } from '../../../ingress/sip/session-timer.ts';
import { snapshotProblem } from '../../../ingress/sip/dialog.ts';
import { loadPrompt } from '../../../ingress/sip/early-media.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { parseMessage, type SipRequest } from '../../../ingress/sip/message.ts';
import { ALLOW, SUPPORTED, validateRequest } from '../../../ingress/sip/validate.ts';

/** A virtual clock: `advance` runs what falls due, in order. */
function clock(): Scheduler & { now: number; advance(ms: number): void; pending(): number } {
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const c = {
    now: 0,
    set(ms: number, fn: () => void) {
      const id = ++seq;
      timers.set(id, { at: c.now + ms, fn });
      return id;
    },
    clear(h: unknown) {
      timers.delete(h as number);
    },
    pending: () => timers.size,
    advance(ms: number) {
      const end = c.now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        c.now = due[1].at;
        due[1].fn();
      }
      c.now = end;
    },
  };
  return c;
}

const headers = (lines: Array<[string, string]>): Headers => {
  const h = new Headers();
  for (const [n, v] of lines) h.add(n, v);
  return h;
};

test('Session-Expires: delta-seconds with an optional refresher; compact form x; malformed values are null', () => {
  assert.deepEqual(parseSessionExpires('1800'), { seconds: 1800, refresher: null });
  assert.deepEqual(parseSessionExpires(' 90 ; refresher=UAS'), { seconds: 90, refresher: 'uas' });
  assert.deepEqual(parseSessionExpires('600;foo=bar;refresher=uac'), { seconds: 600, refresher: 'uac' });
  for (const bad of ['', 'abc', '-5', '0', '90;refresher=proxy', '12345678901']) assert.equal(parseSessionExpires(bad), null, bad);
  assert.equal(parseSessionExpires(undefined), null);
  assert.deepEqual(parseSessionExpires(headers([['x', '120;refresher=uac']]).get('session-expires')), { seconds: 120, refresher: 'uac' });
});

test('Min-SE: delta-seconds with generic params; malformed is null', () => {
  assert.equal(parseMinSe('90'), 90);
  assert.equal(parseMinSe(' 120;lr'), 120);
  assert.equal(parseMinSe('x'), null);
  assert.equal(parseMinSe(undefined), null);
});

test('RSeq and RAck: numbers in 1…2³¹−1, RAck = RSeq CSeq Method', () => {
  assert.equal(parseRSeq('1'), 1);
  assert.equal(parseRSeq(' 2147483647 '), 2 ** 31 - 1);
  for (const bad of ['0', '2147483648', 'x', '', '1 2']) assert.equal(parseRSeq(bad), null, bad);
  assert.deepEqual(parseRAck('776656 1 INVITE'), { rseq: 776656, cseq: 1, method: 'INVITE' });
  assert.deepEqual(parseRAck('  5  314159  invite '), { rseq: 5, cseq: 314159, method: 'INVITE' });
  for (const bad of ['5 1', '0 1 INVITE', 'a 1 INVITE', '5 1 INVITE extra', '']) assert.equal(parseRAck(bad), null, bad);
  assert.equal(formatRAck({ rseq: 9, cseq: 2, method: 'INVITE' }), '9 2 INVITE');
  assert.equal(requires100rel(headers([['Require', 'timer, 100rel']])), true);
  assert.equal(requires100rel(headers([['Supported', '100rel']])), false);
});

test('UAS choice (RFC 4028 §9): 422 below Min-SE; the named refresher; else the UAC when it supports timers, else us', () => {
  assert.deepEqual(negotiateUas(headers([['Session-Expires', '60']]), 90), { kind: 'too-small', minSe: 90 });
  assert.deepEqual(negotiateUas(headers([['Supported', 'timer'], ['Session-Expires', '1800;refresher=uas']]), 90), { kind: 'timer', interval: 1800, refresher: 'uas', peerSupports: true });
  assert.deepEqual(negotiateUas(headers([['Supported', 'timer'], ['Session-Expires', '1800']]), 90), { kind: 'timer', interval: 1800, refresher: 'uac', peerSupports: true });
  assert.deepEqual(negotiateUas(headers([['Session-Expires', '1800']]), 90), { kind: 'timer', interval: 1800, refresher: 'uas', peerSupports: false });
  assert.deepEqual(negotiateUas(headers([]), 90), { kind: 'none' });
  const d = negotiateUas(headers([['Supported', 'timer']]), 90);
  assert.deepEqual(d, { kind: 'timer', interval: 1800, refresher: 'uac', peerSupports: true });
  assert.deepEqual(uasTimerHeaders(d), [['Session-Expires', '1800;refresher=uac'], ['Require', 'timer']]);
  assert.deepEqual(uasTimerHeaders(negotiateUas(headers([['Session-Expires', '600']]), 90)), [['Session-Expires', '600;refresher=uas']]);
  assert.deepEqual(uasTimerHeaders({ kind: 'none' }), []);
});

test('UAC reading a 2xx (RFC 4028 §7.2): its Session-Expires; no refresher named = the UAC', () => {
  assert.deepEqual(timerFromAnswer(headers([['Session-Expires', '900;refresher=uas']])), { interval: 900, refresher: 'uas' });
  assert.deepEqual(timerFromAnswer(headers([['Session-Expires', '900']])), { interval: 900, refresher: 'uac' });
  assert.equal(timerFromAnswer(headers([])), null);
});

test('SessionTimer as refresher: refresh at half the interval, again after each refresh; stop cancels', () => {
  const c = clock();
  const seen: string[] = [];
  const t = new SessionTimer({ refresh: () => seen.push(`refresh@${c.now}`), expire: () => seen.push(`expire@${c.now}`) }, c);
  t.refreshed(90, true);
  assert.equal(t.state, 'refreshing');
  c.advance(refreshAfterMs(90) - 1);
  assert.deepEqual(seen, []);
  c.advance(1);
  assert.deepEqual(seen, ['refresh@45000']);
  t.refreshed(90, true); // the refresh's 2xx
  c.advance(45_000);
  assert.deepEqual(seen, ['refresh@45000', 'refresh@90000']);
  t.stop();
  c.advance(1_000_000);
  assert.equal(seen.length, 2);
  assert.equal(t.state, 'stopped');
  assert.equal(c.pending(), 0);
});

test('SessionTimer watching the peer: expiry at interval − min(32, interval/3) unless a refresh restarts it', () => {
  const c = clock();
  const seen: string[] = [];
  const t = new SessionTimer({ refresh: () => seen.push('refresh'), expire: () => seen.push(`expire@${c.now}`) }, c);
  assert.equal(expireAfterMs(90), 60_000);
  assert.equal(expireAfterMs(1800), 1_768_000);
  t.refreshed(90, false);
  assert.equal(t.state, 'watching');
  c.advance(50_000);
  t.refreshed(90, false); // the peer's refresh arrived
  c.advance(59_999);
  assert.deepEqual(seen, []);
  c.advance(1);
  assert.deepEqual(seen, ['expire@110000']);
  assert.equal(t.state, 'stopped');
  // Roles can swap on a refresh: watching ─► refreshing.
  t.refreshed(90, false);
  t.refreshed(90, true);
  c.advance(45_000);
  assert.deepEqual(seen, ['expire@110000', 'refresh']);
});

test('ReliableProvisional: sent at once, resent at T1, 2·T1, 4·T1 … until its PRACK; a wrong RAck does not match', async () => {
  const c = clock();
  const sent: number[] = [];
  const r = new ReliableProvisional(77, 1, () => sent.push(c.now), 500, c);
  c.advance(3500);
  assert.deepEqual(sent, [0, 500, 1500, 3500]);
  assert.equal(r.prack({ rseq: 78, cseq: 1, method: 'INVITE' }), false);
  assert.equal(r.prack({ rseq: 77, cseq: 2, method: 'INVITE' }), false);
  assert.equal(r.prack({ rseq: 77, cseq: 1, method: 'INVITE' }), true);
  assert.equal(r.prack({ rseq: 77, cseq: 1, method: 'INVITE' }), true, 'a retransmitted PRACK matches again (answered 200)');
  assert.equal(await r.settled, true);
  c.advance(100_000);
  assert.equal(sent.length, 4);
  assert.equal(r.state, 'acked');
});

test('ReliableProvisional: no PRACK within 64·T1 ─► gave up (settles false); stop() settles false at once', async () => {
  const c = clock();
  const r = new ReliableProvisional(5, 1, () => undefined, 500, c);
  c.advance(64 * 500 - 1);
  assert.equal(r.state, 'unacked');
  c.advance(1);
  assert.equal(r.state, 'gave-up');
  assert.equal(await r.settled, false);
  assert.equal(c.pending(), 0);
  const s = new ReliableProvisional(6, 1, () => undefined, 500, c);
  s.stop();
  assert.equal(await s.settled, false);
  assert.equal(s.state, 'stopped');
  assert.equal(s.prack({ rseq: 6, cseq: 1, method: 'INVITE' }), false);
});

test('dialog snapshots: a stored session timer must be usable; absent is fine (older snapshots)', () => {
  const base = {
    callId: 'c', localTag: 'l', remoteTag: 'r', localUri: '<sip:a@b>', remoteUri: '<sip:c@d>', remoteTarget: 'sip:c@127.0.0.1', routeSet: [],
    localCseq: 1, remoteCseq: 1, transport: 'udp', peer: { address: '127.0.0.1', port: 5060 }, rtpPort: 20000, remoteMedia: { address: '127.0.0.1', port: 4000 },
    codec: 'PCMU', payloadType: 0, eventPayloadType: 101, sdpSession: 1, sdpVersion: 1,
  };
  assert.equal(snapshotProblem(base), null);
  assert.equal(snapshotProblem({ ...base, sessionTimer: { interval: 1800, weRefresh: true }, peerAllowsUpdate: true }), null);
  assert.equal(snapshotProblem({ ...base, sessionTimer: { interval: 0, weRefresh: true } }), 'session timer is not usable');
  assert.equal(snapshotProblem({ ...base, sessionTimer: { interval: 90, weRefresh: 'yes' } }), 'session timer is not usable');
  assert.equal(snapshotProblem({ ...base, peerAllowsUpdate: 1 }), 'peerAllowsUpdate is not usable');
});

test('validation: PRACK and UPDATE are methods we take, Require: 100rel and timer are supported, an UPDATE carries its SDP', () => {
  const req = (method: string, extra: string[] = [], body = ''): ReturnType<typeof validateRequest> => {
    const lines = [`${method} sip:1@gw.example.com SIP/2.0`, 'Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKx', 'From: <sip:a@example.com>;tag=a1', 'To: <sip:1@gw.example.com>;tag=b2', 'Call-ID: c1', `CSeq: 2 ${method}`, ...extra, `Content-Length: ${body.length}`];
    const p = parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`));
    assert.ok(p.ok && p.message.kind === 'request');
    return validateRequest(p.message as SipRequest, 'udp');
  };
  assert.ok(req('PRACK', ['RAck: 1 1 INVITE']).ok);
  assert.ok(req('INVITE', ['Require: 100rel, timer']).ok);
  const sdp = 'v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const u = req('UPDATE', ['Content-Type: application/sdp'], sdp);
  assert.ok(u.ok && u.value.sdp === sdp);
  const bad = req('UPDATE', ['Content-Type: text/plain'], 'hi');
  assert.ok(!bad.ok && bad.refusal.status === 415);
  assert.ok(ALLOW.includes('PRACK') && ALLOW.includes('UPDATE'));
  assert.deepEqual([...SUPPORTED], ['timer', '100rel']);
});

test('early media prompt: a 16-bit mono 8 kHz PCM WAV is read; anything else stops the start naming the variable', () => {
  const dir = tmpDir('sb-prompt-');
  const wav = (channels: number, rate: number, samples: number[]): Buffer => {
    const data = Buffer.alloc(2 * samples.length);
    samples.forEach((v, i) => data.writeInt16LE(v, 2 * i));
    const h = Buffer.alloc(44);
    h.write('RIFF', 0, 'latin1');
    h.writeUInt32LE(36 + data.length, 4);
    h.write('WAVEfmt ', 8, 'latin1');
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20);
    h.writeUInt16LE(channels, 22);
    h.writeUInt32LE(rate, 24);
    h.writeUInt32LE(rate * 2 * channels, 28);
    h.writeUInt16LE(2 * channels, 32);
    h.writeUInt16LE(16, 34);
    h.write('data', 36, 'latin1');
    h.writeUInt32LE(data.length, 40);
    return Buffer.concat([h, data]);
  };
  const file = (name: string, b: Buffer): string => {
    fs.writeFileSync(path.join(dir, name), b);
    return path.join(dir, name);
  };
  assert.deepEqual([...loadPrompt(file('ok.wav', wav(1, 8000, [1, -2, 300])))], [1, -2, 300]);
  assert.throws(() => loadPrompt(file('stereo.wav', wav(2, 8000, [1, 2]))), /SWITCHBOARD_SIP_EARLY_MEDIA: .*16-bit PCM, mono, 8000 Hz/);
  assert.throws(() => loadPrompt(file('wide.wav', wav(1, 16000, [1, 2]))), /SWITCHBOARD_SIP_EARLY_MEDIA: .*16-bit PCM, mono, 8000 Hz/);
  assert.throws(() => loadPrompt(file('text.wav', Buffer.from('not audio at all'))), /SWITCHBOARD_SIP_EARLY_MEDIA: .*not a WAV file/);
  assert.throws(() => loadPrompt(path.join(dir, 'missing.wav')), /SWITCHBOARD_SIP_EARLY_MEDIA: .*cannot be read \(ENOENT\)/);
});

test('RFC 4028 §7.4, a 422 to our INVITE: sent again at the Min-SE (never lower than ours); not again after a retry, nor for a missing, malformed or absurd Min-SE', () => {
  assert.equal(intervalAfter422(1800, '3600', false), 3600);
  assert.equal(intervalAfter422(1800, '600;lr', false), 1800, 'a Min-SE below our interval leaves it as it was');
  assert.equal(intervalAfter422(3600, '7200', true), null, 'one retry only');
  assert.equal(intervalAfter422(1800, undefined, false), null);
  assert.equal(intervalAfter422(1800, 'soon', false), null);
  assert.equal(intervalAfter422(1800, String(MAX_SESSION_EXPIRES + 1), false), null);
  assert.equal(intervalAfter422(1800, String(MAX_SESSION_EXPIRES), false), MAX_SESSION_EXPIRES);
});
