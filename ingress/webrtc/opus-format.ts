/**
 * The PCM and RTP shapes of a WebRTC leg's Opus audio, without the codec: modules that only need the figures (the
 * supervisor's leg offer) import these and leave the Opus WASM to load after the gateway listens (opus.ts).
 */
export const OPUS_RATE = 16000;
/** Samples per 20 ms frame at OPUS_RATE. */
export const OPUS_FRAME = 320;
/** RTP timestamp units per 20 ms (the Opus RTP clock is 48 kHz). */
export const OPUS_RTP_TICKS_PER_FRAME = 960;
