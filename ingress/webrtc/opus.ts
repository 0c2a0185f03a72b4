/**
 * Opus for WebRTC legs, in pure WASM (@evan/opus's WebAssembly build of libopus
 * — no native build; its prebuilt native addons are never loaded).
 *
 * The RTP clock of Opus is always 48 kHz (RFC 7587), but the codec itself
 * encodes from and decodes straight to 16 kHz, the rate of WebRTC legs: a
 * wideband pipeline (what pocketsphinx decodes natively, and twice what a
 * phone line carries) without a 48 kHz resampling step on every frame.
 *
 *   caller ─ RTP Opus (any frame size 2.5–120 ms) ─► OpusDecoder ─► 20 ms PCM16 @16 kHz
 *   agent  ─ 20 ms PCM16 @16 kHz ─► OpusEncoder ─► one RTP payload per frame
 *            (a leg's encoder runs on the process's Opus thread: opus-thread.ts)
 *
 * One WASM instance serves every codec of the process: each codec is a malloc'd
 * libopus state, and the module re-makes its heap views when the heap grows
 * (opusscript, used before, indexed its views wrongly and broke past ~30–40
 * codec pairs per process — the reason for the switch).
 */
import { Decoder, Encoder } from '@evan/opus/wasm/index.mjs';
import { OPUS_FRAME, OPUS_RATE } from './opus-format.ts';

export { OPUS_FRAME, OPUS_RATE, OPUS_RTP_TICKS_PER_FRAME } from './opus-format.ts';
/** The largest payload the codec's input buffer takes (RFC 6716 packets are ≤ 1275 bytes per frame, ≤ 48 frames). */
export const OPUS_MAX_PAYLOAD = 8192;
/** OPUS_SET_BITRATE_REQUEST and OPUS_SET_COMPLEXITY_REQUEST (opus_defines.h). */
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_COMPLEXITY = 4010;
/** The gateway's default encoder complexity (config.ts: SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY). */
export const OPUS_DEFAULT_COMPLEXITY = 5;

export class OpusEncoder {
  private readonly codec = new Encoder({ channels: 1, sample_rate: OPUS_RATE, application: 'voip' });
  private freed = false;

  constructor(opts: { bitrate?: number; complexity?: number } = {}) {
    this.codec.ctl(OPUS_SET_BITRATE, opts.bitrate ?? 24_000);
    this.codec.ctl(OPUS_SET_COMPLEXITY, opts.complexity ?? OPUS_DEFAULT_COMPLEXITY);
  }

  /** Encodes one 20 ms frame (OPUS_FRAME samples; shorter frames are zero-padded). */
  encode(samples: Int16Array): Buffer {
    if (this.freed) throw new Error('encoder closed');
    let pcm = samples;
    if (pcm.length !== OPUS_FRAME) {
      pcm = new Int16Array(OPUS_FRAME);
      pcm.set(samples.subarray(0, OPUS_FRAME));
    }
    const packet = this.codec.encode(pcm);
    return Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.codec.drop();
  }
}

/**
 * Decodes Opus packets and re-chunks the PCM into exact 20 ms frames (a
 * browser may send 10, 40 or 60 ms packets).
 */
export class OpusDecoder {
  private readonly codec = new Decoder({ channels: 1, sample_rate: OPUS_RATE });
  private readonly pending = new Int16Array(OPUS_FRAME);
  private pendingLen = 0;
  private freed = false;

  /** Decodes one packet; returns the complete 20 ms frames it finished (possibly none). Throws on a corrupt packet. */
  decode(payload: Uint8Array): Int16Array[] {
    if (this.freed) return [];
    if (payload.byteLength === 0 || payload.byteLength > OPUS_MAX_PAYLOAD) throw new Error(`opus: packet of ${payload.byteLength} bytes`);
    // The codec returns a fresh copy of its output (offset 0), so viewing it is safe.
    const bytes = this.codec.decode(payload);
    const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
    const frames: Int16Array[] = [];
    let i = 0;
    while (i < pcm.length) {
      const take = Math.min(OPUS_FRAME - this.pendingLen, pcm.length - i);
      this.pending.set(pcm.subarray(i, i + take), this.pendingLen);
      this.pendingLen += take;
      i += take;
      if (this.pendingLen === OPUS_FRAME) {
        frames.push(this.pending.slice());
        this.pendingLen = 0;
      }
    }
    return frames;
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.codec.drop();
  }
}
