/**
 * The voice-activity detectors on the held set of noisy phone clips (bench/vad/make-set.ts: espeak-ng speech clean
 * and under line noise, backchannels, music on hold, DTMF, coughs, silence), each clip run as if the agent were
 * speaking throughout, through the same barge-in gate the pipeline uses (media/turn-taking.ts, default settings):
 *
 *   vad <kind> false barge-ins       interruptions on clips with no speech (music, DTMF, cough, silence)
 *   vad <kind> backchannel barge-ins interruptions on "uh huh", "yeah", "okay", "mm", "right" (should be 0)
 *   vad <kind> missed speech         sentences that never interrupted (should be 0)
 *   vad <kind> speech recall         share of the sentences' voiced frames the VAD counted as speaking
 *   vad <kind> decision p50          ms from a sentence's first voiced frame to the interruption (minSpeechMs + lag)
 *   vad <kind> cost per frame        CPU µs per 20 ms frame: process(), plus for silero the model's runs (one per
 *                                    32 ms window, on onnxruntime's thread) spread over the frames
 *
 * `npm run bench -- vad`. Kind = energy (default) and silero. Detection figures are a property of the detectors on
 * this set; the cost is a timing of this machine.
 */
import { BargeInGate, DEFAULT_TURN_TAKING } from '../media/turn-taking.ts';
import { EnergyVad, type Vad } from '../media/vad.ts';
import { loadSileroModel, SileroVad } from '../media/vad-silero.ts';
import { log, percentile, report } from './lib.ts';
import { makeSet, RATE, WARMUP_MS, type Clip } from './vad/make-set.ts';

const FRAME = RATE / 50;
const WARMUP_FRAMES = WARMUP_MS / 20;
const clips = makeSet();
log(`${clips.length} clips`);

interface ClipRun {
  interruptAt: number | null;
  speakingFrames: Set<number>;
}

interface Cost {
  ms: number;
  frames: number;
  infer: () => number;
  inferAtWarm: number;
}

async function runClip(vad: Vad, clip: Clip, settle: (() => Promise<void>) | null, cost: Cost): Promise<ClipRun> {
  const gate = new BargeInGate(DEFAULT_TURN_TAKING.bargeIn);
  let run = 0;
  let interruptAt: number | null = null;
  const speakingFrames = new Set<number>();
  for (let f = 0; (f + 1) * FRAME <= clip.samples.length; f++) {
    const frame = clip.samples.subarray(f * FRAME, (f + 1) * FRAME);
    const t0 = performance.now();
    const ev = vad.process(frame, RATE);
    const spent = performance.now() - t0;
    if (settle) await settle();
    if (f === WARMUP_FRAMES - 1) cost.inferAtWarm = cost.infer();
    if (f < WARMUP_FRAMES) continue; // the detector learns the line; nothing scored or timed
    cost.ms += spent;
    cost.frames++;
    run = vad.voiced ? run + 1 : 0;
    const d = ev === 'speech_start' ? gate.speechStarted(true, run * 20) : ev === 'speech_end' ? gate.speechEnded() : gate.frame(vad.voiced ? 20 : 0, true);
    if (d?.kind === 'interrupt' && interruptAt === null) interruptAt = f;
    if (vad.speaking) speakingFrames.add(f);
  }
  return { interruptAt, speakingFrames };
}

async function measure(kind: 'energy' | 'silero', make: () => Vad & { close?(): void }, settleOf: (v: Vad) => (() => Promise<void>) | null, inferMs: (v: Vad) => number): Promise<void> {
  const cost: Cost = { ms: 0, frames: 0, infer: () => 0, inferAtWarm: 0 };
  let inference = 0;
  let falseBarge = 0;
  let noiseClips = 0;
  let backchannelBarge = 0;
  let backchannels = 0;
  let missed = 0;
  let sentences = 0;
  let voicedFrames = 0;
  let heardFrames = 0;
  const latency: number[] = [];
  const notes: string[] = [];
  for (const clip of clips) {
    const vad = make();
    cost.infer = () => inferMs(vad);
    cost.inferAtWarm = 0;
    const r = await runClip(vad, clip, settleOf(vad), cost);
    inference += inferMs(vad) - cost.inferAtWarm; // the warm-up's windows are not counted
    vad.close?.();
    if (clip.kind === 'speech') {
      sentences++;
      if (r.interruptAt === null) {
        missed++;
        notes.push(`${clip.id}: missed`);
      } else if (clip.voiced) latency.push((r.interruptAt - clip.voiced.first + 1) * 20);
      if (clip.voiced) {
        for (let f = clip.voiced.first; f <= clip.voiced.last; f++) {
          voicedFrames++;
          if (r.speakingFrames.has(f)) heardFrames++;
        }
      }
    } else if (clip.kind === 'backchannel') {
      backchannels++;
      if (r.interruptAt !== null) {
        backchannelBarge++;
        notes.push(`${clip.id}: interrupted`);
      }
    } else {
      noiseClips++;
      if (r.interruptAt !== null) {
        falseBarge++;
        notes.push(`${clip.id}: false barge-in`);
      }
    }
  }
  for (const n of notes) log(`${kind}: ${n}`);
  report({ figure: `vad ${kind} false barge-ins`, value: falseBarge, unit: 'clips', target: { op: '<=', value: 0, unit: 'clips' }, note: `of ${noiseClips} clips without speech (music, DTMF, cough, silence)` });
  report({ figure: `vad ${kind} backchannel barge-ins`, value: backchannelBarge, unit: 'clips', target: { op: '<=', value: 0, unit: 'clips' }, note: `of ${backchannels} backchannels` });
  report({ figure: `vad ${kind} missed speech`, value: missed, unit: 'clips', target: { op: '<=', value: 0, unit: 'clips' }, note: `of ${sentences} sentences (clean and noisy)` });
  report({ figure: `vad ${kind} speech recall`, value: voicedFrames ? Math.round((1000 * heardFrames) / voicedFrames) / 10 : 0, unit: '%' });
  report({ figure: `vad ${kind} decision p50`, value: latency.length ? percentile(latency, 50) : 0, unit: 'ms', note: `first voiced frame → interruption (minSpeechMs ${DEFAULT_TURN_TAKING.bargeIn.minSpeechMs})` });
  report({ figure: `vad ${kind} cost per frame`, value: Math.round((1000 * (cost.ms + inference)) / Math.max(1, cost.frames)) / 1000, unit: 'ms', note: kind === 'silero' ? `process ${((1000 * cost.ms) / cost.frames).toFixed(1)} µs + inference ${((1000 * inference) / cost.frames).toFixed(1)} µs per 20 ms frame` : undefined });
}

await measure('energy', () => new EnergyVad(), () => null, () => 0);
const model = await loadSileroModel();
await measure(
  'silero',
  () => new SileroVad(model),
  (v) => () => (v as SileroVad).settled(),
  (v) => (v as SileroVad).stats.inferMs,
);
