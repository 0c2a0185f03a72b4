/**
 * µ-law WAV (WAVE_FORMAT_MULAW = 7), written by hand: G.711 µ-law at 8 kHz is
 * half the size of PCM16, needs no ffmpeg process and is what telephony
 * archives and players expect. Layout (58-byte header, all little-endian):
 *
 *   RIFF <size> WAVE
 *   fmt  (18) formatTag=7 channels rate byteRate=rate*channels blockAlign=channels bits=8 cbSize=0
 *   fact (4)  sample frames            (required for non-PCM formats)
 *   data <n>  interleaved µ-law bytes  (+1 pad byte when n is odd)
 */
import os from 'node:os';
import { muLawEncode, MU_LAW_SILENCE } from '../media/g711.ts';

export const WAVE_FORMAT_MULAW = 7;
export const MULAW_WAV_HEADER_BYTES = 58;

/** A µ-law WAV header for `frames` sample frames. */
export function muLawWavHeader(frames: number, channels = 2, rate = 8000): Buffer {
  if (!Number.isInteger(frames) || frames < 0) throw new RangeError(`frames must be a non-negative integer, got ${frames}`);
  const dataBytes = frames * channels;
  const pad = dataBytes % 2;
  if (MULAW_WAV_HEADER_BYTES - 8 + dataBytes + pad > 0xffffffff) throw new RangeError('recording too long for a WAV file (4 GiB)');
  const h = Buffer.alloc(MULAW_WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(MULAW_WAV_HEADER_BYTES - 8 + dataBytes + pad, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(18, 16);
  h.writeUInt16LE(WAVE_FORMAT_MULAW, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels, 28); // byte rate: 1 byte per sample
  h.writeUInt16LE(channels, 32); // block align
  h.writeUInt16LE(8, 34); // bits per sample
  h.writeUInt16LE(0, 36); // cbSize
  h.write('fact', 38, 'ascii');
  h.writeUInt32LE(4, 42);
  h.writeUInt32LE(frames, 46);
  h.write('data', 50, 'ascii');
  h.writeUInt32LE(dataBytes, 54);
  return h;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** The s16le samples in `bytes` (a view when aligned on a little-endian host, else a copy). */
export function s16leSamples(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Int16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
  return out;
}

/** Builds a µ-law WAV of a known length from interleaved s16le PCM pushed in pieces. */
export class MuLawWavBuilder {
  private readonly out: Buffer;
  private pos = MULAW_WAV_HEADER_BYTES;
  private readonly end: number;

  constructor(readonly frames: number, readonly channels = 2, readonly rate = 8000) {
    const header = muLawWavHeader(frames, channels, rate);
    const dataBytes = frames * channels;
    this.end = MULAW_WAV_HEADER_BYTES + dataBytes;
    this.out = Buffer.alloc(this.end + (dataBytes % 2));
    header.copy(this.out, 0);
  }

  /** Appends interleaved s16le PCM (a whole number of samples). */
  addPcm(pcm: Uint8Array): void {
    if (pcm.length % 2 !== 0) throw new RangeError('PCM chunk must be a whole number of 16-bit samples');
    const samples = s16leSamples(pcm);
    this.reserve(samples.length);
    muLawEncode(samples, this.out.subarray(this.pos, this.pos + samples.length));
    this.pos += samples.length;
  }

  /** Appends `samples` (channel samples, not frames) of silence. */
  addSilence(samples: number): void {
    this.reserve(samples);
    this.out.fill(MU_LAW_SILENCE, this.pos, this.pos + samples);
    this.pos += samples;
  }

  /** The finished file; throws if fewer samples were added than the header announced. */
  finish(): Buffer {
    if (this.pos !== this.end) throw new Error(`WAV incomplete: ${this.pos - MULAW_WAV_HEADER_BYTES} of ${this.end - MULAW_WAV_HEADER_BYTES} data bytes`);
    return this.out;
  }

  private reserve(n: number): void {
    if (this.pos + n > this.end) throw new RangeError(`WAV overflow: ${n} more samples than the ${this.frames} frames announced`);
  }
}
