/**
 * Opus for WebRTC legs, in pure WASM (opusscript — no native build).
 *
 * The RTP clock of Opus is always 48 kHz (RFC 7587), but the codec itself
 * encodes from and decodes straight to 16 kHz, the rate of WebRTC legs: a
 * wideband pipeline (what pocketsphinx decodes natively, and twice what a
 * phone line carries) without a 48 kHz resampling step on every frame.
 *
 *   caller ─ RTP Opus (any frame size 2.5–120 ms) ─► OpusDecoder ─► 20 ms PCM16 @16 kHz
 *   agent  ─ 20 ms PCM16 @16 kHz ─► OpusEncoder ─► one RTP payload per frame
 *
 * opusscript copies its input byte-wise: it must be given a Buffer over the
 * PCM's bytes (an Int16Array would be read element-wise and come out as noise).
 */
import OpusScript from 'opusscript';

export const OPUS_RATE = 16000;
/** Samples per 20 ms frame at OPUS_RATE. */
export const OPUS_FRAME = 320;
/** RTP timestamp units per 20 ms (the Opus RTP clock is 48 kHz). */
export const OPUS_RTP_TICKS_PER_FRAME = 960;

/**
 * opusscript keeps typed-array views on the WASM heap; when the heap grows (a
 * new codec for another call needs memory) every older view is detached and
 * the next encode/decode throws "offset is out of bounds" — seen at ~40 calls.
 * Before each use, a detached codec's views are rebuilt on the current heap
 * from the pointers it keeps (its state lives in the heap and is intact).
 */
interface OpusViews {
  inPCM: Uint16Array;
  inOpus: Uint8Array;
  outOpus: Uint8Array;
  outPCM: Uint16Array;
  inPCMPointer: number;
  inPCMLength: number;
  inOpusPointer: number;
  outOpusPointer: number;
  outPCMPointer: number;
  outPCMLength: number;
}
const MAX_PACKET_SIZE = 1276 * 3; // opusscript's own constant

function live(codec: OpusScript): OpusScript {
  const v = codec as unknown as OpusViews;
  if (v.inPCM.buffer.byteLength !== 0) return codec;
  const probe = new OpusScript(OPUS_RATE, 1);
  const heap = (probe as unknown as OpusViews).inPCM.buffer;
  probe.delete();
  // Same (element-indexed) layout opusscript builds in its constructor.
  v.inPCM = new Uint16Array(heap).subarray(v.inPCMPointer, v.inPCMPointer + v.inPCMLength);
  v.inOpus = new Uint8Array(heap).subarray(v.inOpusPointer, v.inOpusPointer + MAX_PACKET_SIZE);
  v.outOpus = new Uint8Array(heap).subarray(v.outOpusPointer, v.outOpusPointer + MAX_PACKET_SIZE);
  v.outPCM = new Uint16Array(heap).subarray(v.outPCMPointer, v.outPCMPointer + v.outPCMLength);
  return codec;
}

export class OpusEncoder {
  private readonly codec = new OpusScript(OPUS_RATE, 1, OpusScript.Application.VOIP);
  private freed = false;

  constructor(bitrate = 24_000) {
    this.codec.setBitrate(bitrate);
  }

  /** Encodes one 20 ms frame (OPUS_FRAME samples; shorter frames are zero-padded). */
  encode(samples: Int16Array): Buffer {
    if (this.freed) throw new Error('encoder closed');
    let pcm = samples;
    if (pcm.length !== OPUS_FRAME) {
      pcm = new Int16Array(OPUS_FRAME);
      pcm.set(samples.subarray(0, OPUS_FRAME));
    }
    return live(this.codec).encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), OPUS_FRAME);
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.codec.delete();
  }
}

/**
 * Decodes Opus packets and re-chunks the PCM into exact 20 ms frames (a
 * browser may send 10, 40 or 60 ms packets).
 */
export class OpusDecoder {
  private readonly codec = new OpusScript(OPUS_RATE, 1);
  private readonly pending = new Int16Array(OPUS_FRAME);
  private pendingLen = 0;
  private freed = false;

  /** Decodes one packet; returns the complete 20 ms frames it finished (possibly none). Throws on a corrupt packet. */
  decode(payload: Uint8Array): Int16Array[] {
    if (this.freed) return [];
    const bytes = live(this.codec).decode(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
    // A pooled Buffer may start at an odd offset: copy rather than view then.
    const pcm = bytes.byteOffset % 2 === 0 ? new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1) : new Int16Array(new Uint8Array(bytes).buffer);
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
    this.codec.delete();
  }
}
