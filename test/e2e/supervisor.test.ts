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
import { after, test } from 'node:test';
import { api, userToken } from '../helpers/api.ts';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { pcmEnergy, speechL16 } from '../helpers/audio-l16.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { ANSWER, BACK, supervisedCall, waitUntil } from '../helpers/supervised-call.ts';
import { WebrtcClient } from '../helpers/webrtc-client.ts';

const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

if (insidePrivateNetwork(import.meta.filename, 300_000)) {
  test('supervisor: 403 without the permission; listen, whisper, take over, hand back, leave', { timeout: 240_000 }, async () => {
    const { gw, base, caller, callId, read, call, said, notes, turns, matrixReason } = await supervisedCall(open);
    const waitFor = waitUntil;

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
    await waitFor(() => matrixReason() === 'supervisor:listen', 20_000, 'the listen matrix row');
    const busy = await api(base, 'POST', `/v1/calls/${callId}/supervise`, { body: { sdp: 'v=0\r\n' } });
    assert.equal(busy.status, 409, 'one supervisor at a time');

    // Listen: the caller speaks, the agent answers; the supervisor receives both.
    const fromSupervisor = (since: number) => pcmEnergy(Int16Array.from(sup.received.slice(since).flatMap((f) => [...f])));
    let mark = sup.received.length;
    await caller.play(speechUlaw('I have a question about my last bill'));
    assert.ok(fromSupervisor(mark) > 100, `the supervisor hears the caller (energy ${fromSupervisor(mark).toFixed(0)})`);
    mark = sup.received.length;
    await waitFor(() => said().includes(ANSWER), 30_000, "the agent's answer");
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
    await waitFor(() => said().includes(BACK), 30_000, 'the agent speaks again');
    const whispered = notes().find((n) => n.startsWith('whisper: '))!;
    // pocketsphinx's words for espeak vary with the load; words, not their exact spelling, are the point
    assert.ok(whispered.split(' ').length >= 4, `the whisper reached the agent as words: ${whispered}`);
    const resumed = JSON.parse(notes().find((n) => n.startsWith('resume: handback'))!.slice('resume: handback '.length)) as Array<{ speaker: string; text: string }>;
    assert.ok(resumed.some((l) => l.speaker === 'supervisor' && l.text.length > 0), `the hand-back transcript has the supervisor's words: ${JSON.stringify(resumed)}`);
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
