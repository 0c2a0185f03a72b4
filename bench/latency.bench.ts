/**
 * `npm run bench -- latency`: voice-to-voice latency on a Twilio call, split into its parts from the call's trace.
 *
 * An in-process gateway (fake Deepgram for STT and TTS, OTEL_EXPORTER_OTLP_ENDPOINT at a local OTLP receiver) with a
 * deployed agent that answers each utterance with `speakStream(chat(...))` against fake-llm at a fixed 200 ms time to
 * first token. For each of LATENCY_CALLS calls, a Twilio peer speaks one sentence after the greeting; the figure is
 * the time from the caller's last voiced frame to the first agent audio frame the caller receives, split by the spans
 * of the turn (telemetry/tracing.ts):
 *
 *   last voiced frame ─ endpointing ─► turn start ─ stt ─► words ─ dispatch ─► agent ─ llm request ─► llm start
 *     ─ LLM first token (fake: 200 ms) ─► first token ─ first sentence ─► tts start ─ TTS (fake) ─► first_audio end
 *     ─ pacing/transport ─► first frame at the caller
 *
 * Gateway-added = total − endpointing − STT final wait − LLM time to first token − TTS synthesis: what the gateway
 * itself spends (dispatch, the worker hop, sentence assembly, pacing). Endpointing (the VAD's silence hangover) is
 * printed beside it: it is a policy, not work.
 *
 * Same-run baseline: the calls alternate between the agent at the default turn-taking settings and the same agent
 * with the turn-taking additions off (`bargeIn.duckDb: 0`, `stopWords: []`, no interim text — what the gateway did
 * before them); each figure is the defaults' and its baseline the other agent's, from the same gateway and minute.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleAgent } from '../agents/bundle.ts';
import { traceIdOf } from '../telemetry/tracing.ts';
import { speechUlaw, ulawEnergy } from '../test/helpers/audio.ts';
import { startFakeDeepgram } from '../test/helpers/fake-deepgram.ts';
import { startFakeLlm } from '../test/helpers/fake-llm.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../test/helpers/gateway.ts';
import { startOtlpReceiver, type ReceivedSpan } from '../test/helpers/otlp-receiver.ts';
import { resultOf } from '../test/helpers/store.ts';
import { tmpDir } from '../test/helpers/tmp.ts';
import { TwilioPeer } from '../test/helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../schema/reducers.ts';
import { log, now, percentile, report, sleep } from './lib.ts';

const CALLS = Number(process.env.LATENCY_CALLS ?? 8);
const TTFT_MS = 200;
const NUMBER = '+15557770001';
/** When the caller starts speaking, after the stream started (the greeting is over by then). */
const LEAD_MS = 3000;
const SENTENCE = 'I would like to book an appointment for next week';

/** The baseline agent's turn-taking: the additions since the last figures off. */
const BASELINE_TURN_TAKING = { bargeIn: { duckDb: 0 }, stopWords: [] };
const BASELINE_NUMBER = '+15557770011';

const agentSource = (llmUrl: string, name: string, turnTaking?: object): string => `
import { defineAgent } from 'switchboard/agent';
import { chat, speakStream } from 'switchboard/llm';
export default defineAgent({
  name: '${name}',${turnTaking ? `\n  turnTaking: ${JSON.stringify(turnTaking)},` : ''}
  async onStart(ctx) { await ctx.say('Hi.'); },
  async onUtterance(ctx, u) {
    await speakStream(ctx, chat({ baseUrl: ${JSON.stringify(llmUrl)}, apiKey: 'test-key', model: 'fake', messages: [{ role: 'user', content: u.text ?? '' }] }));
  },
});`;

interface Split {
  total: number;
  endpointing: number;
  stt: number;
  dispatch: number;
  llmRequest: number;
  llmFirstToken: number;
  firstSentence: number;
  tts: number;
  pacing: number;
  gatewayAdded: number;
}

function splitOf(spans: ReceivedSpan[], lastVoiceMs: number, firstAudioAtCallerMs: number): Split | null {
  const turn = spans.find((s) => s.name === 'turn' && s.attributes['switchboard.hook'] === 'onUtterance');
  if (!turn) return null;
  const under = (parent: ReceivedSpan, name: string) => spans.filter((s) => s.parentSpanId === parent.spanId && s.name === name).sort((a, b) => a.startMs - b.startMs);
  const [stt] = under(turn, 'stt');
  const [agent] = under(turn, 'agent');
  const [tts] = under(turn, 'tts');
  const [firstAudio] = under(turn, 'first_audio');
  const llm = agent ? under(agent, 'llm')[0] : undefined;
  const firstToken = llm?.events.find((e) => e.name === 'first_token')?.atMs;
  if (!stt || !agent || !tts || !firstAudio || !llm || firstToken === undefined) return null;
  const total = firstAudioAtCallerMs - lastVoiceMs;
  const parts = {
    endpointing: turn.startMs - lastVoiceMs,
    stt: stt.endMs - stt.startMs,
    dispatch: agent.startMs - stt.endMs,
    llmRequest: llm.startMs - agent.startMs,
    llmFirstToken: firstToken - llm.startMs,
    firstSentence: tts.startMs - firstToken,
    tts: tts.endMs - tts.startMs,
    pacing: firstAudioAtCallerMs - firstAudio.endMs,
  };
  return { total, ...parts, gatewayAdded: total - parts.endpointing - parts.stt - parts.llmFirstToken - parts.tts };
}

async function main(): Promise<void> {
  const otlp = await startOtlpReceiver();
  const dg = await startFakeDeepgram({ apiKey: 'dg-test-key' });
  const llm = await startFakeLlm({ firstTokenMs: TTFT_MS, reply: () => 'Sure, I can help with that. Which day suits you best?' });
  const gw = await startTestGateway({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'deepgram', DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url, SWITCHBOARD_AGENT_SILENCE_MS: '600000', SWITCHBOARD_LOG_LEVEL: 'warn' },
  });
  const splits: Split[] = [];
  const baseSplits: Split[] = [];
  try {
    const who = { tenant: 'default', caller: 'bench' };
    const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded.' }, who));
    for (const [name, number, turnTaking] of [['latency', NUMBER, undefined], ['latency-base', BASELINE_NUMBER, BASELINE_TURN_TAKING]] as const) {
      resultOf(await gw.store.submit(number_added, { number, agent: name, provider: 'twilio', consent_policy_id: policy.policy_id }, who));
      const file = path.join(tmpDir('sb-latency-'), `${name}.ts`);
      fs.writeFileSync(file, agentSource(llm.url, name, turnTaking));
      const deployed = await fetch(`${gw.publicUrl}/v1/agents/${name}/deploy?rollout=100`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' },
        body: (await bundleAgent(file)).code,
      });
      if (deployed.status !== 201) throw new Error(`deploy ${name}: ${deployed.status} ${await deployed.text()}`);
    }
    const speech = speechUlaw(SENTENCE);
    const speechMs = (speech.length / 8000) * 1000;
    // Where the caller's voice ends inside the clip (espeak pads it with silence): the last 20 ms frame with sound.
    let voicedEndMs = 0;
    for (let at = 0; at + 160 <= speech.length; at += 160) if (ulawEnergy(speech.subarray(at, at + 160)) > 50) voicedEndMs = ((at + 160) / 8000) * 1000;

    for (let i = 0; i < 2 * CALLS; i++) {
      const baseline = i % 2 === 1;
      // The transcript session hears the sentence as soon as its audio is in (a streaming STT's final).
      // Its clock is the audio it was sent: the peer streams silence when not speaking and speaks LEAD_MS into the
      // stream, so the final comes as the voice ends (plus however late the transcription session opened).
      dg.script([{ afterMs: LEAD_MS + Math.round(voicedEndMs), transcript: SENTENCE }]);
      const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: baseline ? BASELINE_NUMBER : NUMBER, from: `+1555888${String(i).padStart(4, '0')}`, idleSilence: true });
      try {
        if ((await peer.dial()).kind !== 'streaming') throw new Error('call not streaming');
        const streamingAt = Date.now();
        const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: peer.callSid });
        const said = () => gw.store.read('default').agent_actions.find({ call_id: call()?.id ?? '', status: 'succeeded' }).length;
        await peer.waitFor(() => call()?.state === 'active' && said() >= 1, 15_000, 'greeting said');
        await sleep(Math.max(0, streamingAt + LEAD_MS - Date.now()));
        const before = peer.receivedAudio().length;
        const playStart = Date.now();
        await peer.play(speech);
        const lastVoiceMs = playStart + voicedEndMs;
        // The first frame with sound after the caller stopped: polled every millisecond.
        let firstAudioMs = 0;
        const deadline = now() + 10_000;
        while (firstAudioMs === 0 && now() < deadline) {
          const got = peer.receivedAudio();
          if (got.length > before && ulawEnergy(got.subarray(Math.max(before, got.length - 160))) > 50) firstAudioMs = Date.now();
          else await sleep(1);
        }
        if (firstAudioMs === 0) throw new Error('no agent audio within 10 s');
        const callId = call()!.id;
        await peer.hangup();
        const traceId = traceIdOf(callId);
        let split: Split | null = null;
        for (const until = now() + 5000; split === null && now() < until; await sleep(50)) {
          split = splitOf(otlp.spans.filter((s) => s.traceId === traceId), lastVoiceMs, firstAudioMs);
        }
        if (!split) throw new Error(`call ${i + 1}: the turn's spans did not arrive`);
        (baseline ? baseSplits : splits).push(split);
        log(`call ${i + 1}${baseline ? ' (baseline)' : ''}: ${Object.entries(split).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')}`);
      } finally {
        await peer.close();
      }
    }
  } finally {
    await gw.stop();
    await Promise.all([otlp.close(), dg.close(), llm.close()]);
  }

  const p = (key: keyof Split, q: number, of = splits): number => Math.round(percentile(of.map((s) => s[key]), q));
  const b = (key: keyof Split, q: number): number | null => (baseSplits.length > 0 ? p(key, q, baseSplits) : null);
  const note = `${splits.length} Twilio calls at the default turn-taking (baseline: ${baseSplits.length} calls with ${JSON.stringify(BASELINE_TURN_TAKING)}), one sentence each; fake Deepgram STT/TTS, fake LLM at ${TTFT_MS} ms to first token; split from the turn's spans`;
  report({ figure: 'latency.voice_to_voice_p50_ms', value: p('total', 50), unit: 'ms', baseline: b('total', 50), target: { op: '<=', value: 500, unit: 'ms' }, note: `caller's last voiced frame → first agent audio at the caller; ${note}` });
  report({ figure: 'latency.voice_to_voice_p99_ms', value: p('total', 99), unit: 'ms', baseline: b('total', 99), note });
  report({ figure: 'latency.gateway_added_p50_ms', value: p('gatewayAdded', 50), unit: 'ms', baseline: b('gatewayAdded', 50), target: { op: '<=', value: 60, unit: 'ms' }, note: `total − endpointing − STT final − LLM first token − TTS; ${note}` });
  report({ figure: 'latency.gateway_added_p99_ms', value: p('gatewayAdded', 99), unit: 'ms', baseline: b('gatewayAdded', 99), target: { op: '<=', value: 120, unit: 'ms' }, note });
  for (const key of ['endpointing', 'stt', 'dispatch', 'llmRequest', 'llmFirstToken', 'firstSentence', 'tts', 'pacing'] as const) {
    report({ figure: `latency.part_${key}_p50_ms`, value: p(key, 50), unit: 'ms', baseline: b(key, 50), note: `p99 ${p(key, 99)} ms (baseline ${b(key, 99) ?? '-'} ms)` });
  }
}

await main();
process.exit(0);
