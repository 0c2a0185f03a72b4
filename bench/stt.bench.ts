/**
 * The local speech engines on a held set of phone-line recordings (bench/stt/make-set.ts: espeak-ng sentences and
 * consent answers in several voices and speeds, clean and under line noise, through µ-law 8 kHz), each recogniser
 * through the gateway's own SpeechToText interface, as a call uses it:
 *
 *   stt <engine> wer <synth> <condition>    word error rate on the sentences (Σ errors / Σ words, bench/stt/wer.ts), by
 *                                           who spoke them (espeak-ng, or Flite's recorded-speech voices) and line
 *   stt <engine> rtf                        decoding time / audio time, one stream at a time (wall clock, < 1 = faster
 *                                           than real time)
 *   stt <engine> rtf 4 streams              the same with 4 streams decoded at once (the 2 cores shared)
 *   stt <engine> session overhead           ms to start a session and end it with no audio (pocketsphinx: a process that
 *                                           loads the 29 MB language model), included in both rtf figures
 *   stt <engine> consent accuracy grammar <condition>
 *                                           answers classified right (yes / no / neither) in `yes-no` mode
 *   stt <engine> consent false answers grammar
 *                                           answers taken for the wrong one, or a non-answer taken for yes or no, in
 *                                           `yes-no` mode (a missed answer re-prompts; a false one is not recoverable)
 *   stt <engine> consent accuracy open <condition>, consent false answers open
 *                                           the same through `transcript` mode + classifyYesNo (how an open-
 *                                           vocabulary engine without a grammar would decide)
 *   tts <engine> round-trip wer             the synthesiser's speech of the held sentences (its adapter, at 8 kHz,
 *                                           through µ-law) recognised by the best recogniser here: intelligibility
 *   tts <engine> round-trip wer 16k         the same at 16 kHz without µ-law (pocketsphinx's own band: its model is
 *                                           wideband, so on phone audio it is the recogniser that fails, not the voice)
 *
 * TTS engines: espeak (speech/espeak.ts, the gateway's) and, when installed, Flite (`FliteTts` below, a bench-only
 * stand-in: Flite is not a gateway provider).
 *
 * `npm run bench -- stt` (run it with `nice`; `BENCH_FILTER=tts npx tsx bench/stt.bench.ts` runs only the
 * synthesisers, with the first recogniser installed). Engines are the local ones installed here: a new candidate is one
 * entry in STT_ENGINES / TTS_ENGINES (docs/speech-evaluation.md says why there is no neural one yet). Accuracy figures
 * are properties of the engines on this set; the rtf figures are timings of this machine under its load.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SampleRate } from '../media/frame.ts';
import { Resampler } from '../media/resample.ts';
import { EspeakTts } from '../speech/espeak.ts';
import { PocketsphinxStt } from '../speech/pocketsphinx.ts';
import type { SpeechToText, SttMode } from '../speech/stt.ts';
import type { TextToSpeech } from '../speech/tts.ts';
import { classifyYesNo } from '../speech/vocabulary.ts';
import { muLawDecode, muLawEncode } from '../media/g711.ts';
import { log, percentile, report } from './lib.ts';
import { parseWav } from '../speech/wav.ts';
import { fliteInstalled, makeSet, RATE, SENTENCES, type SttClip } from './stt/make-set.ts';
import { werPercent, wordErrors, type WordErrors } from './stt/wer.ts';

interface SttEngine {
  name: string;
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  make(): SpeechToText;
}

interface TtsEngine {
  name: string;
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  make(): TextToSpeech;
}

/** Flite (Debian `flite`, voice slt) → WAV file → resampled to the rate asked for. Bench only. */
class FliteTts implements TextToSpeech {
  readonly name = 'flite';
  synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stt-flite-'));
    const wav = path.join(dir, 's.wav');
    return new Promise<Int16Array>((resolve, reject) => {
      execFile('flite', ['-voice', 'slt', '-t', text, '-o', wav], (err) => {
        if (err) return reject(err);
        const w = parseWav(fs.readFileSync(wav));
        if (w.sampleRate === sampleRate) return resolve(w.samples);
        const rs = new Resampler(w.sampleRate, sampleRate);
        const a = rs.process(w.samples);
        resolve(Int16Array.from([...a, ...rs.flush()]));
      });
    }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
}

const STT_ENGINES: SttEngine[] = [{ name: 'pocketsphinx', available: () => PocketsphinxStt.available(), make: () => new PocketsphinxStt() }];
const TTS_ENGINES: TtsEngine[] = [
  { name: 'espeak', available: () => EspeakTts.available(), make: () => new EspeakTts() },
  { name: 'flite', available: () => Promise.resolve(fliteInstalled() ? { ok: true } : { ok: false, reason: 'flite not installed (apt-get install flite)' }), make: () => new FliteTts() },
];

interface Decoded {
  /** The final results' texts, in order. */
  texts: string[];
  ms: number;
}

/** Feeds `samples` as 20 ms frames (as fast as the session takes them), ends the session, returns its finals. */
async function decode(stt: SpeechToText, samples: Int16Array, mode: SttMode, rate: 8000 | 16000 = RATE): Promise<Decoded> {
  const t0 = performance.now();
  const session = stt.startSession({ sampleRate: rate, mode });
  const texts: string[] = [];
  session.on('result', (r) => {
    if (r.isFinal && r.text.trim() !== '') texts.push(r.text);
  });
  session.on('error', (e) => log(`${stt.name}: ${e.message}`));
  const frame = rate / 50;
  for (let i = 0; i + frame <= samples.length; i += frame) session.write({ samples: samples.slice(i, i + frame), sampleRate: rate, timestamp: i });
  await session.end();
  session.close();
  return { texts, ms: performance.now() - t0 };
}

const audioMs = (clips: readonly SttClip[]): number => clips.reduce((n, c) => n + (c.samples.length * 1000) / RATE, 0);

/** Reports the engine's figures; returns its word error rate over all sentences (to pick the best recogniser). */
async function measureStt(engine: SttEngine, clips: readonly SttClip[]): Promise<number> {
  const stt = engine.make();
  const sentences = clips.filter((c) => c.kind === 'sentence');
  const answers = clips.filter((c) => c.kind === 'answer');
  const errors = new Map<string, WordErrors[]>();
  let decodeMs = 0;
  for (const clip of sentences) {
    const d = await decode(stt, clip.samples, 'transcript');
    decodeMs += d.ms;
    const heard = d.texts.join(' ');
    const e = wordErrors(clip.text, heard);
    const key = `${clip.synth} ${clip.condition}`;
    errors.set(key, [...(errors.get(key) ?? []), e]);
    if (e.errors > 0) log(`${engine.name} ${clip.id}: "${heard}" (${e.errors}/${e.words})`);
  }
  const rtf = decodeMs / audioMs(sentences);
  const overhead: number[] = [];
  for (let i = 0; i < 3; i++) overhead.push((await decode(stt, new Int16Array(0), 'transcript')).ms);

  const started = performance.now();
  const queue = [...sentences];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let clip = queue.shift(); clip; clip = queue.shift()) await decode(stt, clip.samples, 'transcript');
    }),
  );
  const rtf4 = (performance.now() - started) / audioMs(sentences);

  for (const [key, list] of errors) {
    const note = `${list.reduce((n, e) => n + e.errors, 0)} errors in ${list.reduce((n, e) => n + e.words, 0)} words, ${list.length} clips`;
    report({ figure: `stt ${engine.name} wer ${key}`, value: werPercent(list), unit: '%', note });
  }
  report({ figure: `stt ${engine.name} rtf`, value: Math.round(rtf * 1000) / 1000, unit: 'x', target: { op: '<=', value: 1 }, note: `${(audioMs(sentences) / 1000).toFixed(1)} s of audio, one stream at a time` });
  report({ figure: `stt ${engine.name} session overhead`, value: Math.round(percentile(overhead, 50)), unit: 'ms', note: 'median of 3: start, then end with no audio' });
  report({ figure: `stt ${engine.name} rtf 4 streams`, value: Math.round(rtf4 * 1000) / 1000, unit: 'x', note: 'wall time for the sentences decoded 4 at a time / their audio time' });
  await measureConsent(engine.name, stt, answers);
  return werPercent([...errors.values()].flat());
}

/** The consent answers in `yes-no` mode (the grammar) and in `transcript` mode + classifyYesNo (open vocabulary). */
async function measureConsent(name: string, stt: SpeechToText, answers: readonly SttClip[]): Promise<void> {
  const right = { grammar: { clean: 0, noisy: 0 }, open: { clean: 0, noisy: 0 } };
  const falseAnswers = { grammar: 0, open: 0 };
  const score = (how: 'grammar' | 'open', clip: SttClip, answer: 'yes' | 'no' | null, heard: string): void => {
    if (answer === clip.expect) right[how][clip.condition]++;
    else {
      if (answer !== null) falseAnswers[how]++;
      log(`${name} ${how} ${clip.id}: "${heard}" → ${answer ?? 'neither'} (expected ${clip.expect ?? 'neither'})`);
    }
  };
  for (const clip of answers) {
    const g = await decode(stt, clip.samples, 'yes-no');
    const answer = g.texts.find((t) => t === 'yes' || t === 'no') ?? null;
    score('grammar', clip, answer === 'yes' || answer === 'no' ? answer : null, g.texts.join(' '));
    const heard = (await decode(stt, clip.samples, 'transcript')).texts.join(' ');
    score('open', clip, classifyYesNo(heard), heard);
  }
  for (const how of ['grammar', 'open'] as const) {
    for (const condition of ['clean', 'noisy'] as const) {
      const n = answers.filter((c) => c.condition === condition).length;
      const value = n === 0 ? 0 : Math.round((1000 * right[how][condition]) / n) / 10;
      report({ figure: `stt ${name} consent accuracy ${how} ${condition}`, value, unit: '%', note: `of ${n} answers (yes / no / neither), ${how === 'grammar' ? 'yes-no mode' : 'transcript mode + classifyYesNo'}` });
    }
    report({ figure: `stt ${name} consent false answers ${how}`, value: falseAnswers[how], unit: 'clips', target: { op: '<=', value: 0, unit: 'clips' }, note: 'a wrong yes/no, or a non-answer taken for one' });
  }
}

/**
 * Each held sentence synthesised by `tts` (400 ms of quiet either side), recognised by `stt`: at 8 kHz through µ-law
 * (a phone line), and at 16 kHz as it is.
 */
async function measureTts(engine: TtsEngine, stt: SpeechToText): Promise<void> {
  const tts = engine.make();
  for (const rate of [RATE, 16000] as const) {
    const all: WordErrors[] = [];
    for (const text of SENTENCES) {
      const pcm = await tts.synthesize(text, rate);
      const pad = new Int16Array((rate * 400) / 1000);
      const padded = Int16Array.from([...pad, ...pcm, ...pad]);
      const heard = (await decode(stt, rate === RATE ? muLawDecode(muLawEncode(padded)) : padded, 'transcript', rate)).texts.join(' ');
      const e = wordErrors(text, heard);
      all.push(e);
      if (e.errors > 0) log(`${engine.name} → ${stt.name} at ${rate} Hz: "${heard}" (${e.errors}/${e.words})`);
    }
    const figure = `tts ${engine.name} round-trip wer${rate === RATE ? '' : ' 16k'}`;
    report({ figure, value: werPercent(all), unit: '%', note: `${SENTENCES.length} sentences through ${stt.name} at ${rate} Hz${rate === RATE ? ', µ-law' : ''}` });
  }
}

/** BENCH_FILTER starting with "tts": the recognisers are not measured, the first one installed is used. */
const onlyTts = (process.env.BENCH_FILTER ?? '').startsWith('tts');
const clips = onlyTts ? [] : makeSet();
log(`${clips.length} clips (${(audioMs(clips) / 1000).toFixed(1)} s)`);
let recogniser: SpeechToText | null = null;
let bestWer = Infinity;
for (const engine of STT_ENGINES) {
  const ok = await engine.available();
  if (!ok.ok) {
    log(`${engine.name}: skipped (${ok.reason})`);
    continue;
  }
  const wer = onlyTts ? 0 : await measureStt(engine, clips);
  if (wer < bestWer) {
    bestWer = wer;
    recogniser = engine.make();
  }
}
if (recogniser) {
  for (const engine of TTS_ENGINES) {
    const ok = await engine.available();
    if (ok.ok) await measureTts(engine, recogniser);
    else log(`${engine.name}: skipped (${ok.reason})`);
  }
} else log('no recogniser installed: the synthesisers are not measured');
