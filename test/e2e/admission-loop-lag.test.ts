/**
 * SWITCHBOARD_MAX_LOOP_LAG_MS end to end (README "Running it", Capacity): while the event loop's delay p99 over the
 * last second exceeds the limit, new calls get the busy answer — Twilio `<Reject reason="busy"/>`, SIP `503` with
 * `Retry-After` — each refusal a `call_rejected` row; once the loop recovers, calls come in again.
 *
 * How the lag is made, deterministically and without anything in the gateway for it: the gateway runs in this test's
 * process, so it shares this process's one event loop. The test itself keeps that loop busy — a timer that spins
 * 300 ms of CPU each time it fires — so every 1 s window of the gateway's loop-delay histogram sees delays of
 * ~300 ms, far over the 100 ms limit, whatever else the machine is doing. Stopping the timer ends the lag. Nothing
 * is asserted on a duration: the test waits for the refusal, then for the recovery.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553339999';

test('SWITCHBOARD_MAX_LOOP_LAG_MS: a lagging loop answers new Twilio calls <Reject reason="busy"/> and SIP INVITEs 503 + Retry-After, writing call_rejected; calls come in again once it recovers', { timeout: 120_000 }, async (t) => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_MAX_LOOP_LAG_MS: '100' } });
  t.after(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default' }, who));
  const peers: TwilioPeer[] = [];
  t.after(async () => {
    for (const p of peers) await p.close();
  });
  /** A new Twilio call (a fresh CallSid each time); a call let in is hung up at once. */
  const dial = async (): Promise<{ kind: string; sid: string }> => {
    const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550009999' });
    peers.push(peer);
    const r = await peer.dial();
    if (r.kind === 'streaming') await peer.hangup();
    return { kind: r.kind, sid: peer.callSid };
  };
  const until = async (want: string, what: string): Promise<string> => {
    const end = Date.now() + 60_000;
    for (;;) {
      const r = await dial();
      if (r.kind === want) return r.sid;
      assert.ok(Date.now() < end, `timed out waiting for ${what} (last answer: ${r.kind})`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  // The loop is healthy: a call comes in (waited for, not assumed, on a busy machine).
  await until('streaming', 'a call admitted before the stall');

  // Stall the loop; wait for the first refusal.
  const stall = setInterval(() => {
    const end = performance.now() + 300;
    while (performance.now() < end);
  }, 10);
  t.after(() => clearInterval(stall));
  const refusedSid = await until('rejected', 'a busy answer while the loop lags');
  const rejected = [...gw.store.events()].filter((e) => e.reducer === 'call_rejected' && (e.args as { provider_call_id: string }).provider_call_id === refusedSid);
  assert.equal(rejected.length, 1);
  assert.match((rejected[0]!.args as { reason: string }).reason, /^overloaded: media loop delay p99 \d+ ms > 100 ms$/);
  assert.equal(gw.store.read('default').calls.findOne({ provider_call_id: refusedSid }), undefined, 'no call row for the refused call');

  // SIP, still lagging: 503 with Retry-After, and its call_rejected row.
  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: NUMBER });
  t.after(() => ua.close());
  const inv = await ua.invite();
  assert.equal(inv.status, 503, `statuses ${inv.statuses.join(',')}`);
  assert.match(inv.retryAfter ?? '', /^\d+/);
  assert.ok(
    [...gw.store.events()].some((e) => e.reducer === 'call_rejected' && (e.args as { provider: string; provider_call_id: string; reason: string }).provider_call_id === ua.callId && /^overloaded/.test((e.args as { reason: string }).reason)),
    'the SIP refusal is a call_rejected row',
  );

  // The loop recovers: new calls come in again.
  clearInterval(stall);
  await until('streaming', 'a call admitted after the stall');
});
