/**
 * The call recorder: a `FrameTap` that writes the caller (left) and the agent
 * (right) as interleaved stereo s16le at the recording's rate (8 kHz by
 * default; 16 kHz for wideband legs, see `recordingRateFor`) into a segment
 * file, aligned to the recording clock (ms since the call was answered).
 *
 * Alignment. The caller channel arrives continuously (one 20 ms frame every
 * 20 ms); agent frames arrive only while the agent speaks. Frames at other
 * rates are resampled to the recording's rate first.
 *  - Every 20 ms of caller audio writes one block: the caller samples plus the
 *    agent samples received since the previous block (or silence).
 *  - When no caller frame has arrived for more than `callerStallMs` (60 ms)
 *    while agent frames keep coming, blocks are driven by the agent frames with
 *    caller silence, so the timeline keeps up. Agent audio queued beyond
 *    `maxAgentBacklogMs` is written the same way.
 *  - Before a block is written, and on the idle tick, if the audio written so
 *    far ends more than `maxLagMs` (100 ms) behind the clock (both channels
 *    were silent: a stalled leg, a reconnect), silence blocks are written to
 *    catch up. `close()` catches up to the clock exactly (to 20 ms).
 *  A caller frame that arrives later than `maxLagMs` after a catch-up lands
 *  after the filled silence, so jitter beyond that tolerance can put the audio
 *  ahead of the clock by at most that jitter; it never accumulates.
 *
 * Pauses (PCI capture, consent withdrawal): `silence` keeps the timeline and
 * writes zeros for the interval; `skip` writes nothing, so the segment's audio
 * is shorter than the call by the interval (`SegmentInfo.skippedMs`). Audio is
 * suppressed conservatively: samples queued when a pause starts are discarded,
 * and frames arriving within 20 ms after `resume()` (which carry audio from
 * before it) are written as silence. Every pause/resume is journaled (fsync'd)
 * so crash recovery knows about it.
 *
 * Durability: blocks are buffered and written through to the fd once the
 * oldest buffered byte is ~`flushIntervalMs` old (checked on every frame and
 * on a `tickMs` timer, unref'd), fsync'd every `fsyncIntervalMs` on the thread
 * pool; `close()` leaves the last fsync to the pool too (`whenDurable()`).
 *
 * Failures: `process()` never throws (it runs on the media hot path). The
 * first I/O error (ENOSPC, EIO …) or unexpected exception marks the recorder
 * failed: it stops writing, keeps what was flushed, and reports the failure
 * through `failure` and `onFailure()` so the owner can write a
 * `recording_failed` row while the call continues.
 */
import os from 'node:os';
import type { AudioFrame } from '../media/frame.ts';
import type { Channel, FrameTap } from '../media/pipeline.ts';
import { Resampler } from '../media/resample.ts';
import { SampleQueue } from './sample-queue.ts';
import { BLOCK_MS, blockSamplesAt, BYTES_PER_FRAME, framesToMs, RECORDING_RATE, type RecordingRate } from './segment-files.ts';
import type { RecorderFailure, RecorderOptions, RecorderResult, RecorderStats } from './recorder-options.ts';
import { SegmentWriter } from './segment-writer.ts';
import type { PauseInterval, SegmentInfo } from './types.ts';

export type { RecorderFailure, RecorderOptions, RecorderResult, RecorderStats } from './recorder-options.ts';
export type { RecorderIo } from './segment-writer.ts';

interface OpenPause {
  reason: string;
  mode: 'silence' | 'skip';
  startMs: number;
}

export class Recorder implements FrameTap {
  readonly name: string;
  readonly stats: RecorderStats = { callerBlocks: 0, agentBlocks: 0, fillBlocks: 0, silencedBlocks: 0 };
  private readonly o: Required<Omit<RecorderOptions, 'io' | 'segmentIndex' | 'name' | 'sampleRate'>>;
  /** The rate this recording is made at. */
  readonly sampleRate: RecordingRate;
  /** Mono samples per 20 ms block at `sampleRate`. */
  private readonly blockSamples: number;
  private readonly writer: SegmentWriter;
  private readonly callerQ = new SampleQueue();
  private readonly agentQ = new SampleQueue();
  private readonly resamplers = new Map<Channel, Resampler>();
  private readonly cBuf: Int16Array;
  private readonly aBuf: Int16Array;
  /** One interleaved block; `blockView` aliases it as samples (little-endian hosts). */
  private readonly blockView: Int16Array;
  private readonly block: Buffer;
  private readonly pauses: PauseInterval[] = [];
  private readonly listeners: Array<(f: RecorderFailure) => void> = [];
  private paused: OpenPause | undefined;
  private writtenFrames = 0;
  private skippedMs = 0;
  private lastCallerAt: number;
  /** Frames arriving before this (wall ms) still carry paused audio: written as silence. */
  private guardUntil = -Infinity;
  private oldestPendingAt: number | undefined;
  private lastSyncAt: number;
  private timer: NodeJS.Timeout | undefined;
  private failed: RecorderFailure | undefined;
  private result: RecorderResult | undefined;
  private durable: Promise<void> = Promise.resolve();
  /** False when the segment could not even be created (then close() reports no segment). */
  private opened = false;

  constructor(opts: RecorderOptions) {
    this.name = opts.name ?? 'recorder';
    this.sampleRate = opts.sampleRate ?? RECORDING_RATE;
    this.blockSamples = blockSamplesAt(this.sampleRate);
    this.cBuf = new Int16Array(this.blockSamples);
    this.aBuf = new Int16Array(this.blockSamples);
    this.blockView = new Int16Array(this.blockSamples * 2);
    this.block = Buffer.from(this.blockView.buffer, 0, this.blockSamples * BYTES_PER_FRAME);
    this.o = {
      dir: opts.dir,
      startedAtMs: opts.startedAtMs,
      nowMs: opts.nowMs,
      flushIntervalMs: opts.flushIntervalMs ?? 200,
      fsyncIntervalMs: opts.fsyncIntervalMs ?? 1000,
      callerStallMs: opts.callerStallMs ?? 60,
      maxLagMs: opts.maxLagMs ?? 100,
      maxAgentBacklogMs: opts.maxAgentBacklogMs ?? 200,
      autoTick: opts.autoTick ?? true,
      tickMs: opts.tickMs ?? 50,
    };
    const now = this.o.nowMs();
    this.lastCallerAt = now;
    this.lastSyncAt = now;
    this.writer = new SegmentWriter({ dir: opts.dir, index: opts.segmentIndex ?? 0, startMs: this.clock(now), sampleRate: this.sampleRate, io: opts.io });
    this.opened = this.writer.open();
    if (!this.opened) this.fail(now);
    if (this.o.autoTick && !this.failed) {
      this.timer = setInterval(() => this.tick(), this.o.tickMs);
      this.timer.unref();
    }
  }

  /** Segment start on the recording clock. */
  get startMs(): number {
    return this.writer.startMs;
  }

  /** Bytes of the segment handed to the kernel so far (they survive a kill -9). */
  get flushedBytes(): number {
    return this.writer.flushedBytes;
  }

  /** The segment file name. */
  get segmentFile(): string {
    return this.writer.file;
  }

  get failure(): RecorderFailure | undefined {
    return this.failed;
  }

  get state(): 'recording' | 'paused' | 'failed' | 'closed' {
    if (this.result) return 'closed';
    if (this.failed) return 'failed';
    return this.paused ? 'paused' : 'recording';
  }

  /** Calls `cb` once on failure (immediately if already failed). Returns an unsubscribe function. */
  onFailure(cb: (f: RecorderFailure) => void): () => void {
    if (this.failed) {
      safeCall(cb, this.failed);
      return () => {};
    }
    this.listeners.push(cb);
    return () => {
      const i = this.listeners.indexOf(cb);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** FrameTap entry point; never throws. */
  process(frame: AudioFrame, channel: Channel): void {
    if (this.failed || this.result) return;
    const now = this.o.nowMs();
    try {
      if (channel === 'caller') this.lastCallerAt = now;
      if (this.paused?.mode === 'skip') return;
      let pcm = this.toRecordingRate(frame, channel);
      // Paused (silence), or a frame carrying audio from before the resume: silence.
      if (this.paused || now < this.guardUntil) pcm = new Int16Array(pcm.length);
      if (channel === 'caller') {
        this.callerQ.push(pcm);
        while (this.callerQ.length >= this.blockSamples) this.drivenBlock(now, 'caller');
      } else {
        this.agentQ.push(pcm);
        const stalled = now - this.lastCallerAt > this.o.callerStallMs;
        const keep = stalled ? this.blockSamples - 1 : (this.o.maxAgentBacklogMs * this.sampleRate) / 1000;
        while (this.agentQ.length > keep && this.agentQ.length >= this.blockSamples) this.drivenBlock(now, 'agent');
      }
      this.maybeFlush(now);
    } catch (err) {
      this.fail(now, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Periodic housekeeping: idle catch-up, write-through and fsync. Never throws. */
  tick(now = this.o.nowMs()): void {
    if (this.failed || this.result) return;
    try {
      if (this.paused?.mode !== 'skip') this.catchUp(now, 0, this.o.maxLagMs);
      this.maybeFlush(now);
    } catch (err) {
      this.fail(now, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Starts a pause; false if already paused or closed. */
  pause(reason: string, mode: 'silence' | 'skip'): boolean {
    if (this.result || this.paused) return false;
    const now = this.o.nowMs();
    this.callerQ.clear();
    this.agentQ.clear();
    this.paused = { reason, mode, startMs: this.clock(now) };
    if (!this.failed && !this.writer.journal({ kind: 'pause', atMs: this.paused.startMs, mode, reason })) this.fail(now);
    return true;
  }

  /** Ends the current pause; false if not paused or closed. */
  resume(): boolean {
    if (this.result || !this.paused) return false;
    const now = this.o.nowMs();
    const p = this.paused;
    const endMs = Math.max(p.startMs, this.clock(now));
    this.pauses.push({ startMs: p.startMs, endMs, reason: p.reason, mode: p.mode });
    if (p.mode === 'skip') this.skippedMs += endMs - p.startMs;
    this.paused = undefined;
    this.lastCallerAt = now;
    this.guardUntil = now + BLOCK_MS;
    if (!this.failed && !this.writer.journal({ kind: 'resume', atMs: endMs })) this.fail(now);
    return true;
  }

  /**
   * Flushes queued audio and catches up to the clock; the result is final at once (the audio is in the page cache).
   * The segment's fsync and close run on the thread pool: `whenDurable()` resolves once they are done (a failure
   * there is reported like any other, through `onFailure`). Idempotent.
   */
  close(): RecorderResult {
    if (this.result) return this.result;
    if (this.timer) clearInterval(this.timer);
    const now = this.o.nowMs();
    if (this.paused) this.resume();
    if (!this.failed) {
      try {
        if (this.callerQ.length > 0 || this.agentQ.length > 0) this.writeBlock('fill', true);
        this.catchUp(now, 0, BLOCK_MS - 1);
      } catch (err) {
        this.fail(now, `internal error: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (!this.writer.flush() && !this.failed) this.fail(now);
    this.durable = this.writer.finish().then((ok) => {
      if (!ok && !this.failed) this.fail(this.o.nowMs());
    });
    const frames = Math.floor(this.writer.flushedBytes / BYTES_PER_FRAME);
    const durationMs = framesToMs(frames, this.sampleRate);
    const segment: SegmentInfo = {
      file: this.writer.file,
      startMs: this.startMs,
      durationMs,
      bytes: frames * BYTES_PER_FRAME,
      skippedMs: this.skippedMs,
    };
    this.result = { segments: this.opened ? [segment] : [], pauses: [...this.pauses], durationMs, endMs: this.startMs + durationMs + this.skippedMs };
    if (this.failed) this.result.failure = this.failed;
    return this.result;
  }

  /** Resolves once a closed recorder's segment is on disk and its files are closed (at once before close()). */
  whenDurable(): Promise<void> {
    return this.durable;
  }

  private clock(now: number): number {
    return now - this.o.startedAtMs;
  }

  /** Where the audio written so far ends on the recording clock. */
  private audioEndMs(): number {
    return this.startMs + framesToMs(this.writtenFrames, this.sampleRate) + this.skippedMs;
  }

  private toRecordingRate(frame: AudioFrame, channel: Channel): Int16Array {
    if (frame.sampleRate === this.sampleRate) return frame.samples;
    let r = this.resamplers.get(channel);
    if (!r || r.inputRate !== frame.sampleRate) {
      r = new Resampler(frame.sampleRate, this.sampleRate);
      this.resamplers.set(channel, r);
    }
    return r.process(frame.samples);
  }

  private drivenBlock(now: number, kind: 'caller' | 'agent'): void {
    this.catchUp(now, BLOCK_MS, this.o.maxLagMs);
    this.writeBlock(kind, true);
  }

  /** Writes silence blocks when the audio lags the clock (minus `reserveMs`) by more than `toleranceMs`. */
  private catchUp(now: number, reserveMs: number, toleranceMs: number): void {
    const lag = this.clock(now) - reserveMs - this.audioEndMs();
    if (lag <= toleranceMs) return;
    const blocks = Math.floor(lag / BLOCK_MS);
    for (let i = 0; i < blocks && !this.failed; i++) this.writeBlock('fill', false);
  }

  private writeBlock(kind: 'caller' | 'agent' | 'fill', takeQueued: boolean): void {
    if (takeQueued) {
      this.callerQ.take(this.cBuf, this.blockSamples);
      this.agentQ.take(this.aBuf, this.blockSamples);
    }
    if (!takeQueued || this.paused?.mode === 'silence') {
      this.block.fill(0);
      if (this.paused) this.stats.silencedBlocks++;
    } else {
      interleave(this.cBuf, this.aBuf, this.blockView, this.block);
    }
    if (kind === 'caller') this.stats.callerBlocks++;
    else if (kind === 'agent') this.stats.agentBlocks++;
    else this.stats.fillBlocks++;
    if (this.writer.pendingBytes === 0) this.oldestPendingAt = this.o.nowMs();
    if (!this.writer.append(this.block)) return this.fail(this.o.nowMs());
    this.writtenFrames += this.blockSamples;
  }

  private maybeFlush(now: number): void {
    if (this.writer.pendingBytes > 0 && this.oldestPendingAt !== undefined) {
      if (now - this.oldestPendingAt >= this.o.flushIntervalMs - BLOCK_MS) {
        if (!this.writer.flush()) return this.fail(now);
      }
    }
    if (now - this.lastSyncAt >= this.o.fsyncIntervalMs) {
      this.lastSyncAt = now;
      if (!this.writer.syncInBackground()) this.fail(now);
    }
  }

  /** Stops recording now with `reason` (e.g. the store cannot write): as any failure, once; the call goes on. */
  abort(reason: string): void {
    this.fail(this.o.nowMs(), reason);
  }

  private fail(now: number, internal?: string): void {
    if (this.failed) return;
    const err = this.writer.error;
    const reason = internal ?? (err ? (err.code && !err.message.startsWith(err.code) ? `${err.code}: ${err.message}` : err.message) : 'unknown error');
    this.failed = { reason, atMs: this.clock(now), segment: this.writer.file, flushedBytes: this.writer.flushedBytes };
    if (!internal && err?.code) this.failed.code = err.code;
    if (internal) this.writer.close();
    if (this.timer) clearInterval(this.timer);
    for (const cb of this.listeners.splice(0)) safeCall(cb, this.failed);
  }
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Writes caller/agent samples as interleaved s16le into `bytes` (via `view` on little-endian hosts). */
function interleave(caller: Int16Array, agent: Int16Array, view: Int16Array, bytes: Buffer): void {
  if (LITTLE_ENDIAN) {
    for (let i = 0, j = 0; i < caller.length; i++, j += 2) {
      view[j] = caller[i] as number;
      view[j + 1] = agent[i] as number;
    }
    return;
  }
  for (let i = 0; i < caller.length; i++) {
    bytes.writeInt16LE(caller[i] as number, i * 4);
    bytes.writeInt16LE(agent[i] as number, i * 4 + 2);
  }
}

function safeCall(cb: (f: RecorderFailure) => void, f: RecorderFailure): void {
  try {
    cb(f);
  } catch {
    // A failing listener must not break the media path.
  }
}
