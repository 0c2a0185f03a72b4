/**
 * Outbound media pacing: one clock for every call.
 *
 * A single `MediaClock` owns one drift-correcting `setTimeout` loop. Time is
 * divided into 20 ms slots counted from `start()` using the monotonic `now()`;
 * on each tick the clock works out how many slots are due and, for every
 * registered `PacedStream` (see paced-stream.ts), runs each due slot in order.
 * A late tick therefore catches up (sending the frames it owes) instead of
 * drifting; if the loop was stalled for longer than `maxCatchUpFrames` slots,
 * the oldest due slots are skipped (counted in `stats.skippedSlots`) rather
 * than bursting seconds of audio at once. Queued audio is never dropped by the
 * clock itself. Listener errors of streams without an 'error' listener go to
 * `onError`. A running clock keeps the process alive (like any timer) until
 * `stop()`. Each tick's duration goes into `tickTimes` (tick-time.ts; /metrics
 * shows it as `switchboard_media_tick_seconds`); a tick that begins more than
 * one sub-slot after the first slot it runs was due is counted in
 * `stats.lateTicks` (the event loop held the clock up;
 * `switchboard_media_clock_late_ticks_total`).
 *
 * Phases: with `phases: P` the 20 ms slot is cut into P sub-slots (5 ms for
 * P = 4) and each stream is given one of them (the least-loaded one when it
 * joins), so every stream still sends one frame per 20 ms, on its own phase.
 * A tick then serves about 1/P of the streams: the burst of sends that delays
 * the last stream of a tick (and everything else on the event loop) is P times
 * shorter. Lateness is measured against each stream's own phased slot time.
 *
 *   P = 1   |A B C D ...........|A B C D ...........|
 *   P = 4   |A . . . B . . . C . . . D . . . |A . . . B ...     (one sub-slot = 5 ms)
 */
import { FRAME_MS } from './frame.ts';
import type { PacedStream } from './paced-stream.ts';
import { TickTimes } from './tick-time.ts';

export { PacedStream, LATE_FRAME_MS } from './paced-stream.ts';
export type { MarkEvent, PacedStreamStats } from './paced-stream.ts';

export interface MediaClockOptions {
  /** Longest the loop sleeps between ticks, in ms. Default one sub-slot (FRAME_MS / phases). */
  tickMs?: number;
  /** Sub-slots per 20 ms slot; streams are spread over them (see above). Default 1; must divide 20. */
  phases?: number;
  /** Monotonic time source in ms. Default `performance.now`. */
  now?: () => number;
  /** Don't schedule timers; the owner calls `tick()` (tests, simulations). */
  manual?: boolean;
  /** Most slots one tick will run before skipping ahead (200 ms by default). Default 10. */
  maxCatchUpFrames?: number;
  /** Receives listener errors of streams that have no 'error' listener. */
  onError?: (err: unknown, stream: PacedStream) => void;
  /**
   * While it returns false, due slots pass and no stream sends (queues are kept; counted in `stats.heldSlots`):
   * the node may no longer own its calls (bridge/ownership.ts holds media until its lease is renewed).
   */
  gate?: () => boolean;
}

export interface MediaClockStats {
  ticks: number;
  /** 20 ms slots run (each slot runs every registered stream once, each on its phase). */
  slots: number;
  /** 20 ms slots skipped after a stall longer than maxCatchUpFrames. */
  skippedSlots: number;
  listenerErrors: number;
  /** 20 ms slots passed without sending while the gate was shut. */
  heldSlots: number;
  /** Ticks that ran slots and began more than one sub-slot after the first of them was due. */
  lateTicks: number;
}

export class MediaClock {
  /** Frames sent > LATE_FRAME_MS after their slot by streams no longer registered. */
  private retiredLateFrames = 0;
  private retiredFramesSent = 0;

  /** Late frames and frames sent by every stream this clock has paced (for /metrics). */
  frameTotals(): { sent: number; late: number } {
    let sent = this.retiredFramesSent;
    let late = this.retiredLateFrames;
    for (const list of this.byPhase) {
      for (const s of list) {
        sent += s.stats.framesSent;
        late += s.stats.lateFrames;
      }
    }
    return { sent, late };
  }

  readonly stats: MediaClockStats = { ticks: 0, slots: 0, skippedSlots: 0, listenerErrors: 0, heldSlots: 0, lateTicks: 0 };
  /** Duration of every tick that ran at least one slot. */
  readonly tickTimes = new TickTimes();
  private readonly tickMs: number;
  private readonly phases: number;
  /** Length of one sub-slot, ms (FRAME_MS / phases). */
  private readonly subMs: number;
  private readonly now: () => number;
  private readonly manual: boolean;
  private readonly maxCatchUp: number;
  private readonly onError: ((err: unknown, stream: PacedStream) => void) | undefined;
  private readonly gate: (() => boolean) | undefined;
  /** Streams by phase. Copy-on-write so add/remove during a tick is safe and ticks don't allocate. */
  private byPhase: Array<readonly PacedStream[]>;
  private readonly phaseOf = new WeakMap<PacedStream, number>();
  private epoch: number | null = null;
  /** Next sub-slot to run (counted from start(); sub-slot k runs phase k % phases). */
  private nextSlot = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(opts: MediaClockOptions = {}) {
    const phases = opts.phases ?? 1;
    if (!Number.isInteger(phases) || phases < 1 || FRAME_MS % phases !== 0) {
      throw new RangeError(`MediaClock phases must be a whole divisor of ${FRAME_MS}; got ${phases}`);
    }
    this.phases = phases;
    this.subMs = FRAME_MS / phases;
    this.byPhase = Array.from({ length: phases }, () => []);
    this.tickMs = Math.max(1, opts.tickMs ?? this.subMs);
    this.now = opts.now ?? (() => performance.now());
    this.manual = opts.manual ?? false;
    this.maxCatchUp = Math.max(1, opts.maxCatchUpFrames ?? 10);
    this.onError = opts.onError;
    this.gate = opts.gate;
  }

  get running(): boolean {
    return this.epoch !== null;
  }

  /** Number of registered streams. */
  get size(): number {
    let n = 0;
    for (const list of this.byPhase) n += list.length;
    return n;
  }

  /** Registers a stream; it takes part from the next slot on. */
  add(stream: PacedStream): void {
    if (stream.clock === this) return;
    if (stream.clock) throw new Error('stream is already registered with another MediaClock');
    stream.clock = this;
    let phase = 0;
    for (let p = 1; p < this.phases; p++) if ((this.byPhase[p] as readonly PacedStream[]).length < (this.byPhase[phase] as readonly PacedStream[]).length) phase = p;
    this.phaseOf.set(stream, phase);
    this.byPhase[phase] = [...(this.byPhase[phase] as readonly PacedStream[]), stream];
  }

  /** Unregisters a stream; its queue is kept (call `clear()` to drop it). */
  remove(stream: PacedStream): void {
    if (stream.clock !== this) return;
    stream.clock = null;
    const phase = this.phaseOf.get(stream) ?? 0;
    this.byPhase[phase] = (this.byPhase[phase] as readonly PacedStream[]).filter((s) => s !== stream);
    this.retiredFramesSent += stream.stats.framesSent;
    this.retiredLateFrames += stream.stats.lateFrames;
  }

  /** Starts the slot grid at `now()` and (unless manual) the timer loop. */
  start(): void {
    if (this.epoch !== null) return;
    this.epoch = this.now();
    this.nextSlot = 0;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.epoch = null;
  }

  /**
   * Runs every slot that is due at `now()`; returns how many sub-slots ran (slots, with one phase). Called
   * by the timer loop; public so tests and simulations can drive the clock.
   */
  tick(): number {
    const epoch = this.epoch;
    if (epoch === null) return 0;
    this.stats.ticks++;
    const now = this.now();
    const P = this.phases;
    const due = Math.floor((now - epoch) / this.subMs) + 1;
    const maxSub = this.maxCatchUp * P;
    if (due - this.nextSlot > maxSub) {
      const resume = due - maxSub;
      // Slot boundaries (phase-0 sub-slots) passed over: each is one 20 ms slot no stream got.
      this.stats.skippedSlots += Math.ceil(resume / P) - Math.ceil(this.nextSlot / P);
      this.nextSlot = resume;
    }
    if (this.gate && !this.gate()) {
      this.stats.heldSlots += Math.ceil(due / P) - Math.ceil(this.nextSlot / P);
      this.nextSlot = due;
      return 0;
    }
    let ran = 0;
    // How late this tick began against the first slot it runs (after any skip): more than a sub-slot is a late tick.
    const startedLate = now - (epoch + this.nextSlot * this.subMs) > this.subMs;
    // Stop early if a listener stopped (or restarted) the clock.
    while (this.nextSlot < due && this.epoch === epoch) {
      const sub = this.nextSlot;
      const slotTime = epoch + sub * this.subMs;
      this.nextSlot++;
      const phase = sub % P;
      const list = this.byPhase[phase] as readonly PacedStream[];
      for (let i = 0; i < list.length; i++) {
        const stream = list[i] as PacedStream;
        // Read the clock per stream: the sends of earlier streams in this tick count as lateness too.
        if (stream.clock === this) stream.runSlot(slotTime, i === 0 ? now : this.now());
      }
      if (phase === 0) this.stats.slots++;
      ran++;
    }
    if (ran > 0) {
      this.tickTimes.observe(this.now() - now);
      if (startedLate) this.stats.lateTicks++;
    }
    return ran;
  }

  /** @internal Routes a listener error of `stream`; never throws. */
  reportError(err: unknown, stream: PacedStream): void {
    this.stats.listenerErrors++;
    if (!this.onError) return;
    try {
      this.onError(err, stream);
    } catch {
      // The error sink itself failed; nothing sensible is left to do.
    }
  }

  private schedule(): void {
    // Already scheduled (e.g. a listener restarted the clock inside a tick).
    if (this.manual || this.epoch === null || this.timer !== null) return;
    const nextAt = this.epoch + this.nextSlot * this.subMs;
    const delay = Math.min(this.tickMs, Math.max(0, nextAt - this.now()));
    this.timer = setTimeout(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    try {
      this.tick();
    } finally {
      this.schedule();
    }
  };
}
