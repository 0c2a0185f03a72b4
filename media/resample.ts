/**
 * Streaming rational-ratio resampler (polyphase windowed-sinc FIR).
 *
 * Converts between any two of 8/16/24/48 kHz (and in general any pair of
 * integer rates) by the textbook upsample-by-L / low-pass / downsample-by-M
 * scheme, computed polyphase so only the taps that touch real input samples
 * are evaluated. The prototype low-pass is a Kaiser-windowed sinc designed at
 * the upsampled rate with its cutoff at `cutoff` × the lower Nyquist and its
 * stopband starting at the lower Nyquist (so, at 8 kHz: pass band to ~3.2 kHz,
 * -6 dB at 3.6 kHz, ≥ `attenuationDb` from 4 kHz).
 *
 * The filter is causal: every `process()` call returns exactly the output the
 * input so far determines (for 20 ms frames at the supported rates, exactly one
 * 20 ms output frame per input frame), the signal is delayed by `delayMs`
 * (group delay, ≈1-2 ms), and `flush()` returns the tail still in the filter
 * and resets the resampler. Chunked processing is bit-identical to one-shot
 * processing because each output sample is computed from the same samples and
 * coefficients in the same order regardless of how input was split.
 */

export interface ResamplerOptions {
  /** -6 dB point as a fraction (0..1) of the lower rate's Nyquist. Default 0.9. */
  cutoff?: number;
  /** Stopband attenuation target of the Kaiser design in dB. Default 60. */
  attenuationDb?: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function kaiserBeta(attenuationDb: number): number {
  const a = attenuationDb;
  if (a > 50) return 0.1102 * (a - 8.7);
  if (a >= 21) return 0.5842 * Math.pow(a - 21, 0.4) + 0.07886 * (a - 21);
  return 0;
}

export class Resampler {
  readonly inputRate: number;
  readonly outputRate: number;
  /** Group delay of the filter in milliseconds. */
  readonly delayMs: number;
  /** Interpolation factor L. */
  private readonly up: number;
  /** Decimation factor M. */
  private readonly down: number;
  /** Centre of the prototype filter, in upsampled samples. */
  private readonly centerUp: number;
  /** Taps per polyphase branch. */
  private readonly taps: number;
  /** Polyphase coefficients: branch p occupies [p*taps, (p+1)*taps). */
  private readonly bank: Float64Array;
  /** The last taps-1 input samples, oldest first. */
  private readonly history: Float64Array;
  /** Scratch: history followed by the current input; grown on demand. */
  private work: Float64Array;
  private inCount = 0;
  private outCount = 0;

  constructor(inputRate: number, outputRate: number, opts: ResamplerOptions = {}) {
    if (!Number.isInteger(inputRate) || !Number.isInteger(outputRate) || inputRate <= 0 || outputRate <= 0) {
      throw new RangeError(`invalid sample rates ${inputRate} -> ${outputRate}`);
    }
    const cutoff = opts.cutoff ?? 0.9;
    const attenuationDb = opts.attenuationDb ?? 60;
    if (!(cutoff > 0 && cutoff < 1)) throw new RangeError(`cutoff must be in (0, 1), got ${cutoff}`);
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    const g = gcd(inputRate, outputRate);
    this.up = outputRate / g;
    this.down = inputRate / g;

    if (this.up === 1 && this.down === 1) {
      this.taps = 1;
      this.bank = new Float64Array([1]);
      this.history = new Float64Array(0);
      this.work = new Float64Array(0);
      this.delayMs = 0;
      this.centerUp = 0;
      return;
    }

    // Design the prototype low-pass at the upsampled rate R = inputRate * L.
    const rate = inputRate * this.up;
    const nyquist = Math.min(inputRate, outputRate) / 2;
    const fc = (cutoff * nyquist) / rate; // cycles per sample at R
    const transition = (2 * (1 - cutoff) * nyquist) / rate;
    let length = Math.ceil((attenuationDb - 8) / (2.285 * 2 * Math.PI * transition)) + 1;
    if (length % 2 === 0) length++;
    const center = (length - 1) / 2;
    const beta = kaiserBeta(attenuationDb);
    const i0Beta = besselI0(beta);
    const proto = new Float64Array(length);
    let sum = 0;
    for (let k = 0; k < length; k++) {
      const t = k - center;
      const x = 2 * fc * t;
      const sinc = t === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = t / center;
      const w = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta;
      proto[k] = 2 * fc * sinc * w;
      sum += proto[k] as number;
    }
    const gain = this.up / sum; // unity gain through zero-stuffing
    this.taps = Math.ceil(length / this.up);
    this.bank = new Float64Array(this.up * this.taps);
    for (let p = 0; p < this.up; p++) {
      for (let m = 0; m < this.taps; m++) {
        const k = p + m * this.up;
        this.bank[p * this.taps + m] = k < length ? (proto[k] as number) * gain : 0;
      }
    }
    this.history = new Float64Array(this.taps - 1);
    this.work = new Float64Array(this.taps - 1 + 960);
    this.centerUp = center;
    this.delayMs = (center / rate) * 1000;
  }

  /** Resamples the next chunk of input; keeps filter state for the next call. */
  process(input: Int16Array): Int16Array {
    if (this.up === 1 && this.down === 1) return input.slice();
    const newIn = this.inCount + input.length;
    // Output n needs input up to floor(n*M / L) (causal filter).
    const end = newIn === 0 ? 0 : Math.floor((newIn * this.up - 1) / this.down) + 1;
    return this.run(input, end);
  }

  /** Returns the filter tail (signal still inside the filter) and resets. */
  flush(): Int16Array {
    if (this.up === 1 && this.down === 1) return new Int16Array(0);
    if (this.inCount === 0) return new Int16Array(0);
    // Emit until the centre of the filter has passed the last input sample.
    const total = Math.ceil((this.inCount * this.up + this.centerUp) / this.down);
    const lastNeeded = Math.floor(((total - 1) * this.down) / this.up);
    const zeros = new Int16Array(Math.max(0, lastNeeded - this.inCount + 1));
    const out = this.run(zeros, total);
    this.reset();
    return out;
  }

  /** Drops all state, as if freshly constructed. */
  reset(): void {
    this.history.fill(0);
    this.inCount = 0;
    this.outCount = 0;
  }

  private run(input: Int16Array, end: number): Int16Array {
    const keep = this.history.length;
    const need = keep + input.length;
    if (this.work.length < need) this.work = new Float64Array(need);
    const work = this.work;
    work.set(this.history, 0);
    for (let i = 0; i < input.length; i++) work[keep + i] = input[i] as number;

    const count = Math.max(0, end - this.outCount);
    const out = new Int16Array(count);
    const base = this.inCount - keep; // absolute index of work[0]
    const { up, down, taps, bank } = this;
    for (let i = 0; i < count; i++) {
      const u = (this.outCount + i) * down;
      const jmax = Math.floor(u / up);
      const phase = u - jmax * up;
      const w = jmax - base;
      const off = phase * taps;
      let acc = 0;
      for (let m = 0; m < taps; m++) acc += (bank[off + m] as number) * (work[w - m] as number);
      const s = Math.round(acc);
      out[i] = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
    }
    this.outCount += count;
    this.inCount += input.length;
    // Keep the newest `keep` samples as history (zeros before the stream began).
    if (keep > 0) this.history.set(work.subarray(need - keep, need), 0);
    return out;
  }
}
