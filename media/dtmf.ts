/**
 * DTMF: RFC 4733 telephone-event payloads and an in-band Goertzel detector.
 *
 * RFC 4733 §2.3 payload (4 bytes, network order):
 *   event (8) | E (1) R (1) volume (6) | duration (16, timestamp units)
 * Events 0-9 are digits, 10 '*', 11 '#', 12-15 'A'-'D'.
 *
 * The detector runs eight Goertzel filters (the DTMF row and column
 * frequencies) over 25.6 ms blocks (205 samples at 8 kHz, scaled for other
 * rates), in two banks offset by half a block so a decision is made every
 * 12.8 ms. A block is a candidate key when its strongest row and column tones
 * together carry at least `minToneShare` of the block's energy, each is at
 * least 6 dB above the other tones of its group, their levels differ by no
 * more than `maxTwistDb`, and the block is louder than `minLevelDb`. A key is
 * reported once when three consecutive decisions agree (their blocks span
 * 51 ms) and released after three consecutive decisions that don't match it.
 * With the default share of 0.5 (a block half filled with tone carries about
 * half the share) this gives: tones of 40 ms or more always detected, 25 ms
 * or less never; presses separated by gaps of 40 ms or more reported
 * separately, while a dropout of up to 25 ms (one lost 20 ms packet) inside a
 * tone does not cause a second report. The 205-sample block also rejects tones
 * 2 % or more off frequency (outside the Goertzel main lobe); ±1.5 % passes.
 * Processing is streaming (any chunk sizes) and allocates only the result.
 */

export interface TelephoneEvent {
  /** Event code, 0-255 (0-15 are DTMF keys). */
  event: number;
  /** E bit: this packet ends the event. */
  end: boolean;
  /** Power level of the tone in -dBm0, 0-63. */
  volume: number;
  /** Duration so far in RTP timestamp units, 0-65535. */
  duration: number;
}

/** DTMF key for each RFC 4733 event code 0-15. */
const EVENT_DIGITS = '0123456789*#ABCD';

/** Parses a telephone-event payload; null if it is shorter than 4 bytes or not bytes. */
export function parseTelephoneEvent(buf: Uint8Array): TelephoneEvent | null {
  if (!(buf instanceof Uint8Array) || buf.length < 4) return null;
  const b1 = buf[1] as number;
  return {
    event: buf[0] as number,
    end: (b1 & 0x80) !== 0,
    volume: b1 & 0x3f,
    duration: ((buf[2] as number) << 8) | (buf[3] as number),
  };
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`telephone-event ${name} must be an integer in 0..${max}, got ${value}`);
  }
}

/** Serialises a telephone-event payload (R bit zero) into `out` or a new 4-byte array. */
export function serializeTelephoneEvent(ev: TelephoneEvent, out?: Uint8Array): Uint8Array {
  checkField('event', ev.event, 255);
  checkField('volume', ev.volume, 63);
  checkField('duration', ev.duration, 65535);
  const dst = out ?? new Uint8Array(4);
  if (dst.length < 4) throw new RangeError('telephone-event output buffer needs 4 bytes');
  dst[0] = ev.event;
  dst[1] = (ev.end ? 0x80 : 0) | ev.volume;
  dst[2] = ev.duration >> 8;
  dst[3] = ev.duration & 0xff;
  return dst;
}

/** '0'-'9', '*', '#', 'A'-'D' for events 0-15; null for other events. */
export function eventToDigit(event: number): string | null {
  return Number.isInteger(event) && event >= 0 && event < 16 ? (EVENT_DIGITS[event] as string) : null;
}

/** RFC 4733 event code for a DTMF key (case-insensitive A-D); null if not a key. */
export function digitToEvent(digit: string): number | null {
  if (digit.length !== 1) return null;
  const i = EVENT_DIGITS.indexOf(digit.toUpperCase());
  return i < 0 ? null : i;
}

/** Row (low group) and column (high group) frequencies in Hz. */
export const DTMF_ROW_HZ = [697, 770, 852, 941] as const;
export const DTMF_COL_HZ = [1209, 1336, 1477, 1633] as const;
/** Keypad layout: KEYPAD[row][col]. */
const KEYPAD = ['123A', '456B', '789C', '*0#D'] as const;

export interface DtmfDetectorOptions {
  /** Minimum mean block power in dBFS (full-scale sine = -3 dBFS). Default -40. */
  minLevelDb?: number;
  /** Fraction of block energy the two tones must carry. Default 0.5. */
  minToneShare?: number;
  /** Maximum level difference between the two tones in dB. Default 8. */
  maxTwistDb?: number;
}

const BANKS = 2;
/** Consecutive agreeing (half-overlapping) blocks needed: they span 2 blocks = 51 ms. */
const REQUIRED_HITS = 3;
/** Consecutive non-matching decisions that release a held key (bridges a lost packet). */
const RELEASE_MISSES = 3;
const TONES = 8;
/** Peak tone must exceed the rest of its group by 6 dB (power ratio ~4). */
const GROUP_MARGIN = Math.pow(10, 6 / 10);

export class DtmfDetector {
  readonly sampleRate: number;
  /** Goertzel block length in samples. */
  readonly blockSize: number;
  private readonly coeff = new Float64Array(TONES);
  private readonly s1 = new Float64Array(BANKS * TONES);
  private readonly s2 = new Float64Array(BANKS * TONES);
  private readonly power = new Float64Array(TONES);
  private readonly energy = new Float64Array(BANKS);
  /** Samples accumulated per bank; negative = samples still to skip (offset). */
  private readonly count = new Int32Array(BANKS);
  private readonly minPower: number;
  private readonly minShare: number;
  private readonly maxTwist: number;
  private lastCandidate = -1;
  /** How many consecutive decisions produced lastCandidate. */
  private run = 0;
  private held = -1;
  /** Consecutive decisions not matching the held key. */
  private misses = 0;

  constructor(sampleRate: number, opts: DtmfDetectorOptions = {}) {
    if (!(sampleRate >= 4000)) throw new RangeError(`DTMF detection needs a sample rate >= 4000, got ${sampleRate}`);
    this.sampleRate = sampleRate;
    this.blockSize = Math.round((205 * sampleRate) / 8000);
    const freqs = [...DTMF_ROW_HZ, ...DTMF_COL_HZ];
    for (let k = 0; k < TONES; k++) this.coeff[k] = 2 * Math.cos((2 * Math.PI * (freqs[k] as number)) / sampleRate);
    this.minPower = Math.pow(10, (opts.minLevelDb ?? -40) / 10) * 32768 * 32768;
    this.minShare = opts.minToneShare ?? 0.5;
    this.maxTwist = Math.pow(10, (opts.maxTwistDb ?? 8) / 10);
    this.reset();
  }

  /** Forgets all state. */
  reset(): void {
    this.s1.fill(0);
    this.s2.fill(0);
    this.energy.fill(0);
    for (let b = 0; b < BANKS; b++) this.count[b] = -Math.floor((b * this.blockSize) / BANKS);
    this.lastCandidate = -1;
    this.run = 0;
    this.held = -1;
    this.misses = 0;
  }

  /** Feeds samples; returns keys whose press was recognised in them. */
  process(samples: Int16Array): string[] {
    const found: string[] = [];
    const { s1, s2, coeff, energy, count, blockSize } = this;
    for (let i = 0; i < samples.length; i++) {
      const x = samples[i] as number;
      for (let b = 0; b < BANKS; b++) {
        const c = count[b] as number;
        if (c < 0) {
          count[b] = c + 1;
          continue;
        }
        const base = b * TONES;
        for (let k = 0; k < TONES; k++) {
          const j = base + k;
          const s0 = x + (coeff[k] as number) * (s1[j] as number) - (s2[j] as number);
          s2[j] = s1[j] as number;
          s1[j] = s0;
        }
        energy[b] = (energy[b] as number) + x * x;
        if (c + 1 === blockSize) {
          const key = this.decide(this.classify(b));
          if (key >= 0) found.push(KEYPAD[key >> 2]?.[key & 3] as string);
          count[b] = 0;
        } else {
          count[b] = c + 1;
        }
      }
    }
    return found;
  }

  /** Evaluates bank `b`'s finished block, resets it; returns key index or -1. */
  private classify(b: number): number {
    const { s1, s2, coeff, power, blockSize } = this;
    const base = b * TONES;
    for (let k = 0; k < TONES; k++) {
      const p = s1[base + k] as number;
      const q = s2[base + k] as number;
      power[k] = p * p + q * q - (coeff[k] as number) * p * q;
      s1[base + k] = 0;
      s2[base + k] = 0;
    }
    const e = this.energy[b] as number;
    this.energy[b] = 0;
    if (e / blockSize < this.minPower) return -1;
    const row = strongest(power, 0);
    const col = strongest(power, 4);
    if (row < 0 || col < 0) return -1;
    const pr = power[row] as number;
    const pc = power[4 + col] as number;
    // A tone of amplitude A gives Goertzel power (A·N/2)² and energy N·A²/2.
    const share = (2 * (pr + pc)) / (blockSize * e);
    if (share < this.minShare) return -1;
    if (pr > pc * this.maxTwist || pc > pr * this.maxTwist) return -1;
    return row * 4 + col;
  }

  /**
   * Debounce: report after REQUIRED_HITS agreeing decisions; release the held
   * key after RELEASE_MISSES consecutive decisions that don't match it.
   */
  private decide(candidate: number): number {
    this.run = candidate === this.lastCandidate ? this.run + 1 : 1;
    this.lastCandidate = candidate;
    if (this.held >= 0) {
      this.misses = candidate === this.held ? 0 : this.misses + 1;
      if (this.misses < RELEASE_MISSES) return -1;
      this.held = -1;
    }
    if (candidate < 0 || this.run < REQUIRED_HITS) return -1;
    this.held = candidate;
    this.misses = 0;
    return candidate;
  }
}

/** Index (0-3) of the strongest of power[from..from+3] if it clears the group margin, else -1. */
function strongest(power: Float64Array, from: number): number {
  let best = 0;
  for (let k = 1; k < 4; k++) if ((power[from + k] as number) > (power[from + best] as number)) best = k;
  const peak = power[from + best] as number;
  for (let k = 0; k < 4; k++) {
    if (k !== best && (power[from + k] as number) * GROUP_MARGIN > peak) return -1;
  }
  return best;
}
