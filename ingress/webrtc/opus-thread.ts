/**
 * The agent's outbound Opus, encoded on a thread of its own.
 *
 * Opus encoding was the largest item of a WebRTC call's CPU on the media
 * thread (a quarter of the gateway's busy time at 10 calls in the profile of
 * `npm run bench -- webrtc`; ~150 µs of WASM per 20 ms frame at complexity 5),
 * and it ran inside the media clock's tick, once per call: the tick's length —
 * and the delay of every other call's frame and of everything else on the
 * event loop — grew with the number of calls talking. Here each WebRTC leg's
 * encoder state lives in one worker thread shared by the process:
 *
 *   media tick ── sendFrame(pcm) ×N ──► staged in one batch (PCM copied once)
 *             └─ end of the tick (microtask) ── one postMessage, buffers transferred ──►
 *   worker: encode each frame with that leg's encoder ── one postMessage back ──►
 *   main: each packet to its leg's sink, in order (the leg stamps RTP, werift encrypts and sends)
 *
 * Per leg the frames come back in the order they were given (one thread, one
 * FIFO port). The worker is plain JavaScript evaluated from a string (no
 * TypeScript loader needed, like store/wal-checkpointer.ts) and loads the same
 * @evan/opus WASM build as opus.ts. It is started on the first encoder,
 * unref'd (it never keeps the process alive) and shared by every gateway in
 * the process. If it cannot start or dies, every encoder falls back to an
 * in-thread `OpusEncoder` (opus.ts) with the same settings — the frames then
 * in flight are lost, the call goes on.
 *
 * Backlog: a thread starved of CPU (a machine with more runnable threads than
 * cores) must not turn into seconds of delay. A leg with MAX_IN_FLIGHT_FRAMES
 * frames given and not yet back has its next frames refused (`encode` returns
 * false; the leg counts them and carries the RTP clock over them) until the
 * thread catches up — more than the media clock's largest catch-up burst (10
 * frames), so only a thread that is really behind drops anything. And a
 * batch that reaches the thread more than MAX_BATCH_AGE_MS after it was
 * given is not encoded at all (its frames come back with neither packet nor
 * error): a starved thread catches up at once instead of delivering stale audio.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { OPUS_DEFAULT_COMPLEXITY, OPUS_FRAME, OPUS_RATE, OpusEncoder } from './opus.ts';

/** Ops in a batch, four int32 each: [op, id, a, b]. */
const OP_OPEN = 1; // a = complexity, b = bitrate
const OP_ENCODE = 2; // a = tag (returned with the packet), b = frame index in the batch's PCM
const OP_CLOSE = 3;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Encoder } = require(workerData.opus);
const FRAME = workerData.frame;
const encoders = new Map();
parentPort.on('message', (m) => {
  const ops = m.ops;
  const pcm = m.pcm;
  // A batch that waited too long for this thread (starved of CPU) is not encoded: its frames come back stale (-2).
  const stale = Date.now() - m.t > m.maxAgeMs;
  const meta = [];
  const packets = [];
  const errors = {};
  let bytes = 0;
  for (let i = 0; i < ops.length; i += 4) {
    const op = ops[i], id = ops[i + 1], a = ops[i + 2], b = ops[i + 3];
    if (op === ${OP_OPEN}) {
      try {
        const enc = new Encoder({ channels: 1, sample_rate: workerData.rate, application: 'voip' });
        enc.ctl(4002, b);
        enc.ctl(4010, a);
        encoders.set(id, enc);
      } catch (err) {
        errors[id] = String(err && err.message || err);
      }
    } else if (op === ${OP_ENCODE}) {
      const enc = encoders.get(id);
      let len = -1;
      if (stale) len = -2;
      else if (enc) {
        try {
          const p = enc.encode(pcm.subarray(b * FRAME, (b + 1) * FRAME));
          packets.push(p);
          len = p.length;
          bytes += len;
        } catch (err) {
          errors[id] = String(err && err.message || err);
        }
      } else if (errors[id] === undefined) errors[id] = 'encoder not open';
      meta.push(id, a, len);
    } else if (op === ${OP_CLOSE}) {
      const enc = encoders.get(id);
      if (enc) enc.drop();
      encoders.delete(id);
    }
  }
  const out = new Uint8Array(bytes);
  let off = 0;
  for (const p of packets) { out.set(p, off); off += p.length; }
  const m32 = Int32Array.from(meta);
  parentPort.postMessage({ meta: m32, bytes: out, errors }, [m32.buffer, out.buffer]);
});
`;

/** Frames a leg may have on the thread at once (240 ms); beyond, frames are refused (see the header). */
export const MAX_IN_FLIGHT_FRAMES = 12;

/** A batch older than this when the thread gets to it is not encoded (see the header). */
export const MAX_BATCH_AGE_MS = 100;
/** Tests that compare exact packets raise the age bound, so a loaded machine cannot make a batch stale. */
export const opusThreadSettings = { maxBatchAgeMs: MAX_BATCH_AGE_MS };

/** Receives each encoded packet (or the reason it could not be encoded; neither = stale, dropped) with the tag given to `encode`. */
export type OpusSink = (packet: Buffer | null, tag: number, error: string | null) => void;

interface Member {
  sink: OpusSink;
  fallback: () => void;
}

/** The process's one encoding thread (see the header). */
class OpusThread {
  private worker: Worker | null = null;
  private failed = false;
  private readonly members = new Map<number, Member>();
  private nextId = 1;
  private ops: number[] = [];
  private staging = new Int16Array(OPUS_FRAME * 64);
  private frames = 0;
  private flushQueued = false;

  /** False once the thread has failed (encoders then work in-thread). */
  get usable(): boolean {
    if (this.failed) return false;
    if (!this.worker) this.start();
    return !this.failed;
  }

  open(member: Member, complexity: number, bitrate: number): number {
    const id = this.nextId++;
    this.members.set(id, member);
    this.push(OP_OPEN, id, complexity, bitrate);
    return id;
  }

  encode(id: number, samples: Int16Array, tag: number): void {
    if (this.frames * OPUS_FRAME >= this.staging.length) {
      const bigger = new Int16Array(this.staging.length * 2);
      bigger.set(this.staging);
      this.staging = bigger;
    }
    const at = this.frames * OPUS_FRAME;
    const n = Math.min(samples.length, OPUS_FRAME);
    this.staging.set(n === samples.length ? samples : samples.subarray(0, n), at);
    if (n < OPUS_FRAME) this.staging.fill(0, at + n, at + OPUS_FRAME); // a short frame is zero-padded, as opus.ts does
    this.push(OP_ENCODE, id, tag, this.frames++);
  }

  close(id: number): void {
    if (!this.members.delete(id)) return;
    this.push(OP_CLOSE, id, 0, 0);
  }

  private push(op: number, id: number, a: number, b: number): void {
    this.ops.push(op, id, a, b);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.ops.length === 0 || !this.worker) return;
    const ops = Int32Array.from(this.ops);
    const pcm = this.staging.slice(0, this.frames * OPUS_FRAME);
    this.ops = [];
    this.frames = 0;
    this.worker.postMessage({ ops, pcm, t: Date.now(), maxAgeMs: opusThreadSettings.maxBatchAgeMs }, [ops.buffer, pcm.buffer]);
  }

  private start(): void {
    try {
      const opus = createRequire(import.meta.url).resolve('@evan/opus/wasm/index.js');
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { opus, frame: OPUS_FRAME, rate: OPUS_RATE },
        // Not the parent's `--import tsx` and friends: the worker is plain JavaScript.
        execArgv: [],
        stdout: false,
        stderr: false,
      });
      worker.unref();
      worker.on('message', (m: { meta: Int32Array; bytes: Uint8Array; errors: Record<string, string> }) => this.deliver(m));
      worker.on('error', () => this.fail());
      worker.on('exit', () => this.fail());
      this.worker = worker;
    } catch {
      this.fail();
    }
  }

  private deliver(m: { meta: Int32Array; bytes: Uint8Array; errors: Record<string, string> }): void {
    const buf = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
    let off = 0;
    for (let i = 0; i < m.meta.length; i += 3) {
      const id = m.meta[i] as number;
      const tag = m.meta[i + 1] as number;
      const len = m.meta[i + 2] as number;
      const member = this.members.get(id);
      if (len === -2) {
        member?.sink(null, tag, null); // stale: not encoded
        continue;
      }
      if (len < 0) {
        member?.sink(null, tag, m.errors[id] ?? 'encode failed');
        continue;
      }
      // A view, not a copy: each batch has a buffer of its own, never reused.
      member?.sink(buf.subarray(off, off + len), tag, null);
      off += len;
    }
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.worker = null;
    this.ops = [];
    this.frames = 0;
    const members = [...this.members.values()];
    this.members.clear();
    for (const m of members) m.fallback();
  }
}

let thread: OpusThread | null = null;

/**
 * One leg's outbound encoder: `encode` returns at once and the packet reaches
 * `sink` when the thread has encoded it (in order, after the current tick);
 * in-thread (synchronously) if the thread is unavailable.
 */
export class ThreadedOpusEncoder {
  private id = 0;
  private local: OpusEncoder | null = null;
  private closed = false;
  private inFlight = 0;
  private readonly complexity: number;
  private readonly bitrate: number;

  constructor(
    private readonly sink: OpusSink,
    opts: { complexity?: number; bitrate?: number; inThread?: boolean } = {},
  ) {
    this.complexity = opts.complexity ?? OPUS_DEFAULT_COMPLEXITY;
    this.bitrate = opts.bitrate ?? 24_000;
    thread ??= new OpusThread();
    const back: OpusSink = (packet, tag, error) => {
      this.inFlight--;
      sink(packet, tag, error);
    };
    if (!opts.inThread && thread.usable) this.id = thread.open({ sink: back, fallback: () => this.fallback() }, this.complexity, this.bitrate);
    else this.fallback();
  }

  /** True while frames go to the encoding thread (false after a fallback). */
  get threaded(): boolean {
    return this.id !== 0;
  }

  /** Gives one frame; false if refused because the thread is MAX_IN_FLIGHT_FRAMES behind for this leg. */
  encode(samples: Int16Array, tag: number): boolean {
    if (this.closed) return true;
    if (this.id !== 0) {
      if (this.inFlight >= MAX_IN_FLIGHT_FRAMES) return false;
      this.inFlight++;
      thread?.encode(this.id, samples, tag);
      return true;
    }
    let packet: Buffer;
    try {
      packet = (this.local as OpusEncoder).encode(samples);
    } catch (err) {
      this.sink(null, tag, (err as Error).message);
      return true;
    }
    this.sink(packet, tag, null);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.id !== 0) thread?.close(this.id);
    this.id = 0;
    this.local?.close();
    this.local = null;
  }

  private fallback(): void {
    this.id = 0;
    this.inFlight = 0;
    if (!this.closed) this.local = new OpusEncoder({ complexity: this.complexity, bitrate: this.bitrate });
  }
}
