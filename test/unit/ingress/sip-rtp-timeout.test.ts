/**
 * The RTP inactivity watch (ingress/sip/rtp-timeout.ts) driven by a fake clock and scheduler: no packet for the limit
 * ends the call (never before it, at most one tick after), packets keep it alive, a hold uses the hold limit (0 =
 * never) and a hold change starts the count again, a restart (start again) gives a full timeout, stop ends the watch;
 * and the BYE's Reason header for it. No wall-clock time is waited for.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Scheduler } from '../../../ingress/sip/client-transaction.ts';
import { byeReason, RTP_TIMEOUT_REASON, RtpInactivity, type RtpTimeoutLimits } from '../../../ingress/sip/rtp-timeout.ts';

/** A clock and a scheduler the test moves by hand. */
function fakeTime() {
  let now = 0;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const scheduler: Scheduler = {
    set: (ms, fn) => {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clear: (h) => void timers.delete(h as number),
  };
  const advance = (ms: number): void => {
    const end = now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of timers) if (e[1].at <= end && (next === null || e[1].at < next[1].at)) next = e;
      if (next === null) break;
      timers.delete(next[0]);
      now = next[1].at;
      next[1].fn();
    }
    now = end;
  };
  return { scheduler, advance, now: () => now, pending: () => timers.size };
}

function watch(limits: RtpTimeoutLimits) {
  const t = fakeTime();
  const media = { packets: 0, held: false };
  const fired: Array<{ at: number; idleMs: number; held: boolean }> = [];
  const w = new RtpInactivity(limits, { packets: () => media.packets, held: () => media.held }, (idleMs, held) => fired.push({ at: t.now(), idleMs, held }), t.scheduler, t.now);
  return { t, media, fired, w };
}

test('no RTP at all: the call ends once the limit has passed, not before, at most a tick late', () => {
  const { t, fired, w } = watch({ activeMs: 5000, holdMs: 0 });
  w.start();
  t.advance(4999);
  assert.equal(fired.length, 0);
  t.advance(1001);
  assert.equal(fired.length, 1);
  assert.ok(fired[0]!.at >= 5000 && fired[0]!.at <= 6000, `fired at ${fired[0]!.at}`);
  assert.ok(fired[0]!.idleMs >= 5000);
  assert.equal(fired[0]!.held, false);
  assert.equal(w.running, false);
  assert.equal(t.pending(), 0, 'no timer left after the timeout');
  t.advance(60_000);
  assert.equal(fired.length, 1, 'fires once');
});

test('packets keep the call alive; when they stop, the limit counts from the last one seen', () => {
  const { t, media, fired, w } = watch({ activeMs: 3000, holdMs: 0 });
  w.start();
  for (let i = 0; i < 20; i++) {
    t.advance(500);
    media.packets += 25;
  }
  assert.equal(fired.length, 0, 'a steady stream never times out');
  const lastActivity = t.now();
  t.advance(2999);
  assert.equal(fired.length, 0, 'less than the limit after the last packet');
  t.advance(5000);
  assert.equal(fired.length, 1);
  assert.ok(fired[0]!.at - lastActivity >= 3000 && fired[0]!.at - lastActivity <= 4000, `${fired[0]!.at - lastActivity} ms after the last packet`);
});

test('held by the far end with no hold limit: never ends; unheld: a full timeout from the unhold', () => {
  const { t, media, fired, w } = watch({ activeMs: 3000, holdMs: 0 });
  w.start();
  t.advance(1000);
  media.held = true;
  t.advance(600_000);
  assert.equal(fired.length, 0, 'no RTP while held is no timeout');
  assert.equal(w.running, true);
  const unheld = t.now();
  media.held = false;
  t.advance(1000); // the tick that sees the unhold
  t.advance(1999);
  assert.equal(fired.length, 0, 'the unhold starts the count again');
  t.advance(2000);
  assert.equal(fired.length, 1);
  assert.ok(fired[0]!.at - unheld >= 3000 && fired[0]!.at - unheld <= 4000);
});

test('held with a hold limit: the hold limit applies, and the timeout says it was on hold', () => {
  const { t, media, fired, w } = watch({ activeMs: 2000, holdMs: 10_000 });
  media.held = true;
  w.start();
  t.advance(9999);
  assert.equal(fired.length, 0, 'the (longer) hold limit, not the active one');
  t.advance(1001);
  assert.equal(fired.length, 1);
  assert.equal(fired[0]!.held, true);
});

test('both limits 0: no watch, no timer', () => {
  const { t, fired, w } = watch({ activeMs: 0, holdMs: 0 });
  w.start();
  assert.equal(w.running, false);
  assert.equal(t.pending(), 0);
  t.advance(3_600_000);
  assert.equal(fired.length, 0);
});

test('active limit 0, hold limit set: only a held call can time out', () => {
  const { t, media, fired, w } = watch({ activeMs: 0, holdMs: 4000 });
  w.start();
  t.advance(600_000);
  assert.equal(fired.length, 0);
  media.held = true;
  t.advance(6000);
  assert.equal(fired.length, 1);
  assert.equal(fired[0]!.held, true);
});

test('start again (a resumed leg after a restart) gives a full timeout from then; stop ends the watch', () => {
  const { t, fired, w } = watch({ activeMs: 3000, holdMs: 0 });
  w.start();
  t.advance(2500);
  w.start();
  const restarted = t.now();
  t.advance(2999);
  assert.equal(fired.length, 0, 'the time before the restart does not count');
  t.advance(1001);
  assert.equal(fired.length, 1);
  assert.ok(fired[0]!.at - restarted >= 3000);

  const second = watch({ activeMs: 3000, holdMs: 0 });
  second.w.start();
  second.t.advance(2000);
  second.w.stop();
  assert.equal(second.t.pending(), 0);
  second.t.advance(60_000);
  assert.equal(second.fired.length, 0, 'a stopped watch never fires');
});

test("the BYE's Reason: 408 \"RTP timeout\" for an RTP timeout, else cause 200 naming the end reason", () => {
  assert.equal(byeReason(RTP_TIMEOUT_REASON), 'SIP;cause=408;text="RTP timeout"');
  assert.equal(RTP_TIMEOUT_REASON, 'sip:rtp-timeout');
  assert.equal(byeReason('call ended: sip:rtp-timeout'), 'SIP;cause=408;text="RTP timeout"', 'closed by call control');
  assert.equal(byeReason('agent:hangup'), 'SIP;cause=200;text="agent:hangup"');
  assert.equal(byeReason('a "quoted" \\ one'), 'SIP;cause=200;text="a quoted  one"');
});
