/**
 * The agent's outbound Opus on WebRTC legs, encoded in the media clock's tick
 * (as before) vs on the Opus thread (ingress/webrtc/opus-thread.ts): the same
 * process, the same legs and audio, rounds alternating, so a busy machine
 * weighs on both alike. No network: each leg's peer is a stub that counts the
 * packets `sendOpus` gets (werift's SRTP and send cost the same either way;
 * the webrtc bench measures them).
 *
 * BENCH_WEBRTC_ENCODE_CALLS legs (40) each get one 20 ms frame of speech-band
 * audio per slot from a 4-phase clock like the gateway's (a tick every 5 ms
 * serves a quarter of the legs). Per variant, medians over the rounds:
 *   webrtc.encode.main_us_per_frame   CPU of the main thread (Linux /proc; the
 *                                     media loop) per frame sent; baseline = in the tick
 *   webrtc.encode.tick_p99_ms         the tick's own synchronous time (the legs'
 *                                     sendFrame calls), p99; baseline = in the tick
 *   webrtc.encode.process_us_per_frame all threads' CPU per frame; baseline = in the tick
 *   webrtc.encode.delivery_p99_ms     sendFrame → packet handed to the peer, p99 (0 in the tick)
 *
 * Env: BENCH_WEBRTC_ENCODE_CALLS (40), BENCH_WEBRTC_ENCODE_SECONDS (5), BENCH_WEBRTC_ENCODE_ROUNDS (3).
 */
import { performance } from 'node:perf_hooks';
import { WebrtcLeg } from '../ingress/webrtc/leg.ts';
import { OPUS_FRAME } from '../ingress/webrtc/opus.ts';
import type { WebrtcPeer } from '../ingress/webrtc/peer.ts';
import { fmt, log, percentile, report, sleep } from './lib.ts';
import { mainThreadCpuMs, ownCpuMs } from './webrtc/children.ts';

const CALLS = Number(process.env.BENCH_WEBRTC_ENCODE_CALLS ?? 40);
const SECONDS = Number(process.env.BENCH_WEBRTC_ENCODE_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_WEBRTC_ENCODE_ROUNDS ?? 3);
const PHASES = 4;

/** 2 s of a voice-like signal (a 140 Hz buzz with two formants, amplitude-modulated), looped. */
const AUDIO = new Int16Array(16000 * 2).map((_, i) => {
  const t = i / 16000;
  const env = 0.6 + 0.4 * Math.sin(2 * Math.PI * 3 * t);
  return Math.round(env * (4000 * Math.sin(2 * Math.PI * 140 * t) + 2500 * Math.sin(2 * Math.PI * 700 * t) + 1200 * Math.sin(2 * Math.PI * 2200 * t)));
});

interface Stub {
  leg: WebrtcLeg;
  given: number[];
  delays: number[];
  sent: number;
}

function stubPeer(stub: () => Stub): WebrtcPeer {
  const peer = {
    state: 'connected',
    onRtp: () => undefined,
    onData: () => undefined,
    onState: () => () => undefined,
    sendData: () => false,
    close: () => undefined,
    sendOpus: () => {
      const s = stub();
      s.sent++;
      const at = s.given.shift();
      if (at !== undefined) s.delays.push(performance.now() - at);
    },
  };
  return peer as unknown as WebrtcPeer;
}

interface Round {
  mainUsPerFrame: number;
  processUsPerFrame: number;
  tickP99: number;
  deliveryP99: number;
  refused: number;
}

async function round(inThread: boolean): Promise<Round> {
  const stubs: Stub[] = [];
  for (let i = 0; i < CALLS; i++) {
    const s = {} as Stub;
    s.given = [];
    s.delays = [];
    s.sent = 0;
    s.leg = new WebrtcLeg(stubPeer(() => s), {
      session: `bench-${i}`,
      offer: { opusPayloadType: 111, dtmfPayloadTypes: [], dataChannel: false, candidates: 1 },
      callEnded: () => true,
      encodeInThread: inThread,
    });
    stubs.push(s);
  }
  const ticks: number[] = [];
  let slot = 0;
  let frames = 0;
  let measuring = false;
  const epoch = performance.now();
  let next = 0;
  let running = true;
  const tick = (): void => {
    if (!running) return;
    const due = Math.floor((performance.now() - epoch) / (20 / PHASES)) + 1;
    while (next < due) {
      const phase = next % PHASES;
      if (phase === 0) slot++;
      const t0 = performance.now();
      for (let i = phase; i < stubs.length; i += PHASES) {
        const s = stubs[i] as Stub;
        const off = ((slot + i * 7) * OPUS_FRAME) % (AUDIO.length - OPUS_FRAME);
        const before = s.leg.stats.framesOutDropped;
        s.given.push(performance.now());
        s.leg.sendFrame(AUDIO.subarray(off, off + OPUS_FRAME));
        if (s.leg.stats.framesOutDropped !== before) s.given.pop(); // refused: never reaches the peer
        if (measuring) frames++;
      }
      if (measuring) ticks.push(performance.now() - t0);
      next++;
    }
    setTimeout(tick, Math.max(0, epoch + next * (20 / PHASES) - performance.now()));
  };
  tick();
  await sleep(1000); // warm-up: WASM tier-up, the thread's start
  for (const s of stubs) s.delays.length = 0;
  const main0 = mainThreadCpuMs();
  const proc0 = ownCpuMs();
  measuring = true;
  await sleep(SECONDS * 1000);
  measuring = false;
  const main = mainThreadCpuMs() - main0;
  const proc = ownCpuMs() - proc0;
  running = false;
  await sleep(100);
  for (const s of stubs) s.leg.close('bench over');
  const delays = stubs.flatMap((s) => s.delays);
  return {
    mainUsPerFrame: (main * 1000) / frames,
    processUsPerFrame: (proc * 1000) / frames,
    tickP99: percentile(ticks, 99),
    deliveryP99: delays.length ? percentile(delays, 99) : 0,
    refused: stubs.reduce((a, s) => a + s.leg.stats.framesOutDropped, 0),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const runs: Record<'tick' | 'thread', Round[]> = { tick: [], thread: [] };
log(`webrtc-encode: ${CALLS} legs, ${SECONDS} s windows, ${ROUNDS} rounds each way, alternating`);
for (let r = 0; r < ROUNDS; r++) {
  for (const inThread of r % 2 === 0 ? [true, false] : [false, true]) {
    const res = await round(inThread);
    runs[inThread ? 'tick' : 'thread'].push(res);
    log(
      `  ${inThread ? 'in the tick' : 'Opus thread'}: main thread ${fmt(res.mainUsPerFrame)} µs/frame, all threads ${fmt(res.processUsPerFrame)} µs/frame, ` +
        `tick p99 ${fmt(res.tickP99)} ms, delivery p99 ${fmt(res.deliveryP99)} ms, refused ${res.refused}`,
    );
  }
}
const m = (k: 'tick' | 'thread', f: (r: Round) => number): number => median(runs[k].map(f));
report({ figure: 'webrtc.encode.main_us_per_frame', value: m('thread', (r) => r.mainUsPerFrame), unit: 'us', baseline: m('tick', (r) => r.mainUsPerFrame), note: 'CPU of the main thread (the media loop) per frame sent, median of rounds; baseline = encoding in the tick' });
report({ figure: 'webrtc.encode.tick_p99_ms', value: m('thread', (r) => r.tickP99), unit: 'ms', baseline: m('tick', (r) => r.tickP99), note: 'synchronous time of one 5 ms phase tick (a quarter of the legs), p99; baseline = encoding in the tick' });
report({ figure: 'webrtc.encode.process_us_per_frame', value: m('thread', (r) => r.processUsPerFrame), unit: 'us', baseline: m('tick', (r) => r.processUsPerFrame), note: 'CPU of all threads per frame sent; baseline = encoding in the tick' });
report({ figure: 'webrtc.encode.delivery_p99_ms', value: m('thread', (r) => r.deliveryP99), unit: 'ms', baseline: m('tick', (r) => r.deliveryP99), note: 'sendFrame → packet handed to the peer, p99' });
process.exit(0);
