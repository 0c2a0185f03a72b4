/**
 * One leg's outbound queue, paced by a shared `MediaClock` (see pacer.ts).
 *
 * Holds 20 ms frames and marks. In each clock slot it sends at most one frame
 * ('frame' event) and then fires every mark queued directly behind it ('mark'
 * event). Sent frames carry the stream's media timestamp, which advances by
 * one frame every slot whether or not audio was sent (RTP semantics: gaps show
 * as timestamp jumps). Listener exceptions are caught and re-emitted as
 * 'error' (or handed to the clock's `onError` when the stream has no 'error'
 * listener), so they cannot break the clock or other legs. Stats count frames
 * sent and frames sent more than LATE_FRAME_MS after their slot.
 */
import { samplesPerFrame, type AudioFrame, type SampleRate } from './frame.ts';
import { SafeEmitter } from './emitter.ts';
import type { MediaClock } from './pacer.ts';

/** A frame sent more than this long after its slot counts as late. */
export const LATE_FRAME_MS = 40;

/** Payload of a 'mark' event. */
export interface MarkEvent {
  name: string;
  /** True when the mark was released by `clear()` instead of being reached. */
  cleared: boolean;
}

export interface PacedStreamStats {
  framesSent: number;
  /** Frames sent more than LATE_FRAME_MS after their slot. */
  lateFrames: number;
  maxLatenessMs: number;
  marksSent: number;
  /** Audio dropped by `clear()`, in ms, cumulative. */
  droppedMs: number;
  listenerErrors: number;
}

type PacedStreamEvents = {
  frame: [frame: AudioFrame];
  /** A slot passed with no audio to send (only when `fireIdle` is set); `timestamp` as a frame's would be. */
  idle: [timestamp: number];
  mark: [mark: MarkEvent];
  error: [err: unknown];
};

/** Queue entry: a frame to send, or the name of a mark. */
type QueueItem = AudioFrame | string;

export class PacedStream extends SafeEmitter<PacedStreamEvents> {
  readonly sampleRate: SampleRate;
  readonly frameSamples: number;
  readonly stats: PacedStreamStats = {
    framesSent: 0, lateFrames: 0, maxLatenessMs: 0, marksSent: 0, droppedMs: 0, listenerErrors: 0,
  };
  /** @internal The clock this stream is registered with. */
  clock: MediaClock | null = null;
  private queue: QueueItem[] = [];
  private head = 0;
  private queuedFrames = 0;
  /** Samples that don't fill a whole frame yet. */
  private readonly partial: Int16Array;
  private partialLen = 0;
  /** Media clock of the next slot, in samples since the stream joined a clock. */
  private mediaTs = 0;
  private readonly fireIdle: boolean;

  /**
   * `fireIdle`: emit 'idle' for slots without audio, for legs whose far end expects a packet every 20 ms (RTP
   * without silence suppression), so they can send silence and keep their media clock running.
   */
  constructor(sampleRate: SampleRate, opts: { fireIdle?: boolean } = {}) {
    super();
    this.fireIdle = opts.fireIdle ?? false;
    this.sampleRate = sampleRate;
    this.frameSamples = samplesPerFrame(sampleRate);
    this.partial = new Int16Array(this.frameSamples);
  }

  /** Audio waiting to be sent, in ms (including a partial frame). */
  get queuedMs(): number {
    return ((this.queuedFrames * this.frameSamples + this.partialLen) * 1000) / this.sampleRate;
  }

  /** Subscribes to sent frames; returns an unsubscribe function. */
  onFrame(cb: (frame: AudioFrame) => void): () => void {
    return this.on('frame', cb);
  }

  /**
   * Queues audio (copied, split into 20 ms frames). A trailing partial frame
   * waits for more audio; it is padded with silence when a mark is attached
   * or when the queue would otherwise run dry. `markName` fires once the last
   * frame of this audio has been sent.
   */
  enqueue(audio: AudioFrame | Int16Array, markName?: string): void {
    let samples: Int16Array;
    if (audio instanceof Int16Array) {
      samples = audio;
    } else {
      if (audio.sampleRate !== this.sampleRate) {
        throw new RangeError(`frame rate ${audio.sampleRate} does not match stream rate ${this.sampleRate}`);
      }
      samples = audio.samples;
    }
    const n = this.frameSamples;
    let i = 0;
    if (this.partialLen > 0) {
      const take = Math.min(n - this.partialLen, samples.length);
      this.partial.set(samples.subarray(0, take), this.partialLen);
      this.partialLen += take;
      i = take;
      if (this.partialLen === n) this.flushPartial();
    }
    const whole = Math.floor((samples.length - i) / n) * n;
    if (whole > 0) {
      // One copy for all the whole frames; each frame is a view of it (no ArrayBuffer per frame).
      const copy = samples.slice(i, i + whole);
      for (let j = 0; j < whole; j += n) this.pushFrame(copy.subarray(j, j + n));
      i += whole;
    }
    if (i < samples.length) {
      this.partial.set(samples.subarray(i), 0);
      this.partialLen = samples.length - i;
    }
    if (markName !== undefined) this.mark(markName);
  }

  /** Queues a mark behind everything queued so far. */
  mark(name: string): void {
    if (this.partialLen > 0) this.flushPartial();
    this.queue.push(name);
  }

  /** Drops all queued audio; returns the ms dropped. Pending marks fire with cleared=true. */
  clear(): number {
    const dropped = this.queuedMs;
    const items = this.queue;
    const start = this.head;
    this.queue = [];
    this.head = 0;
    this.queuedFrames = 0;
    this.partialLen = 0;
    this.stats.droppedMs += dropped;
    for (let i = start; i < items.length; i++) {
      const item = items[i];
      if (typeof item === 'string') this.fire('mark', { name: item, cleared: true });
    }
    return dropped;
  }

  /** @internal Runs one 20 ms slot scheduled at `slotTime`; `now` is the send time. */
  runSlot(slotTime: number, now: number): void {
    if (this.queuedFrames === 0 && this.partialLen > 0) this.flushPartial();
    const ts = this.mediaTs;
    this.mediaTs += this.frameSamples;
    let item = this.queue[this.head];
    if (this.fireIdle && (item === undefined || typeof item === 'string')) this.fire('idle', ts);
    if (item !== undefined && typeof item !== 'string') {
      this.shift();
      this.queuedFrames--;
      item.timestamp = ts;
      const lateness = now - slotTime;
      this.stats.framesSent++;
      if (lateness > LATE_FRAME_MS) this.stats.lateFrames++;
      if (lateness > this.stats.maxLatenessMs) this.stats.maxLatenessMs = lateness;
      this.fire('frame', item);
      item = this.queue[this.head];
    }
    while (typeof item === 'string') {
      this.shift();
      this.stats.marksSent++;
      this.fire('mark', { name: item, cleared: false });
      item = this.queue[this.head];
    }
  }

  private fire<K extends 'frame' | 'mark' | 'idle'>(event: K, ...args: PacedStreamEvents[K]): void {
    const errors = this.emit(event, ...args);
    if (!errors) return;
    for (const err of errors) {
      this.stats.listenerErrors++;
      if (this.listenerCount('error') > 0) {
        const nested = this.emit('error', err);
        if (nested) for (const e of nested) this.clock?.reportError(e, this);
      } else {
        this.clock?.reportError(err, this);
      }
    }
  }

  private flushPartial(): void {
    const frame = new Int16Array(this.frameSamples);
    frame.set(this.partial.subarray(0, this.partialLen));
    this.partialLen = 0;
    this.pushFrame(frame);
  }

  private pushFrame(samples: Int16Array): void {
    this.queue.push({ samples, sampleRate: this.sampleRate, timestamp: 0 });
    this.queuedFrames++;
  }

  private shift(): void {
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
