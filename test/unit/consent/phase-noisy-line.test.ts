/**
 * The consent policy's timeout holds whatever the caller's line does. The answer window used to stretch for as long
 * as the caller was heard talking, so a noisy line (or a one-word clip on a loop) kept the consent `pending` for the
 * whole call under `timeout_ms: 8000, retries: 1`. Now it stretches for a caller mid-word by at most MAX_OVERRUN_MS,
 * and the policy's outcome for silence is recorded: no_response for opt-in, granted (implied) for opt-out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { runConsentPhase } from '../../../consent/phase.ts';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { schema } from '../../../schema/index.ts';
import { Store } from '../../../store/index.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';
import { resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { call_answered, call_received, consent_policy_created, number_added, tenant_created } from '../../../schema/reducers.ts';

/** A bound far past timeout + overrun: only a stage that never decides reaches it. */
const NEVER_MS = 25_000;

for (const mode of ['opt-in', 'opt-out'] as const) {
  test(`${mode}: a caller whose line never goes quiet still gets the policy's timeout outcome`, async (t) => {
    const store = Store.open({ dataDir: tmpDir(), schema, checkpointMs: 0 });
    t.after(() => store.close());
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default' }, who));
    const policy = resultOf<{ policy_id: string }>(
      await store.submit(consent_policy_created, { name: 'p', mode, disclosure_text: 'We record calls.', timeout_ms: 1000, retries: 1 }, who),
    );
    const num = resultOf<{ number_id: string }>(await store.submit(number_added, { number: '+15550001000', agent: 'default', consent_policy_id: policy.policy_id }, who));
    const call = resultOf<{ call_id: string }>(
      await store.submit(call_received, { provider: 'twilio', provider_call_id: `CA-noise-${mode}`, from: '+1555', to: '+15550001000', number_id: num.number_id }, who),
    );
    resultOf(await store.submit(call_answered, { call_id: call.call_id }, who));

    let now = 0;
    const clock = new MediaClock({ manual: true, now: () => now });
    clock.start();
    const leg = new MemoryLeg(false);
    const pipeline = new MediaPipeline(leg, clock);
    // The line: one word on a loop — 300 ms of voice, 160 ms of quiet, again — for as long as the test runs.
    let frame = 0;
    const timers = [
      setInterval(() => {
        now += 20;
        clock.tick();
      }, 2),
      setInterval(() => leg.speak(frame++ % 23 < 15 ? 12_000 : 0), 20),
    ];
    t.after(() => timers.forEach(clearInterval));
    const phase = runConsentPhase(
      { store, tts: { name: 'silence', synthesize: async (text, rate) => new Int16Array((rate / 1000) * 10 * text.length) }, stt: null, logger: pino({ level: 'silent' }) },
      { tenant: 'default', callId: call.call_id, answeredAt: Date.now(), pipeline, outputRate: 8000, cancelled: () => false },
      null,
    );
    let bound: NodeJS.Timeout | undefined;
    const decision = await Promise.race([
      phase,
      new Promise<never>((_, reject) => (bound = setTimeout(() => reject(new Error(`consent still pending after ${NEVER_MS} ms of caller audio`)), NEVER_MS))),
    ]).finally(() => clearTimeout(bound));
    const heardRecently = pipeline.callerSpeaking || performance.now() - pipeline.lastSpeechEndAt < 1500;
    assert.ok(heardRecently, 'the caller was still being heard when the stage decided');
    assert.equal(decision.outcome, mode === 'opt-in' ? 'no_response' : 'granted');
    assert.equal(decision.method, 'implied');
    const row = store.read('default').consents.get(decision.consentId);
    assert.equal(row?.outcome, decision.outcome);
  });
}
