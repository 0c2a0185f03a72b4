/**
 * A DTMF answer given before the consent stage listens — the caller presses 1
 * as the call connects, while the prompt renders and `consent_started` is
 * being made durable (fsync off the event loop) — still counts. It was lost
 * before: CI saw "granted not met" when the fsync outlasted the test's first
 * digit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { runConsentPhase } from '../../../consent/phase.ts';
import { MediaClock } from '../../../media/pacer.ts';
import { MediaPipeline } from '../../../media/pipeline.ts';
import { schema } from '../../../schema/index.ts';
import { resolveDurability, Store, type Flusher } from '../../../store/index.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';
import { resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { call_answered, call_received, consent_policy_created, number_added, tenant_created } from '../../../schema/reducers.ts';

class HeldDisk implements Flusher {
  readonly calls: Array<(err: Error | null) => void> = [];
  flush(done: (err: Error | null) => void): void {
    this.calls.push(done);
  }
  flushSync(): void {}
  releaseAll(): void {
    for (const done of this.calls.splice(0)) done(null);
  }
}

test('a digit pressed before the consent stage listens is the answer once it does', async (t) => {
  const disk = new HeldDisk();
  const store = Store.open({ dataDir: tmpDir(), schema, durability: resolveDurability({ profile: 'production' }), flusher: disk, checkpointMs: 0 });
  t.after(() => store.close());
  const who = { tenant: 'default', caller: 'test' };
  const settle = async <T>(p: Promise<T>): Promise<T> => {
    const timer = setInterval(() => disk.releaseAll(), 1);
    try {
      return await p;
    } finally {
      clearInterval(timer);
    }
  };
  resultOf(await settle(store.submit(tenant_created, { id: 'default', name: 'Default' }, who)));
  const policy = resultOf<{ policy_id: string }>(await settle(store.submit(consent_policy_created, { name: 'p', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 5000, retries: 0 }, who)));
  const num = resultOf<{ number_id: string }>(await settle(store.submit(number_added, { number: '+15550001000', agent: 'default', consent_policy_id: policy.policy_id }, who)));
  const call = resultOf<{ call_id: string }>(await settle(store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-early', from: '+1555', to: '+15550001000', number_id: num.number_id }, who)));
  resultOf(await settle(store.submit(call_answered, { call_id: call.call_id }, who)));

  let now = 0;
  const clock = new MediaClock({ manual: true, now: () => now });
  clock.start();
  const leg = new MemoryLeg(false);
  const pipeline = new MediaPipeline(leg, clock);
  const ticker = setInterval(() => {
    now += 20;
    clock.tick();
  }, 2);
  const phase = runConsentPhase(
    { store, tts: { name: 'silence', synthesize: async (text, rate) => new Int16Array((rate / 1000) * 40 * text.length) }, stt: null, logger: pino({ level: 'silent' }) },
    { tenant: 'default', callId: call.call_id, answeredAt: Date.now(), pipeline, outputRate: 8000, cancelled: () => false },
    null,
  );
  // consent_started is committed but its fsync is held: the stage is not listening yet. The caller presses 1 now.
  while (disk.calls.length === 0) await new Promise((r) => setImmediate(r));
  leg.press('1');
  disk.releaseAll();
  const decision = await settle(phase);
  clearInterval(ticker);
  assert.equal(decision.outcome, 'granted');
  assert.equal(decision.method, 'dtmf');
  assert.equal((decision.evidence as { digit: string }).digit, '1');
});
