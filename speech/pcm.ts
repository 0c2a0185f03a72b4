/** Small PCM16 helpers shared by the speech providers. */
import { Resampler } from '../media/resample.ts';

/** A copy of `samples` as little-endian bytes (safe to queue: the caller may reuse its array). */
export function pcmToBytes(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i] as number, i * 2);
  return out;
}

/** Little-endian PCM16 bytes → samples (a trailing odd byte is dropped). */
export function bytesToPcm(bytes: Uint8Array): Int16Array {
  const n = bytes.length >> 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

export function concatPcm(parts: readonly Int16Array[]): Int16Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Int16Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** One-shot resample of a whole buffer (filter tail included). */
export function resampleAll(samples: Int16Array, fromRate: number, toRate: number): Int16Array {
  if (fromRate === toRate) return samples;
  const rs = new Resampler(fromRate, toRate);
  return concatPcm([rs.process(samples), rs.flush()]);
}
