/** The Twilio bench's knobs (environment), shared by the driver and its report. */
export const CALLS = Number(process.env.BENCH_TWILIO_CALLS ?? 1000);
export const SECONDS = Number(process.env.BENCH_TWILIO_SECONDS ?? 60);
export const RAMP = Number(process.env.BENCH_TWILIO_RAMP ?? 50);
export const BARE_RAMP = Math.max(RAMP, 200);
export const DTMF_MS = Number(process.env.BENCH_TWILIO_DTMF_MS ?? 4000);
export const WORKERS = Math.max(1, Number(process.env.BENCH_TWILIO_WORKERS ?? 2));
export const SEARCH = process.env.BENCH_TWILIO_SEARCH !== '0';
export const SEARCH_SECONDS = Number(process.env.BENCH_TWILIO_SEARCH_SECONDS ?? 15);
export const CPU_PROF = process.env.BENCH_TWILIO_CPU_PROF ?? '';
/** The gateway's SWITCHBOARD_STT: none by default (taps off); `auto`/`pocketsphinx` to include the consent recogniser. */
export const STT = process.env.BENCH_TWILIO_STT ?? 'none';
/** The gateway's admission limits (SWITCHBOARD_MAX_CALLS, SWITCHBOARD_MAX_LOOP_LAG_MS); 0 = off (the default). */
export const MAX_CALLS = Number(process.env.BENCH_TWILIO_MAX_CALLS ?? 0);
export const MAX_LOOP_LAG_MS = Number(process.env.BENCH_TWILIO_MAX_LOOP_LAG_MS ?? 0);
/** Calls of the recording-on target phases (the CPU-per-call target); 0 = skip them. */
export const TARGET_CALLS = Number(process.env.BENCH_TWILIO_TARGET_CALLS ?? 300);
