/**
 * A supervisor in a live call, driven through the API (issue 16): a Twilio-peer caller talks to a deployed agent
 * (a real bundle in a worker thread; espeak TTS, pocketsphinx STT); the supervisor's WebRTC leg is a werift peer
 * (test/helpers/webrtc-client.ts) that posts its offer to `POST /v1/calls/:id/supervise` — inside a private network
 * namespace (helpers/netns.ts), as every WebRTC test runs.
 *
 *  - a role without `supervisor` gets 403 and nothing is written
 *  - listen: the supervisor receives the caller's speech and the agent's
 *  - whisper: the caller receives nothing while the supervisor speaks; the agent's `onWhisper` gets words
 *  - take over: no agent turns; the caller hears the supervisor; hand back: `onResume` {reason: handback}
 *  - leave: two-party again; each step a supervision step row and a matrix row
 * Every bound waits for an event (rows, audio received); none measures time.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { api, userToken } from '../helpers/api.ts';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { pcmEnergy, speechL16 } from '../helpers/audio-l16.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { WebrtcClient } from '../helpers/webrtc-client.ts';

const NUMBER = '+15550131600';
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

const AGENT = `
import { defineAgent } from 'switchboard/agent';
export default defineAgent({
  name: 'desk',
  async onStart(ctx) { await ctx.say('Hello, this is the billing desk.'); },
  async onUtterance(ctx) { await ctx.say('Thank you, I have noted that.'); },
  async onWhisper(ctx, text) { await ctx.note('whisper: ' + text); },
  async onResume(ctx, info) {
    await ctx.note('resume: ' + info.reason + ' ' + JSON.stringify(info.transcript));
    if (info.reason === 'handback') await ctx.say('I am back with you now.');
  },
});`;

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (insidePrivateNetwork(import.meta.filename, 300_000)) {
  test('supervisor: 403 without the permission; listen, whisper, take over, hand back, leave', { timeout: 240_000 }, async () => {
    const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
    open.push(() => gw.stop());
    const base = gw.publicUrl;
    assert.equal((await api(base, 'POST', '/v1/consent-policies', { body: { name: 'notice', mode: 'notify', disclosure_text: 'This call is recorded.' } })).status, 201);
    assert.equal((await api(base, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'desk', consent_policy: 'notice', provider: 'twilio' } })).status, 201);
    const work = tmpDir('sb-sup-');
    fs.writeFileSync(path.join(work, 'desk.ts'), AGENT);
    const bundle = await bundleAgent(path.join(work, 'desk.ts'));
    const dep = await fetch(`${base}/v1/agents/desk/deploy?rollout=100`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' }, body: bundle.code });
    assert.equal(dep.status, 201, await dep.text());

    const caller = new TwilioPeer({ publicUrl: base, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444' });
    open.push(() => caller.close());
    await caller.dial();
    const read = () => gw.store.read('default');
    const call = () => read().calls.findOne({ provider: 'twilio', provider_call_id: caller.callSid })!;
    const actions = () => read().agent_actions.find({ call_id: call().id });
    const said = (status = 'succeeded') => actions().filter((a) => a.kind === 'say' && a.status === status).map((a) => (a.args as { text: string }).text);
    const notes = () => actions().filter((a) => a.kind === 'note').map((a) => String((a.args as { text?: unknown }).text ?? ''));
    const turns = () => [...gw.store.events()].filter((e) => e.reducer === 'agent_turn_started' && (e.args as { call_id: string }).call_id === call().id).length;
    await waitFor(() => said().includes('Hello, this is the billing desk.'), 30_000, 'the agent greeted');
    const callId = call().id;

    // 403 for a role without `supervisor`: no supervision, no leg, no supervisor command in the log.
    const comp = await userToken(base, 'compliance');
    const denied = await api(base, 'POST', `/v1/calls/${callId}/supervise`, { token: comp.token, body: { sdp: 'v=0' } });
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(read().call_supervisions.find({ call_id: callId }).length, 0);
    assert.equal(read().legs.find({ call_id: callId, kind: 'supervisor' }).length, 0);
    assert.equal([...gw.store.events()].filter((e) => e.reducer.startsWith('call_supervisor_')).length, 0, 'nothing written');

    let supervisionId = '';
    const sup = new WebrtcClient({
      baseUrl: base,
      to: '',
      exchange: async (offer) => {
        const r = await api<{ sdp: string; supervision_id: string }>(base, 'POST', `/v1/calls/${callId}/supervise`, { body: { sdp: offer } });
        if (r.status === 201) supervisionId = r.body.supervision_id;
        return { status: r.status, sdp: r.status === 201 ? r.body.sdp : JSON.stringify(r.body) };
      },
    });
    open.push(() => sup.close());
    const joined = await sup.join();
    assert.equal(joined.status, 201, joined.body);
    const matrixReason = () => {
      const rows = read().call_matrices.find({ call_id: callId });
      return rows.sort((a, b) => b.n - a.n)[0]?.reason;
    };
    await waitFor(() => matrixReason() === 'supervisor:listen', 20_000, 'the listen matrix row');
    const busy = await api(base, 'POST', `/v1/calls/${callId}/supervise`, { body: { sdp: 'v=0\r\n' } });
    assert.equal(busy.status, 409, 'one supervisor at a time');

    // Listen: the caller speaks, the agent answers; the supervisor receives both.
    const fromSupervisor = (since: number) => pcmEnergy(Int16Array.from(sup.received.slice(since).flatMap((f) => [...f])));
    let mark = sup.received.length;
    await caller.play(speechUlaw('I have a question about my last bill'));
    assert.ok(fromSupervisor(mark) > 100, `the supervisor hears the caller (energy ${fromSupervisor(mark).toFixed(0)})`);
    mark = sup.received.length;
    await waitFor(() => said().includes('Thank you, I have noted that.'), 30_000, "the agent's answer");
    assert.ok(fromSupervisor(mark) > 100, `the supervisor hears the agent (energy ${fromSupervisor(mark).toFixed(0)})`);

    // Whisper: the caller hears nothing of it; the agent's onWhisper gets the words.
    const mode = (m: string) => api(base, 'POST', `/v1/calls/${callId}/supervise/${supervisionId}/mode`, { body: { mode: m } });
    assert.equal((await mode('whisper')).status, 200);
    await waitFor(() => matrixReason() === 'supervisor:whisper', 10_000, 'the whisper matrix row');
    let heard = caller.receivedAudio().length;
    await sup.speak(speechL16('please offer the customer a discount on the next bill'));
    await waitFor(() => notes().some((n) => n.startsWith('whisper: ') && n.length > 'whisper: '.length), 60_000, "the agent's onWhisper");
    const duringWhisper = caller.receivedAudio().subarray(heard);
    assert.ok(ulawEnergy(duringWhisper) < 50, `the caller received none of the whisper (energy ${ulawEnergy(duringWhisper).toFixed(0)})`);

    // Take over: the agent takes no turns; the caller hears the supervisor.
    assert.equal((await mode('takeover')).status, 200);
    await waitFor(() => matrixReason() === 'supervisor:takeover', 10_000, 'the take-over matrix row');
    const turnsBefore = turns();
    heard = caller.receivedAudio().length;
    await sup.speak(speechL16('hello this is the supervisor speaking'));
    await waitFor(() => ulawEnergy(caller.receivedAudio().subarray(heard)) > 100, 20_000, 'the caller hears the supervisor');
    const segments = () => read().transcript_segments.find({ call_id: callId, channel: 'caller' }).length;
    const segmentsBefore = segments();
    await caller.play(speechUlaw('thank you for taking my call'));
    // The utterance was heard and transcribed (an event): it must have started no agent turn.
    await waitFor(() => segments() > segmentsBefore, 30_000, "the caller's words transcribed during the take-over");
    assert.equal(turns(), turnsBefore, 'no agent turn while taken over');

    // Hand back: onResume {reason: handback}; the agent speaks to the caller again.
    assert.equal((await mode('listen')).status, 200);
    await waitFor(() => notes().some((n) => n.startsWith('resume: handback')), 30_000, "the agent's onResume after the hand-back");
    await waitFor(() => said().includes('I am back with you now.'), 30_000, 'the agent speaks again');
    const whispered = notes().find((n) => n.startsWith('whisper: '))!;
    assert.match(whispered, /discount/, 'the whisper reached the agent as words');
    const resumed = JSON.parse(notes().find((n) => n.startsWith('resume: handback'))!.slice('resume: handback '.length)) as Array<{ speaker: string; text: string }>;
    assert.ok(resumed.some((l) => l.speaker === 'supervisor' && /supervisor/.test(l.text)), `the hand-back transcript has the supervisor's words: ${JSON.stringify(resumed)}`);
    assert.ok(resumed.some((l) => l.speaker === 'caller' && l.text.length > 0), `the hand-back transcript has the caller's words: ${JSON.stringify(resumed)}`);

    // Leave: two-party again; the supervision's steps and the matrix rows tell it all.
    const left = await api(base, 'DELETE', `/v1/calls/${callId}/supervise/${supervisionId}`);
    assert.equal(left.status, 200, JSON.stringify(left.body));
    await waitFor(() => matrixReason() === 'supervisor:left', 10_000, 'the leave matrix row');
    const list = await api<{ supervisions: Array<{ state: string; steps: Array<{ step: string; mode: string }> }> }>(base, 'GET', `/v1/calls/${callId}/supervisions`);
    assert.equal(list.status, 200);
    assert.equal(list.body.supervisions[0]!.state, 'left');
    assert.deepEqual(list.body.supervisions[0]!.steps.map((s) => `${s.step}:${s.mode}`), ['join:listen', 'mode:whisper', 'mode:takeover', 'mode:listen', 'leave:listen']);
    const reasons = read().call_matrices.find({ call_id: callId }).sort((a, b) => a.n - b.n).map((r) => r.reason);
    assert.deepEqual(reasons, ['supervisor:listen', 'supervisor:whisper', 'supervisor:takeover', 'supervisor:listen', 'supervisor:left']);
    assert.equal(read().legs.find({ call_id: callId, kind: 'supervisor' })[0]!.state, 'disconnected');
    assert.notEqual(call().state, 'ended', 'the call goes on');
    await caller.hangup();
  });
}
