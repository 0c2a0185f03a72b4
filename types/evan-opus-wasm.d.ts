/**
 * The WebAssembly entry of @evan/opus, as far as we use it (its package types
 * cover only the root entry — which may load a native addon — and omit drop()).
 */
declare module '@evan/opus/wasm/index.mjs' {
  type SampleRate = 8000 | 12000 | 16000 | 24000 | 48000;
  export class Decoder {
    constructor(options: { channels: 1 | 2; sample_rate: SampleRate });
    /** Decoded PCM16 bytes (a fresh copy); throws on a corrupt packet. */
    decode(packet: ArrayBufferView): Uint8Array;
    ctl(cmd: number, value?: number): number;
    /** Frees the codec's state on the WASM heap. */
    drop(): void;
  }
  export class Encoder {
    constructor(options: { channels: 1 | 2; sample_rate: SampleRate; application: 'voip' | 'audio' | 'restricted_lowdelay' });
    /** One Opus packet (a fresh copy) from a frame of PCM16. */
    encode(pcm: ArrayBufferView): Uint8Array;
    ctl(cmd: number, value?: number): number;
    drop(): void;
  }
}
