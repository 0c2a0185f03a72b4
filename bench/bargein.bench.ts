/**
 * `npm run bench -- bargein`: how fast the agent's audio stops at a Twilio caller who speaks over it.
 *
 * An in-process gateway (espeak-ng TTS, the default agent and its long greeting, the energy VAD) and, for each of
 * BARGEIN_CALLS calls, a Twilio peer that waits until the greeting is playing, then speaks a sentence over it:
 *
 *   caller's first voiced frame ─ bargeIn.minSpeechMs of voiced speech (a policy: shorter is a backchannel)
 *     ─► the gateway decides (a `turn_decisions` row `interrupted` is checked) ─ clear sent, queue dropped
 *     ─► agent audio stops at the caller (the peer's `clear`, or the last agent frame it received, if earlier)
 *
 *   bargein.stop_after_voice    first voiced frame → agent audio stopped at the caller (includes minSpeechMs)
 *   bargein.stop_after_policy   the same less minSpeechMs: the VAD's lag, the gateway's reaction and the transport
 *                               (target ≤ 150 ms; the "barge-in stops agent audio within 150 ms")
 *
 * Times are wall-clock on this machine (the peer and the gateway share its clock).
 */
import { DEFAULT_TURN_TAKING } from '../media/turn-taking.ts';
import { speechUlaw, ulawEnergy } from '../test/helpers/audio.ts';
import { startTestGateway, TWILIO_TOKEN } from '../test/helpers/gateway.ts';
import { resultOf } from '../test/helpers/store.ts';
import { TwilioPeer } from '../test/helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../schema/reducers.ts';
import { log, now, percentile, report, sleep } from './lib.ts';

const CALLS = Number(process.env.BARGEIN_CALLS ?? 8);
const NUMBER = '+15557770002';
const SENTENCE = 'Sorry to interrupt but I need to change my booking';

async function main(): Promise<void> {
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'none', SWITCHBOARD_AGENT_SILENCE_MS: '600000', SWITCHBOARD_LOG_LEVEL: 'warn' } });
  const afterVoice: number[] = [];
  const afterPolicy: number[] = [];
  const minSpeechMs = DEFAULT_TURN_TAKING.bargeIn.minSpeechMs;
  try {
    const who = { tenant: 'default', caller: 'bench' };
    const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded.' }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: policy.policy_id }, who));
    const speech = speechUlaw(SENTENCE);
    let voicedStartMs = -1;
    for (let at = 0; at + 160 <= speech.length && voicedStartMs < 0; at += 160) if (ulawEnergy(speech.subarray(at, at + 160)) > 50) voicedStartMs = (at / 8000) * 1000;
    for (let i = 0; i < CALLS; i++) {
      const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: `+1555777${String(i).padStart(4, '0')}`, idleSilence: true });
      try {
        if ((await peer.dial()).kind !== 'streaming') throw new Error('call not streaming');
        const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: peer.callSid });
        await peer.waitFor(() => call()?.state === 'active' && gw.store.read('default').agent_actions.find({ call_id: call()!.id }).length >= 1, 15_000, 'greeting requested');
        const at = peer.receivedAudio().length;
        await peer.waitFor(() => peer.receivedAudio().length > at + 8 * 600, 10_000, 'greeting playing');
        let lastMediaAt = 0;
        const onMedia = (): void => void (lastMediaAt = Date.now());
        peer.on('media', onMedia);
        const playStart = Date.now();
        void peer.play(speech);
        const firstVoiced = playStart + voicedStartMs;
        let clearAt = 0;
        const deadline = now() + 10_000;
        while (clearAt === 0 && now() < deadline) {
          if (peer.clears > 0) clearAt = Date.now();
          else await sleep(1);
        }
        if (clearAt === 0) throw new Error(`call ${i + 1}: no clear within 10 s`);
        await sleep(300);
        peer.off('media', onMedia);
        const stoppedAt = Math.min(clearAt, lastMediaAt || clearAt);
        const decision = gw.store.read('default').turn_decisions.find({ call_id: call()!.id }).find((d) => d.decision === 'interrupted');
        if (!decision) throw new Error(`call ${i + 1}: no interrupted decision`);
        afterVoice.push(stoppedAt - firstVoiced);
        afterPolicy.push(stoppedAt - firstVoiced - minSpeechMs);
        log(`call ${i + 1}: voiced ${decision.voiced_ms} ms at the decision; stopped ${stoppedAt - firstVoiced} ms after the first voiced frame`);
        await peer.hangup();
      } finally {
        await peer.close();
      }
    }
  } finally {
    await gw.stop();
  }
  const note = `${afterVoice.length} Twilio calls; bargeIn.minSpeechMs ${DEFAULT_TURN_TAKING.bargeIn.minSpeechMs}, energy VAD`;
  report({ figure: 'bargein.stop_after_voice_p50_ms', value: Math.round(percentile(afterVoice, 50)), unit: 'ms', note: `caller's first voiced frame → agent audio stopped at the caller; ${note}` });
  report({ figure: 'bargein.stop_after_voice_p99_ms', value: Math.round(percentile(afterVoice, 99)), unit: 'ms', note });
  report({ figure: 'bargein.stop_after_policy_p50_ms', value: Math.round(percentile(afterPolicy, 50)), unit: 'ms', target: { op: '<=', value: 150, unit: 'ms' }, note: `first voiced frame + minSpeechMs → agent audio stopped at the caller; ${note}` });
  report({ figure: 'bargein.stop_after_policy_p99_ms', value: Math.round(percentile(afterPolicy, 99)), unit: 'ms', target: { op: '<=', value: 150, unit: 'ms' }, note });
}

await main();
process.exit(0);
