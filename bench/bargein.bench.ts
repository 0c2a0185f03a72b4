/**
 * `npm run bench -- bargein`: how fast a Twilio caller who speaks over the agent hears it duck, and then stop.
 *
 * An in-process gateway (the energy VAD, the default turn-taking settings) with a deployed agent whose greeting is a
 * steady 20 s tone (so a drop in its level at the caller is the duck, not a pause between words) and, for each of
 * BARGEIN_CALLS calls, a Twilio peer that waits until the greeting is playing, then speaks a sentence over it:
 *
 *   caller's first voiced frame ─► the agent's audio ducked by bargeIn.duckDb (the cue, media/ducker.ts)
 *     ─ bargeIn.minSpeechMs of voiced speech (a policy: shorter is a backchannel)
 *     ─► the gateway decides (a `turn_decisions` row `interrupted`, with its `duck_db`, is checked) ─ clear sent
 *     ─► agent audio stops at the caller (the peer's `clear`, or the last agent frame it received, if earlier)
 *
 *   bargein.duck_after_voice    first voiced frame → the first agent frame at the caller ≥ 10 dB below the tone's
 *                               level (target ≤ 150 ms; the "barge-in stops agent audio within 150 ms", as a
 *                               cue); its baseline is the same run's stop_after_voice
 *   bargein.stop_after_voice    first voiced frame → agent audio stopped at the caller (includes minSpeechMs)
 *   bargein.stop_after_policy   the same less minSpeechMs: the VAD's lag, the gateway's reaction and the transport
 *
 * Times are wall-clock on this machine (the peer and the gateway share its clock).
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleAgent } from '../agents/bundle.ts';
import { DEFAULT_TURN_TAKING } from '../media/turn-taking.ts';
import { tmpDir } from '../test/helpers/tmp.ts';
import { speechUlaw, ulawEnergy } from '../test/helpers/audio.ts';
import { startTestGateway, TWILIO_TOKEN } from '../test/helpers/gateway.ts';
import { resultOf } from '../test/helpers/store.ts';
import { TwilioPeer } from '../test/helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../schema/reducers.ts';
import { log, now, percentile, report, sleep } from './lib.ts';

const CALLS = Number(process.env.BARGEIN_CALLS ?? 8);
const NUMBER = '+15557770002';
const SENTENCE = 'Sorry to interrupt but I need to change my booking';
/** A frame this far below the tone's level is ducked (the duck is bargeIn.duckDb, 12 dB by default). */
const DUCKED_DB = 10;

const TONE_AGENT = `
import { defineAgent } from 'switchboard/agent';
function toneWav(seconds: number): Uint8Array {
  const rate = 8000;
  const n = rate * seconds;
  const out = new Uint8Array(44 + 2 * n);
  const v = new DataView(out.buffer);
  const text = (at: number, s: string) => { for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i); };
  text(0, 'RIFF'); v.setUint32(4, 36 + 2 * n, true); text(8, 'WAVEfmt '); v.setUint32(16, 16, true); v.setUint16(20, 1, true);
  v.setUint16(22, 1, true); v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true);
  v.setUint16(34, 16, true); text(36, 'data'); v.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, Math.round(6000 * Math.sin((2 * Math.PI * 300 * i) / rate)), true);
  return out;
}
export default defineAgent({ name: 'tone', async onStart(ctx) { await ctx.play(toneWav(20)); } });
`;

async function main(): Promise<void> {
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'none', SWITCHBOARD_AGENT_SILENCE_MS: '600000', SWITCHBOARD_LOG_LEVEL: 'warn' } });
  const afterVoice: number[] = [];
  const afterPolicy: number[] = [];
  const duckAfterVoice: number[] = [];
  const minSpeechMs = DEFAULT_TURN_TAKING.bargeIn.minSpeechMs;
  try {
    const who = { tenant: 'default', caller: 'bench' };
    const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded.' }, who));
    const file = path.join(tmpDir('sb-bargein-'), 'tone.ts');
    fs.writeFileSync(file, TONE_AGENT);
    await gw.agents.deploy('default', 'system:bench', 'tone', (await bundleAgent(file)).code, { rollout: 100, migrate: false });
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'tone', provider: 'twilio', consent_policy_id: policy.policy_id }, who));
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
        const heard = peer.receivedAudio();
        const level = ulawEnergy(heard.subarray(heard.length - 8 * 200)); // the tone's level over the last 200 ms
        let lastMediaAt = 0;
        let duckedAt = 0;
        const onMedia = (audio: Uint8Array): void => {
          lastMediaAt = Date.now();
          if (duckedAt === 0 && lastMediaAt >= firstVoiced && ulawEnergy(audio) <= level * 10 ** (-DUCKED_DB / 20)) duckedAt = lastMediaAt;
        };
        let firstVoiced = Number.POSITIVE_INFINITY;
        peer.on('media', onMedia);
        const playStart = Date.now();
        void peer.play(speech);
        firstVoiced = playStart + voicedStartMs;
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
        if (duckedAt > 0 && duckedAt <= stoppedAt) duckAfterVoice.push(duckedAt - firstVoiced);
        const duck = duckedAt > 0 && duckedAt <= stoppedAt ? `ducked ${duckedAt - firstVoiced} ms` : 'never ducked';
        log(`call ${i + 1}: voiced ${decision.voiced_ms} ms at the decision (duck_db ${decision.duck_db}); ${duck}, stopped ${stoppedAt - firstVoiced} ms after the first voiced frame`);
        await peer.hangup();
      } finally {
        await peer.close();
      }
    }
  } finally {
    await gw.stop();
  }
  const note = `${afterVoice.length} Twilio calls; bargeIn.minSpeechMs ${DEFAULT_TURN_TAKING.bargeIn.minSpeechMs}, duckDb ${DEFAULT_TURN_TAKING.bargeIn.duckDb}, energy VAD`;
  const duckNote = `${duckAfterVoice.length} of ${afterVoice.length} calls ducked before the stop; baseline: the same run's stop`;
  report({ figure: 'bargein.duck_after_voice_p50_ms', value: Math.round(percentile(duckAfterVoice, 50)), unit: 'ms', baseline: Math.round(percentile(afterVoice, 50)), target: { op: '<=', value: 150, unit: 'ms' }, note: `caller's first voiced frame → agent audio ≥ ${DUCKED_DB} dB down at the caller; ${duckNote}; ${note}` });
  report({ figure: 'bargein.duck_after_voice_p99_ms', value: Math.round(percentile(duckAfterVoice, 99)), unit: 'ms', baseline: Math.round(percentile(afterVoice, 99)), target: { op: '<=', value: 150, unit: 'ms' }, note: duckNote });
  report({ figure: 'bargein.stop_after_voice_p50_ms', value: Math.round(percentile(afterVoice, 50)), unit: 'ms', note: `caller's first voiced frame → agent audio stopped at the caller; ${note}` });
  report({ figure: 'bargein.stop_after_voice_p99_ms', value: Math.round(percentile(afterVoice, 99)), unit: 'ms', note });
  report({ figure: 'bargein.stop_after_policy_p50_ms', value: Math.round(percentile(afterPolicy, 50)), unit: 'ms', target: { op: '<=', value: 150, unit: 'ms' }, note: `first voiced frame + minSpeechMs → agent audio stopped at the caller; ${note}` });
  report({ figure: 'bargein.stop_after_policy_p99_ms', value: Math.round(percentile(afterPolicy, 99)), unit: 'ms', target: { op: '<=', value: 150, unit: 'ms' }, note });
}

await main();
process.exit(0);
