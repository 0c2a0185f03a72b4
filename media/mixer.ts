/**
 * The mixer of a call with several legs: every 20 ms slot, each leg's outbound audio is the sum of what its matrix
 * row says it hears (media/mix-matrix.ts), clipped to 16 bits.
 *
 *   put(leg, frame) … put(leg, frame)  ─►  mix()  ─►  out(listener) for each listener
 *   (a leg that put nothing this slot is silent in it; put() copies, so a leg's own buffer is free at once)
 *
 * One sample rate per mixer (the call's media rate): legs at another rate are resampled before `put` and after
 * `out` (media/resample.ts), as every leg already is between its wire and the pipeline.
 *
 * Built for the media clock's budget: nothing is allocated per slot. Buffers are made when the set of legs changes
 * (`setMatrix`), and a slot costs one pass per (listener, heard speaker) pair: a listener that hears one speaker gets
 * a copy, one that hears nobody (or only silent legs) a fill with zeros. `out()` is a view that stays valid until
 * the next `mix()`.
 */
import { matrixProblem, type MixMatrix } from './mix-matrix.ts';
import { samplesPerFrame, type SampleRate } from './frame.ts';

export class Mixer {
  readonly frameSamples: number;
  private ids: string[] = [];
  private index = new Map<string, number>();
  private inputs: Int16Array[] = [];
  private outputs: Int16Array[] = [];
  /** Per slot: whether the leg put a frame (else it is silent). */
  private present = new Uint8Array(0);
  /** Per listener: the indices of the legs it hears. */
  private sources: Int32Array[] = [];
  private readonly acc: Int32Array;
  private matrixValue: MixMatrix;

  constructor(
    readonly rate: SampleRate,
    matrix: MixMatrix,
  ) {
    this.frameSamples = samplesPerFrame(rate);
    this.acc = new Int32Array(this.frameSamples);
    this.matrixValue = matrix;
    this.setMatrix(matrix);
  }

  get matrix(): MixMatrix {
    return this.matrixValue;
  }

  /** Applies `m` from the next slot on. Buffers are kept for legs that stay; a refused matrix changes nothing. */
  setMatrix(m: MixMatrix): void {
    const problem = matrixProblem(m);
    if (problem) throw new Error(`mix matrix refused: ${problem}`);
    const ids = m.legs.map((l) => l.id);
    if (ids.length !== this.ids.length || ids.some((id, i) => id !== this.ids[i])) {
      const old = new Map(this.ids.map((id, i) => [id, i] as const));
      this.inputs = ids.map((id) => this.inputs[old.get(id) ?? -1] ?? new Int16Array(this.frameSamples));
      this.outputs = ids.map((id) => this.outputs[old.get(id) ?? -1] ?? new Int16Array(this.frameSamples));
      this.present = new Uint8Array(ids.length);
      this.ids = ids;
      this.index = new Map(ids.map((id, i) => [id, i] as const));
    }
    this.sources = ids.map((id) => Int32Array.from((m.hears[id] ?? []).map((s) => this.index.get(s)!)));
    this.matrixValue = m;
  }

  /** The leg's frame for this slot (copied; a shorter frame is padded with silence, a longer one cut). */
  put(leg: string, samples: Int16Array): void {
    const i = this.index.get(leg);
    if (i === undefined) throw new Error(`mixer: ${leg} is not a leg of this call`);
    const input = this.inputs[i]!;
    const n = Math.min(samples.length, input.length);
    input.set(n === samples.length ? samples : samples.subarray(0, n));
    if (n < input.length) input.fill(0, n);
    this.present[i] = 1;
  }

  /** Mixes the slot: every listener's output from the frames put since the last `mix()`; then forgets them. */
  mix(): void {
    const { present, inputs, outputs, sources } = this;
    for (let l = 0; l < outputs.length; l++) {
      const out = outputs[l]!;
      const from = sources[l]!;
      let first = -1;
      let count = 0;
      for (let k = 0; k < from.length; k++) {
        if (present[from[k]!] === 1) {
          if (first < 0) first = from[k]!;
          count++;
        }
      }
      if (count === 0) out.fill(0);
      else if (count === 1) out.set(inputs[first]!);
      else this.sum(out, from);
    }
    present.fill(0);
  }

  /** `out` = the present legs of `from` summed, clipped to 16 bits (32-bit accumulator: no overflow below 65,536 legs). */
  private sum(out: Int16Array, from: Int32Array): void {
    const acc = this.acc;
    const n = acc.length;
    let started = false;
    for (let k = 0; k < from.length; k++) {
      const s = from[k]!;
      if (this.present[s] !== 1) continue;
      const input = this.inputs[s]!;
      if (!started) {
        acc.set(input);
        started = true;
        continue;
      }
      for (let j = 0; j < n; j++) acc[j] = acc[j]! + input[j]!;
    }
    for (let j = 0; j < n; j++) {
      const v = acc[j]!;
      out[j] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
  }

  /** What `leg` hears in the slot last mixed (a view: valid until the next `mix()`). */
  out(leg: string): Int16Array {
    const i = this.index.get(leg);
    if (i === undefined) throw new Error(`mixer: ${leg} is not a leg of this call`);
    return this.outputs[i]!;
  }
}
