/** Minimal RIFF/WAVE reader: PCM16 (espeak-ng output, fixtures) and G.711 (agent `play` prompts). */
import { aLawDecode, muLawDecode } from '../media/g711.ts';
import { resampleAll } from './pcm.ts';

export interface Wav {
  sampleRate: number;
  channels: number;
  samples: Int16Array;
}

export function parseWav(buf: Buffer): Wav {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let off = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = { format: buf.readUInt16LE(body), channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAVE data before fmt');
      // Streamed WAVs (espeak-ng --stdout) carry a placeholder size: take what is there.
      if (size === 0 || size === 0xffffffff || body + size > buf.length) size = buf.length - body;
      if ((fmt.format === 6 || fmt.format === 7) && fmt.bits === 8) {
        const bytes = buf.subarray(body, body + size);
        return { sampleRate: fmt.rate, channels: fmt.channels, samples: fmt.format === 7 ? muLawDecode(bytes) : aLawDecode(bytes) };
      }
      if (fmt.format !== 1 || fmt.bits !== 16) throw new Error(`unsupported WAVE format ${fmt.format}/${fmt.bits} bits (PCM 16-bit, µ-law or A-law)`);
      size -= size % 2;
      const samples = new Int16Array(size / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(body + i * 2);
      return { sampleRate: fmt.rate, channels: fmt.channels, samples };
    }
    off = body + size + (size % 2);
  }
  throw new Error('WAVE has no data chunk');
}

/** A WAV as mono PCM16 at `rate` (channels mixed down, resampled): what an agent's `play` sends to the caller. */
export function decodeWav(buf: Buffer, rate: number): Int16Array {
  const wav = parseWav(buf);
  if (wav.channels < 1 || wav.channels > 8) throw new Error(`unsupported WAVE channel count ${wav.channels}`);
  let mono = wav.samples;
  if (wav.channels > 1) {
    mono = new Int16Array(Math.floor(wav.samples.length / wav.channels));
    for (let i = 0; i < mono.length; i++) {
      let sum = 0;
      for (let c = 0; c < wav.channels; c++) sum += wav.samples[i * wav.channels + c] ?? 0;
      mono[i] = Math.round(sum / wav.channels);
    }
  }
  return resampleAll(mono, wav.sampleRate, rate);
}
