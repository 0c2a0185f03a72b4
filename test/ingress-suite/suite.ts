/**
 * One set of end-to-end cases, run against every ingress adapter's driver
 * (driver.ts): what an adapter must do whatever the provider. Each case starts
 * its own in-process gateway; the provider-specific checks (wire formats,
 * TwiML/NCCO contents, leg stats) stay in each provider's own e2e file.
 *
 *   import { runIngressSuite } from '../ingress-suite/suite.ts';
 *   runIngressSuite(twilioDriver);
 */
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import type { DriverCall, IngressDriver, Support, TestGateway } from './driver.ts';
import type { ArgsOf } from '../../store/index.ts';
import { agent_paused, agent_resumed, consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15557010000';
const UNKNOWN = '+15550000404';
/** Generous: two cores shared with other real-time tests. */
const T = { short: 10_000, turn: 20_000 };

/** A consent policy's fields beyond its name (the reducer's own argument type). */
type Policy = Omit<ArgsOf<typeof consent_policy_created>, 'name'>;
const NOTIFY: Policy = { mode: 'notify', disclosure_text: 'Recorded line.' };
const OPT_IN: Policy = { mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 6000, retries: 1 };

/** Skips the case with the driver's reason when it does not apply to the adapter. */
function skipped(t: TestContext, support: Support | undefined): boolean {
  if (support === undefined || support === true) return false;
  t.skip(support.unsupported);
  return true;
}

export function runIngressSuite(driver: IngressDriver): void {
  describe(`ingress suite: ${driver.name}`, () => {
    const open: Array<() => Promise<void> | void> = [];
    after(async () => {
      for (const c of open.splice(0).reverse()) await c();
    });

    async function gateway(policy: Policy = NOTIFY, env: Record<string, string> = {}): Promise<TestGateway> {
      const base = driver.gatewayOptions ?? {};
      const gw = await startTestGateway({ ...base, env: { ...base.env, ...env } });
      open.push(() => gw.stop());
      const who = { tenant: 'default', caller: 'test' };
      const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'suite', ...policy }, who));
      resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: driver.provider, consent_policy_id: p.policy_id }, who));
      return gw;
    }
    function caller(gw: TestGateway, to = NUMBER): DriverCall {
      const c = driver.call(gw, to);
      open.push(() => c.close());
      return c;
    }
    const read = (gw: TestGateway) => gw.store.read('default');
    const callOf = (gw: TestGateway, c: DriverCall) => read(gw).calls.findOne({ provider: driver.provider, provider_call_id: c.providerCallId });
    const actions = (gw: TestGateway, callId: string) => read(gw).agent_actions.find({ call_id: callId });
    const succeeded = (gw: TestGateway, callId: string): number => actions(gw, callId).filter((a) => a.status === 'succeeded').length;
    /** An agent action's result, read through the API. */
    async function sayResult(gw: TestGateway, callId: string, requestId: string): Promise<unknown> {
      const res = await fetch(`${gw.publicUrl}/v1/calls/${callId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { agent_actions: Array<{ request_id: string; result: unknown }> };
      return body.agent_actions.find((a) => a.request_id === requestId)?.result;
    }
    /** The call's turn-taking decisions (schema/turn-taking.ts: metadata, no words), in order. */
    const decisions = (gw: TestGateway, callId: string): string[] => read(gw).turn_decisions.find({ call_id: callId }).sort((a, b) => a.decided_at - b.decided_at).map((d) => d.decision);
    const reducers = (gw: TestGateway): string[] => [...gw.store.events()].map((e) => e.reducer);
    /** Hangs up and lets the session and its recording settle, so stopping the gateway races nothing. */
    async function endCall(gw: TestGateway, c: DriverCall): Promise<void> {
      await c.hangup();
      await c.waitFor(() => callOf(gw, c)?.state === 'ended', T.short, 'the call ended');
      await c.waitFor(() => gw.calls.size === 0, T.short, 'the media session closed');
      await gw.recordings.idle();
    }

    test('a full call: answered, disclosure and DTMF consent, the agent greets audibly, answers a spoken turn and a DTMF, hang-up ends it with one call row', { timeout: 90_000 }, async () => {
      const gw = await gateway(OPT_IN);
      const c = caller(gw);
      assert.deepEqual(await c.dial(), { kind: 'streaming' });
      await c.waitFor(() => callOf(gw, c)?.consent_id != null, T.short, 'consent started');
      await c.waitFor(() => c.receivedMs() > 500, T.short, 'the disclosure is playing');
      assert.ok(c.receivedEnergy() > 100, `the disclosure is audible (energy ${c.receivedEnergy().toFixed(0)})`);
      c.sendDtmf('1');
      const call = () => callOf(gw, c)!;
      const consent = () => read(gw).consents.get(call().consent_id!);
      await c.waitFor(() => consent()?.outcome === 'granted', T.short, 'consent granted by DTMF');
      assert.equal(consent()?.method, 'dtmf');
      const atGrant = c.receivedMs();
      await c.waitFor(() => succeeded(gw, call().id) >= 1, T.turn, 'the greeting played');
      const greeting = c.receivedEnergy(atGrant);
      assert.ok(greeting > 100, `the greeting is audible, not silence (energy ${greeting.toFixed(0)})`);

      await c.speak('I would like to pay my bill');
      await c.waitFor(() => succeeded(gw, call().id) >= 2, T.turn, 'the agent answered the spoken turn');
      c.sendDtmf('3');
      await c.waitFor(() => actions(gw, call().id).some((a) => JSON.stringify(a.args).includes('pressed 3')), T.turn, 'the agent answered the DTMF');

      await endCall(gw, c);
      assert.equal(call().end_reason, driver.hangupReason);
      assert.equal(read(gw).calls.find().length, 1, 'one call row');
      const order = reducers(gw);
      for (const r of ['call_received', 'call_answered', 'call_media_connected', 'consent_started', 'consent_decided', 'agent_turn_started', 'agent_action_requested', 'agent_state_saved', 'call_ended']) {
        assert.ok(order.includes(r), `${r} logged`);
      }
      assert.ok(order.indexOf('call_received') < order.indexOf('call_media_connected'));
      assert.ok(order.indexOf('consent_decided') < order.indexOf('agent_turn_started'), 'no agent turn before the consent decision');
      assert.equal(c.protocolErrors.length, 0, c.protocolErrors.join('; '));
      assert.ok(gw.store.verify().ok);
      assert.ok(gw.store.replay().ok);
    });

    test('an unknown number is refused and logged as call_rejected; no call row', { timeout: 30_000 }, async () => {
      const gw = await gateway();
      const c = caller(gw, UNKNOWN);
      assert.deepEqual(await c.dial(), { kind: 'refused' });
      const rejected = [...gw.store.events()].filter((e) => e.reducer === 'call_rejected');
      assert.equal(rejected.length, 1);
      const args = rejected[0]!.args as { provider: string; to: string };
      assert.deepEqual([args.provider, args.to], [driver.provider, UNKNOWN]);
      assert.equal(gw.store.read(null).calls.find().length, 0);
    });

    test("at the node's call limit a new call gets the provider's busy answer and a call_rejected row; the live call carries on; once it ends calls come in again", { timeout: 90_000 }, async () => {
      const gw = await gateway(NOTIFY, { SWITCHBOARD_MAX_CALLS: '1' });
      const a = caller(gw);
      assert.deepEqual(await a.dial(), { kind: 'streaming' });
      const b = caller(gw);
      assert.deepEqual(await b.dial(), { kind: 'busy' });
      const rejected = [...gw.store.events()].filter((e) => e.reducer === 'call_rejected');
      assert.equal(rejected.length, 1);
      assert.match((rejected[0]!.args as { reason: string }).reason, /^over_capacity: 1 live calls, limit 1$/);
      assert.equal(callOf(gw, b), undefined, 'no call row for the refused call');
      const callA = callOf(gw, a)!;
      await a.waitFor(() => succeeded(gw, callA.id) >= 1, T.turn, 'the live call was greeted');
      a.sendDtmf('5');
      await a.waitFor(() => actions(gw, callA.id).some((x) => JSON.stringify(x.args).includes('pressed 5')), T.turn, 'the live call still has its agent');
      await endCall(gw, a);
      const c = caller(gw);
      assert.deepEqual(await c.dial(), { kind: 'streaming' }, 'a call comes in once the first has ended');
      await endCall(gw, c);
    });

    test('forged requests (unsigned or wrongly signed webhooks and media upgrades, failed trunk auth, forged tokens) are refused and nothing is written', { timeout: 30_000 }, async () => {
      const gw = await gateway();
      const head = gw.store.head.seq;
      const results = await driver.forgedRequests(gw, NUMBER);
      assert.ok(results.length >= 4);
      for (const r of results) {
        const expected = r.expected ?? 403;
        assert.ok(expected >= 400 && expected < 500, `${r.what}: a refusal is a 4xx (${expected})`);
        assert.equal(r.status, expected, r.what);
      }
      assert.equal(gw.store.head.seq, head, 'nothing written');
      assert.equal(gw.store.read(null).calls.find().length, 0);
    });

    test('the provider retrying the answer webhook makes one call row', { timeout: 30_000 }, async (t) => {
      if (skipped(t, driver.supports?.retriedAnswer)) return;
      const gw = await gateway();
      const { statuses, providerCallId } = await driver.retriedAnswer(gw, NUMBER, 3);
      assert.deepEqual(statuses, [200, 200, 200], 'each delivery is answered with the media instructions');
      const rows = read(gw).calls.find();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.provider_call_id, providerCallId);
      assert.equal(reducers(gw).filter((r) => r === 'call_resume_requested').length, 0, 'a retry before media is not a resume');
    });

    test('media dropped by the network: the same call resumes on a new stream, the agent carries on', { timeout: 60_000 }, async (t) => {
      if (skipped(t, driver.supports?.mediaResume)) return;
      const gw = await gateway();
      const c = caller(gw);
      assert.deepEqual(await c.dial(), { kind: 'streaming' });
      await c.waitFor(() => callOf(gw, c)?.state === 'active', T.short, 'active');
      const call = callOf(gw, c)!;
      await c.waitFor(() => read(gw).agent_state.get(call.id) !== undefined, T.turn, 'greeting turn saved');
      // The gateway loses the socket (network): no orderly stop reached it.
      gw.calls.get(call.id)!.detach('network drop (test)');
      await c.waitFor(() => c.streams === 2, T.turn, 'a second stream');
      await c.waitFor(() => callOf(gw, c)?.state === 'active' && callOf(gw, c)?.media_epoch === 2, T.short, 'resumed');
      const order = reducers(gw);
      const lost = order.indexOf('call_media_lost');
      assert.ok(lost > 0 && order.indexOf('call_resume_requested') > lost, 'media lost, then the provider resumed');
      assert.equal(read(gw).calls.find().length, 1, 'one call row');
      assert.equal(callOf(gw, c)?.id, call.id);
      await c.waitFor(() => actions(gw, call.id).some((a) => JSON.stringify(a.args).includes('cut off')), T.turn, 'the agent said it was cut off');
      const before = c.receivedMs();
      await c.waitFor(() => c.receivedMs() > before + 500, T.short, 'audio on the new stream');
      assert.deepEqual(read(gw).legs.find({ call_id: call.id }).map((l) => l.state).sort(), ['connected', 'disconnected']);
      await endCall(gw, c);
      assert.equal(c.protocolErrors.length, 0, c.protocolErrors.join('; '));
    });

    test('barge-in: caller speech over the greeting ducks the agent audio at once, then clears it; the say row records it was interrupted', { timeout: 60_000 }, async () => {
      const gw = await gateway();
      const c = caller(gw);
      assert.deepEqual(await c.dial(), { kind: 'streaming' });
      const call = () => callOf(gw, c)!;
      const greetingRow = () => actions(gw, call().id).find((a) => a.request_id === 't1:onStart:say:1');
      await c.waitFor(() => callOf(gw, c) !== undefined && greetingRow() !== undefined, T.turn, 'greeting requested');
      const at = c.receivedMs();
      await c.waitFor(() => c.receivedMs() > at + 1200, T.short, 'greeting playing');
      const onset = c.receivedMs();
      const speaking = c.speak('hello hello is anybody there');
      await c.waitFor(() => decisions(gw, call().id).includes('interrupted'), T.short, 'the interruption decided');
      const stopped = c.receivedMs();
      await speaking;
      await c.waitFor(() => c.clears >= 1, T.short, 'clear sent');
      // The cue before the decision: the greeting the caller heard in the 400 ms before the interruption (which comes
      // minSpeechMs, 600 ms, into their voice; the duck at its first voiced frame) is ducked (bargeIn.duckDb, 12 dB)
      // against the greeting just before they spoke. Positions are ms of agent audio received.
      const before = c.receivedEnergy(onset - 800, onset);
      const ducked = c.receivedEnergy(Math.max(onset + 200, stopped - 400), stopped);
      assert.ok(stopped > onset + 300, `the greeting played on for ${stopped - onset} ms before the interruption`);
      assert.ok(ducked < before * 0.6, `the agent was ducked while the caller spoke over it: energy ${ducked.toFixed(0)} against ${before.toFixed(0)} before`);
      assert.equal(read(gw).turn_decisions.find({ call_id: call().id }).find((d) => d.decision === 'interrupted')?.duck_db, 12, 'the decision records the duck');
      await c.waitFor(() => greetingRow()?.status === 'succeeded', T.short, 'greeting row completed');
      const result = greetingRow()?.result as { duration_ms: number; heard_ms: number; interrupted: boolean };
      assert.equal(result.interrupted, true);
      assert.ok(result.heard_ms > 0 && result.heard_ms < result.duration_ms, `heard ${result.heard_ms} of ${result.duration_ms} ms`);
      await c.waitFor(() => decisions(gw, call().id).includes('interrupted'), T.short, 'the interruption recorded');
      assert.ok(!decisions(gw, call().id).includes('backchannel'), 'sustained speech is not a backchannel');
      assert.equal(c.protocolErrors.length, 0, c.protocolErrors.join('; '));
      await endCall(gw, c);
    });

    test('backchannel: "uh huh" and "yeah" over the greeting do not interrupt it; the agent audio keeps flowing and each is recorded as a backchannel', { timeout: 60_000 }, async () => {
      const gw = await gateway();
      const c = caller(gw);
      assert.deepEqual(await c.dial(), { kind: 'streaming' });
      const call = () => callOf(gw, c)!;
      const greetingRow = () => actions(gw, call().id).find((a) => a.request_id === 't1:onStart:say:1');
      await c.waitFor(() => callOf(gw, c) !== undefined && greetingRow() !== undefined, T.turn, 'greeting requested');
      const at = c.receivedMs();
      await c.waitFor(() => c.receivedMs() > at + 200, T.short, 'greeting playing');
      await c.speak('uh huh');
      await c.waitFor(() => decisions(gw, call().id).length >= 1, T.short, 'the first acknowledgement decided');
      const after = c.receivedMs();
      await c.waitFor(() => c.receivedMs() > after + 300, T.short, 'agent audio still flowing after the backchannel');
      await c.speak('yeah');
      await c.waitFor(() => greetingRow()?.status === 'succeeded', T.turn, 'greeting row completed');
      // The say's result through the API (GET /v1/calls/:id opens sealed content for a permitted reader).
      const result = (await sayResult(gw, call().id, 't1:onStart:say:1')) as { duration_ms: number; heard_ms: number; interrupted: boolean };
      assert.equal(result.interrupted, false, 'the greeting played to its end');
      assert.equal(result.heard_ms, result.duration_ms);
      // (`c.clears` is no proof here: over RTP it counts agent talk spurts that ended while the caller spoke, and the
      // greeting's own pauses between words end spurts. The say row above is what the gateway did: on Twilio and
      // Vonage it completes only when the caller's side echoes its end mark, and it would be `interrupted` otherwise.)
      assert.ok(decisions(gw, call().id).every((d) => d === 'backchannel'), `decisions: ${decisions(gw, call().id).join(', ')}`);
      assert.ok(decisions(gw, call().id).length >= 1);
      assert.equal(c.protocolErrors.length, 0, c.protocolErrors.join('; '));
      await endCall(gw, c);
    });

    test('a paused agent: a new call hears the fallback message and is hung up, with no agent turn; resumed, the agent answers again', { timeout: 90_000 }, async () => {
      const gw = await gateway();
      const who = { tenant: 'default', caller: 'test' };
      resultOf(await gw.store.submit(agent_paused, { agent: 'default', reason: 'suite' }, who));
      const paused = caller(gw);
      assert.deepEqual(await paused.dial(), { kind: 'streaming' });
      await paused.waitFor(() => callOf(gw, paused)?.state === 'ended', T.turn, 'the call ends after the message');
      assert.equal(callOf(gw, paused)?.end_reason, 'agent paused');
      assert.ok(paused.receivedEnergy() > 100, `the message is audible (energy ${paused.receivedEnergy().toFixed(0)})`);
      assert.ok(!reducers(gw).includes('agent_turn_started'), 'no agent turn while paused');
      await paused.waitFor(() => gw.calls.size === 0, T.short, 'the media session closed');
      resultOf(await gw.store.submit(agent_resumed, { agent: 'default' }, who));
      const back = caller(gw);
      assert.deepEqual(await back.dial(), { kind: 'streaming' });
      await back.waitFor(() => callOf(gw, back) !== undefined && succeeded(gw, callOf(gw, back)!.id) >= 1, T.turn, 'the agent greets again');
      assert.equal(back.protocolErrors.length, 0, back.protocolErrors.join('; '));
      await endCall(gw, back);
    });
  });
}
