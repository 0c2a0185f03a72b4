/**
 * The supervisor in real Chromium, from the console (issue 16): headless Chromium with a fake microphone (espeak-ng
 * speech in a WAV) signs in to /console as an admin, sees the live call appear in the live list (the subscription
 * socket), opens it and uses the supervisor controls (console/supervise.js: the browser's own WebRTC), while a
 * Twilio-peer caller talks to a deployed agent (test/helpers/supervised-call.ts) — inside a private network namespace.
 *
 *  - listen: the supervisor's <audio> receives sound while the caller speaks and while the agent answers
 *  - whisper: the agent's `onWhisper` gets the microphone's words (three or more recognised); the caller receives none
 *  - take over: no agent turns; the caller hears the supervisor; hand back: `onResume` {reason: handback}, the agent
 *    speaks again; leave: two-party again
 *  - a compliance user's page of the same call has no supervisor controls; the call leaves the live list at hang-up
 * The microphone says the whisper a few times after a pause, then the take-over words, so each mode's check finds
 * speech whenever the click lands; every bound waits for an event (rows, audio).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Page } from 'playwright-core';
import { api } from '../helpers/api.ts';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav } from '../helpers/softphone.ts';
import { ANSWER, BACK, supervisedCall, waitUntil } from '../helpers/supervised-call.ts';

const PASSWORD = 'correct horse battery staple';
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

/** Peak RMS (0..1) of what the supervisor's <audio> plays while `during` runs. */
async function levelWhile(page: Page, during: () => Promise<unknown>): Promise<number> {
  // A string, not a function: the test's TypeScript transform would name inner functions with a helper the page lacks.
  await page.evaluate(`(() => {
    const el = document.querySelector('audio[data-supervise="audio"]');
    window.__peak = 0;
    window.__stop = false;
    const ctx = new AudioContext();
    const an = ctx.createAnalyser();
    an.fftSize = 2048;
    ctx.createMediaStreamSource(el.srcObject).connect(an);
    const buf = new Float32Array(an.fftSize);
    const timer = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      window.__peak = Math.max(window.__peak, Math.sqrt(sum / buf.length));
      if (window.__stop) { clearInterval(timer); void ctx.close(); }
    }, 40);
    return ctx.resume();
  })()`);
  await during();
  return page.evaluate<number>('(window.__stop = true, window.__peak)');
}

if (insidePrivateNetwork(import.meta.filename, 360_000)) {
  test('console: a supervisor listens, whispers, takes over, hands back and leaves from Chromium', { timeout: 300_000 }, async () => {
    const c = await supervisedCall(open);
    const { base, caller, callId, notes, said, turns, matrixReason } = c;
    for (const [email, role] of [['boss@sup.example.com', 'admin'], ['comp@sup.example.com', 'compliance']] as const) {
      const r = await api(base, 'POST', '/v1/users', { body: { email, role, password: PASSWORD } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const whisper = 'please offer the customer a discount on the next bill';
    const takeover = 'hello this is the supervisor speaking';
    // Whatever the load, each mode finds speech when its click lands: the whisper for a while, then the take-over words.
    const mic = micWav([[null, 6], ...Array.from({ length: 5 }, () => [whisper, 3] as [string, number]), ...Array.from({ length: 12 }, () => [takeover, 2] as [string, number]), [null, 30]]);
    const browser = await launchChromium(mic);
    open.push(() => browser.close());
    const signIn = async (email: string): Promise<{ page: Page; problems: string[] }> => {
      const context = await browser.newContext({ permissions: ['microphone'] });
      const page = await context.newPage();
      page.setDefaultTimeout(30_000);
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
      });
      await page.goto(`${base}/console`);
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#who', { hasText: email }).waitFor();
      return { page, problems };
    };
    /** Opens the live call from the live list, giving the purpose the console asks first. */
    const openLive = async (page: Page): Promise<void> => {
      await page.locator(`#live-list li[data-call-id="${callId}"] button`).click();
      await page.locator('#purpose-dialog').getByLabel('Purpose').fill('supervision test');
      await page.locator('#purpose-ok').click();
      await page.locator('#detail-body .actions').waitFor();
    };

    // A compliance user sees the live call but no supervisor controls.
    const comp = await signIn('comp@sup.example.com');
    await openLive(comp.page);
    assert.equal(await comp.page.locator('[data-supervise="bar"]').count(), 0, 'no supervisor controls without the permission');

    const { page, problems } = await signIn('boss@sup.example.com');
    await openLive(page);
    const button = (what: string) => page.locator(`button[data-supervise="${what}"]`);
    await button('listen').click();
    await waitUntil(() => matrixReason() === 'supervisor:listen', 30_000, 'the listen matrix row');
    await page.locator('#detail-status', { hasText: 'Listening' }).waitFor();

    // Listen: the supervisor's browser receives the caller and the agent.
    const heardCaller = await levelWhile(page, () => caller.play(speechUlaw('I have a question about my last bill')));
    assert.ok(heardCaller > 0.01, `the supervisor hears the caller (peak ${heardCaller.toFixed(3)})`);
    const heardAgent = await levelWhile(page, () => waitUntil(() => said().includes(ANSWER), 30_000, "the agent's answer"));
    assert.ok(heardAgent > 0.01, `the supervisor hears the agent (peak ${heardAgent.toFixed(3)})`);

    // Whisper: the microphone's words reach onWhisper; the caller receives none of them.
    await button('whisper').click();
    await waitUntil(() => matrixReason() === 'supervisor:whisper', 30_000, 'the whisper matrix row');
    const mark = caller.receivedAudio().length;
    await waitUntil(() => notes().some((n) => n.startsWith('whisper: ') && n.split(' ').length >= 4), 90_000, "the agent's onWhisper with the whispered words");
    const duringWhisper = caller.receivedAudio().subarray(mark);
    assert.ok(ulawEnergy(duringWhisper) < 50, `the caller received none of the whisper (energy ${ulawEnergy(duringWhisper).toFixed(0)})`);

    // Take over: the agent is held; the caller hears the supervisor's microphone.
    await button('takeover').click();
    await waitUntil(() => matrixReason() === 'supervisor:takeover', 30_000, 'the take-over matrix row');
    const turnsBefore = turns();
    const heard = caller.receivedAudio().length;
    await waitUntil(() => ulawEnergy(caller.receivedAudio().subarray(heard)) > 100, 60_000, 'the caller hears the supervisor');
    assert.equal(turns(), turnsBefore, 'no agent turn while taken over');

    // Hand back, then leave.
    await button('handback').click();
    await waitUntil(() => notes().some((n) => n.startsWith('resume: handback')), 30_000, "the agent's onResume after the hand-back");
    await waitUntil(() => said().includes(BACK), 30_000, 'the agent speaks again');
    await button('leave').click();
    await waitUntil(() => matrixReason() === 'supervisor:left', 30_000, 'the leave matrix row');
    const steps = c.read().call_supervision_steps.find({ call_id: callId }).sort((a, b) => a.at - b.at).map((s) => `${s.step}:${s.mode}`);
    assert.deepEqual(steps, ['join:listen', 'mode:whisper', 'mode:takeover', 'mode:listen', 'leave:listen']);
    assert.deepEqual(problems, []);

    // The call leaves the live list when it ends.
    await caller.hangup();
    await page.locator(`#live-list li[data-call-id="${callId}"]`).waitFor({ state: 'detached' });
  });
}
