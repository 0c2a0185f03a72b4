/**
 * The caller's side of a test call, in real time: queued µ-law is cut into
 * 20 ms frames, frame n due at start + 20n ms (performance.now()), so timer
 * jitter never drifts; with `idleSilence` it sends 0xFF frames when nothing
 * is queued, otherwise it stops until the next `play`.
 */
import { performance } from 'node:perf_hooks';

export const FRAME_BYTES = 160; // 20 ms of 8 kHz µ-law
const FRAME_MS = 20;
const SILENT_FRAME = Buffer.alloc(FRAME_BYTES, 0xff);

export class CallerClock {
  private readonly queue: Array<{ buf: Buffer; off: number; done: () => void }> = [];
  private start = 0;
  private frames = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: {
      idleSilence: boolean;
      /** Whether frames may flow now (a stream was opened, the call has not ended). */
      running: () => boolean;
      send: (frame: Buffer, frameTime: number) => void;
    },
  ) {}

  /** Resolves when every frame of `ulaw` was due and handed to `send`, or when the clock stops. */
  play(ulaw: Buffer): Promise<void> {
    return new Promise((done) => {
      this.queue.push({ buf: ulaw, off: 0, done });
      this.ensure();
    });
  }

  /** Starts the clock if it may run and has something to send. */
  ensure(): void {
    if (this.timer || !this.o.running()) return;
    if (!this.o.idleSilence && this.queue.length === 0) return;
    this.start = performance.now();
    this.frames = 0;
    this.tick();
  }

  /** Stops for good: pending plays resolve. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const item of this.queue.splice(0)) item.done();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (!this.o.running()) return;
    const due = Math.floor((performance.now() - this.start) / FRAME_MS) + 1;
    for (; this.frames < due; this.frames++) {
      const frame = this.next();
      if (!frame) return; // idle with idleSilence off: the clock stops until play()
      this.o.send(frame, this.start + this.frames * FRAME_MS);
    }
    const nextAt = this.start + this.frames * FRAME_MS;
    this.timer = setTimeout(this.tick, Math.max(0, nextAt - performance.now()));
  };

  private next(): Buffer | null {
    const item = this.queue[0];
    if (!item) return this.o.idleSilence ? SILENT_FRAME : null;
    const frame = Buffer.from(SILENT_FRAME);
    item.buf.copy(frame, 0, item.off, Math.min(item.off + FRAME_BYTES, item.buf.length));
    item.off += FRAME_BYTES;
    if (item.off >= item.buf.length) (this.queue.shift(), item.done());
    return frame;
  }
}
