/**
 * Answering-machine detection on outbound SIP calls (bridge/amd-stage.ts, media/amd.ts), end to end: `POST /v1/calls`
 * with `amd` dials a scripted callee (test/helpers/sip-callee.ts) that answers and plays its script over RTP, in a
 * private network namespace. A deployed agent, `dialer`, ends every call with a reason naming what its `onAnswered`
 * was told, so the end reason proves the hook's argument:
 *
 *  - a voicemail: an espeak-ng greeting of several seconds, a pause, a 1 kHz beep → `call_answered_by` machine (media)
 *    with the beep in its evidence; `onAnswered` gets machine and says its voicemail, which the callee receives only
 *    after it finished sending the beep (every non-silent RTP packet of the agent arrives after the beep's end);
 *    no consent phase ran (consent no_response, implied, answered_by machine; nothing recorded), `onStart` never ran;
 *  - "Hello?" then silence → human: the consent phase, then `onAnswered` (human), then `onStart`, whose greeting
 *    the callee hears;
 *  - silence with default `machine` → unknown, treated as machine (the voicemail is said); with default `hangup` →
 *    the call ends `amd:unknown` and no agent turn runs; the same from the CLI (`switchboard call … --amd hangup`).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { muLawEncode } from '../../media/g711.ts';
import { api } from '../helpers/api.ts';
import { silenceUlaw, speechUlaw } from '../helpers/audio.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { SipCallee, type ScriptPart } from '../helpers/sip-callee.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554447000';
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'dialer',
  async onAnswered(ctx, info) {
    ctx.state.set('answered', info.by + ':' + info.treatedAs);
    if (info.treatedAs === 'machine') {
      await ctx.say('Hello, this is the clinic calling about your appointment tomorrow. Please call us back.');
      await ctx.hangup('voicemail:' + info.by);
    }
  },
  async onStart(ctx) {
    await ctx.say('Hi, this is the clinic.');
    await ctx.hangup('started:' + ctx.state.get('answered'));
  },
});`;

/** A beep as a voicemail box plays it: `ms` of a sine at `hz`, µ-law. */
function beep(hz: number, ms: number): Buffer {
  const n = 8 * ms;
  return Buffer.from(muLawEncode(Int16Array.from({ length: n }, (_, i) => Math.round(9000 * Math.sin((2 * Math.PI * hz * i) / 8000)))));
}

if (insidePrivateNetwork(import.meta.filename, 300_000)) {
  let gw: Gw;
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_RTP_PORTS: '33000-33099' } });
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'dialer' }, { tenant: 'default', caller: 'test' }));
    const file = path.join(tmpDir('sb-amd-agent-'), 'dialer.ts');
    fs.writeFileSync(file, AGENT);
    const res = await fetch(`${gw.publicUrl}/v1/agents/dialer/deploy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' },
      body: (await bundleAgent(file)).code,
    });
    assert.ok(res.ok, await res.text());
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  async function ended(callId: string, ms = 60_000) {
    const end = Date.now() + ms;
    for (;;) {
      const call = read().calls.get(callId);
      if (call?.state === 'ended') return call;
      assert.ok(Date.now() < end, `call ${callId} did not end (state ${call?.state})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** The reducers of the call's commands that were applied, in log order (agent turns with their hook). */
  const trail = (callId: string): string[] =>
    [...gw.store.events()]
      .filter((e) => e.outcome.ok && ((e.args as { call_id?: string }).call_id === callId || (e.outcome.result as { call_id?: string } | undefined)?.call_id === callId))
      .map((e) => (e.reducer === 'agent_turn_started' ? `turn:${(e.args as { kind: string }).kind}` : e.reducer));

  async function call(script: ScriptPart[], amd: Record<string, unknown>): Promise<{ callee: SipCallee; callId: string }> {
    const callee = await SipCallee.open(script);
    const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from: NUMBER, to: callee.uri, amd } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return { callee, callId: r.body.call_id };
  }
  /** performance.now() of the agent's non-silent RTP packets at the callee. */
  const agentAudio = (callee: SipCallee): number[] => callee.media.arrivals.filter((a) => !a.silence).map((a) => a.at);

  test('a voicemail greeting and its beep: machine; the agent leaves its voicemail after the beep; no consent phase, no onStart', { timeout: 120_000 }, async (t) => {
    const greeting = speechUlaw("Hi, you've reached Anna Smith. I can't take your call right now. Please leave your name and number after the tone, and I will call you back.");
    const { callee, callId } = await call(
      [
        { name: 'greeting', ulaw: greeting },
        { name: 'pause', ulaw: silenceUlaw(400) },
        { name: 'beep', ulaw: beep(1000, 500) },
        { name: 'after', ulaw: silenceUlaw(15_000) },
      ],
      { enabled: true, default: 'human' },
    );
    t.after(() => callee.close());
    const c = await ended(callId);
    assert.equal(c.end_reason, 'voicemail:machine', 'onAnswered was told machine');
    const row = read().answered_by.get(callId);
    assert.ok(row);
    assert.equal(row.by, 'machine');
    assert.equal(row.source, 'media');
    const beepEvidence = (row.evidence as { beep: { freqHz: number } | null }).beep;
    assert.ok(beepEvidence, `the beep is evidence: ${JSON.stringify(row.evidence)}`);
    assert.ok(Math.abs(beepEvidence.freqHz - 1000) <= 25, `beep at ${beepEvidence.freqHz} Hz`);
    const beepSent = callee.marks.get('beep');
    assert.ok(beepSent !== undefined, 'the callee played its beep');
    const heard = agentAudio(callee);
    assert.ok(heard.length > 50, `the callee received the voicemail (${heard.length} packets)`);
    assert.ok(heard[0]! > beepSent, `the agent's first audio arrived ${(beepSent - heard[0]!).toFixed(0)} ms before the beep ended`);
    const steps = trail(callId);
    assert.ok(steps.includes('turn:onAnswered'), steps.join(','));
    assert.ok(!steps.includes('turn:onStart'), `no conversation with a machine: ${steps.join(',')}`);
    assert.ok(steps.indexOf('call_answered_by') < steps.indexOf('turn:onAnswered'));
    const consent = read().consents.get(c.consent_id!);
    assert.equal(consent?.outcome, 'no_response');
    assert.equal(consent?.method, 'implied');
    assert.equal((consent?.evidence as { answered_by?: string } | null)?.answered_by, 'machine');
    assert.equal(read().recordings.find({ call_id: callId }).length, 0, 'nothing of a voicemail box is recorded');
    assert.ok(gw.store.verify().ok);
  });

  test('"Hello?" then silence: human; consent, onAnswered (human), then onStart, whose greeting the callee hears', { timeout: 120_000 }, async (t) => {
    const { callee, callId } = await call(
      [
        { name: 'lead', ulaw: silenceUlaw(300) },
        { name: 'hello', ulaw: speechUlaw('Hello?') },
        { name: 'wait', ulaw: silenceUlaw(30_000) },
      ],
      { enabled: true, default: 'machine', timeoutMs: 20_000 },
    );
    t.after(() => callee.close());
    const c = await ended(callId);
    assert.equal(c.end_reason, 'started:human:human', 'onAnswered (human) ran before onStart');
    assert.equal(read().answered_by.get(callId)?.by, 'human');
    const steps = trail(callId);
    const order = ['call_answered_by', 'consent_started', 'recording_started', 'turn:onAnswered', 'turn:onStart'].map((s) => steps.indexOf(s));
    assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)), steps.join(','));
    assert.ok(agentAudio(callee).length > 20, 'the callee heard the disclosure and the greeting');
  });

  test('silence, default machine: unknown, treated as machine — the voicemail is said', { timeout: 120_000 }, async (t) => {
    const { callee, callId } = await call([{ name: 'quiet', ulaw: silenceUlaw(30_000) }], { enabled: true, default: 'machine', timeoutMs: 5000 });
    t.after(() => callee.close());
    const c = await ended(callId);
    assert.equal(c.end_reason, 'voicemail:unknown');
    const row = read().answered_by.get(callId);
    assert.equal(row?.by, 'unknown');
    assert.equal((row?.evidence as { on_unknown?: string }).on_unknown, 'machine');
    assert.ok(agentAudio(callee).length > 50, 'the voicemail was said');
  });

  test('silence, default hangup: unknown, the call ends amd:unknown and no agent turn runs', { timeout: 120_000 }, async (t) => {
    const { callee, callId } = await call([{ name: 'quiet', ulaw: silenceUlaw(30_000) }], { enabled: true, default: 'hangup', timeoutMs: 5000 });
    t.after(() => callee.close());
    const c = await ended(callId);
    assert.equal(c.end_reason, 'amd:unknown');
    assert.equal(read().answered_by.get(callId)?.by, 'unknown');
    assert.ok(!trail(callId).some((s) => s.startsWith('turn:')));
    const deadline = Date.now() + 10_000;
    while (!callee.bye && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(callee.bye, 'our BYE reached the callee');
  });

  test('the CLI: `switchboard call --from N --to URI --amd hangup` places the call with detection (silence: amd:unknown)', { timeout: 120_000 }, async (t) => {
    const callee = await SipCallee.open([{ name: 'quiet', ulaw: silenceUlaw(30_000) }]);
    t.after(() => callee.close());
    const out = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'call', '--from', NUMBER, '--to', callee.uri, '--amd', 'hangup'], { env: { ...process.env, SWITCHBOARD_URL: gw.publicUrl, SWITCHBOARD_TOKEN: ADMIN_TOKEN } }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
      );
    });
    assert.equal(out.code, 0, out.out + out.err);
    const callId = out.out.split('\n')[0]!.trim();
    assert.deepEqual(
      { on_unknown: read().amd_requests.get(callId)?.on_unknown, timeout_ms: read().amd_requests.get(callId)?.timeout_ms },
      { on_unknown: 'hangup', timeout_ms: 30_000 },
    );
    assert.equal((await ended(callId)).end_reason, 'amd:unknown');
  });

  test('amd validation: an unknown default or a timeout out of range is 400 naming the field', async () => {
    for (const amd of [{ enabled: true, default: 'voicemail' }, { enabled: true, timeoutMs: 100 }, { enabled: 'yes' }]) {
      const r = await api<{ error: { code: string; message: string } }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from: NUMBER, to: 'sip:x@127.0.0.1:5999', amd } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, /amd/);
    }
  });
}
