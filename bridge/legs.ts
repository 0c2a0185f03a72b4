/**
 * The media of a call with several legs: the caller's leg, the agent (the call's pipeline), the legs added to it (a
 * human reached by a transfer) and a hold source, mixed every 20 ms slot by media/mixer.ts as the who-hears-whom
 * matrix says (media/mix-matrix.ts; the matrix's rows are written by the caller of `setMatrix`, see
 * bridge/transfer-warm.ts).
 *
 *   two-party (the default)   pipeline.outbound ─► caller leg            (no mixer: the plain path, as cheap as ever)
 *
 *   mixed                     caller leg ──audio──► queue ─┐
 *                             human leg ──audio──► queue ─┤  each slot of `slots` (a PacedStream on the media clock):
 *                             pipeline.outbound ─► agent ─┤   put ─► mixer.mix() ─► out(caller) ─► caller leg (+ recorder)
 *                             `speak()` ─► slots' frames ─┤                      └► out(human)  ─► human leg
 *                             hold (tone or WAV loop) ────┘
 *
 * While mixed, the pipeline's own sends are routed here (`MediaPipeline.routeOutbound`), so the caller gets exactly
 * one frame per slot, and the recorder's `agent` channel gets what the caller heard (so a leg the caller cannot hear
 * is never on it; the recorder records only what the call's consent allows). Back to two-party, the mixer is dropped
 * and the pipeline sends on its own again. Inbound frames wait in a short queue per leg (a burst beyond it drops the
 * oldest). Legs at another rate than the caller's are resampled on the way in and out.
 */
import type { Logger } from 'pino';
import type { CallLeg } from '../media/call-leg.ts';
import type { AudioFrame, SampleRate } from '../media/frame.ts';
import { Mixer } from '../media/mixer.ts';
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import type { MediaClock } from '../media/pacer.ts';
import { PacedStream } from '../media/pacer.ts';
import type { MediaPipeline } from '../media/pipeline.ts';
import { Resampler } from '../media/resample.ts';
import { isTwoParty } from './legs-matrix.ts';
import { holdSource, type HoldClip } from './hold-audio.ts';

/** Inbound frames kept per leg between two slots (a burst beyond this drops the oldest). */
const QUEUE_FRAMES = 4;

interface Added {
  leg: CallLeg;
  queue: Int16Array[];
  toMix: Resampler | null;
  fromMix: Resampler | null;
  off: () => void;
}

export class CallLegs {
  readonly rate: SampleRate;
  private mixer: Mixer | null = null;
  private slots: PacedStream | null = null;
  private readonly added = new Map<string, Added>();
  private readonly callerQueue: Int16Array[] = [];
  private readonly callerIn: Resampler | null;
  private agentFrame: Int16Array | null = null;
  private readonly hold: { next(): Int16Array };
  private offCaller: (() => void) | null = null;
  private speakSeq = 0;
  /** The ids of the matrix in force (an added leg outside it is neither mixed nor sent to). */
  private inMatrix = new Set<string>();
  private readonly speaking = new Map<string, () => void>();
  readonly stats = { slots: 0, droppedInbound: 0 };

  constructor(
    private readonly caller: CallLeg,
    private readonly pipeline: MediaPipeline,
    private readonly clock: MediaClock,
    private readonly log: Logger,
    /** The hold audio (bridge/hold-audio.ts: the tenant's WAV in a loop); absent: the tone. */
    hold?: HoldClip | null,
  ) {
    this.rate = caller.description.outputRate;
    this.callerIn = caller.description.inputRate === this.rate ? null : new Resampler(caller.description.inputRate, this.rate);
    this.hold = holdSource(hold ?? null, this.rate);
  }

  /** True while the call's audio goes through the mixer. */
  get mixed(): boolean {
    return this.mixer !== null;
  }

  get matrix(): MixMatrix {
    return this.mixer?.matrix ?? twoParty();
  }

  /** A leg joins the call's media under `id` (its matrix role comes with the next `setMatrix`). */
  addLeg(id: string, leg: CallLeg): void {
    const d = leg.description;
    const off = leg.on('audio', (f) => this.queueFrame(this.added.get(id)?.queue, this.added.get(id)?.toMix ?? null, f));
    this.added.set(id, { leg, queue: [], toMix: d.inputRate === this.rate ? null : new Resampler(d.inputRate, this.rate), fromMix: d.outputRate === this.rate ? null : new Resampler(this.rate, d.outputRate), off });
  }

  /** The leg leaves the call's media (its own close is the caller's business). */
  removeLeg(id: string): void {
    this.added.get(id)?.off();
    this.added.delete(id);
  }

  /**
   * Applies `m` from the next slot on: two-party (caller ⇄ agent, nothing else) drops the mixer; anything else mixes.
   * Throws on a matrix the mixer cannot apply (or that names a leg that was not added), changing nothing.
   */
  setMatrix(m: MixMatrix): void {
    for (const l of m.legs) if (l.id !== 'caller' && l.id !== 'agent' && l.id !== 'hold' && !this.added.has(l.id)) throw new Error(`mix matrix names ${l.id}, which is not a leg of the call`);
    if (isTwoParty(m)) return this.unmix();
    if (this.mixer) {
      this.mixer.setMatrix(m);
      this.inMatrix = new Set(m.legs.map((l) => l.id));
      return;
    }
    this.mixer = new Mixer(this.rate, m);
    this.inMatrix = new Set(m.legs.map((l) => l.id));
    this.slots = new PacedStream(this.rate, { fireIdle: true });
    this.slots.on('frame', (f) => this.slot(f.samples));
    this.slots.on('idle', () => this.slot(null));
    this.slots.on('mark', (mk) => {
      const done = this.speaking.get(mk.name);
      this.speaking.delete(mk.name);
      done?.();
    });
    this.offCaller = this.caller.on('audio', (f) => this.queueFrame(this.callerQueue, this.callerIn, f));
    this.pipeline.routeOutbound((f) => void (this.agentFrame = f.samples));
    this.clock.add(this.slots);
  }

  /**
   * Says `samples` (at `rate`) as the agent leg, outside the pipeline (so the caller's barge-in cannot cut it): only
   * the legs whose matrix row hears the agent hear it. Resolves when the last frame was sent (or at once, unmixed).
   */
  speak(samples: Int16Array): Promise<void> {
    const slots = this.slots;
    if (!slots) return Promise.resolve();
    const name = `s:${++this.speakSeq}`;
    return new Promise<void>((resolve) => {
      this.speaking.set(name, resolve);
      slots.enqueue(samples);
      slots.mark(name);
    });
  }

  /** Stops mixing (the call's end, or back to two-party). */
  close(): void {
    this.unmix();
    for (const id of [...this.added.keys()]) this.removeLeg(id);
  }

  private unmix(): void {
    if (!this.mixer) return;
    this.pipeline.routeOutbound(null);
    this.offCaller?.();
    this.offCaller = null;
    if (this.slots) this.clock.remove(this.slots);
    this.slots?.clear();
    this.slots = null;
    this.mixer = null;
    this.callerQueue.length = 0;
    this.agentFrame = null;
    for (const done of this.speaking.values()) done();
    this.speaking.clear();
  }

  private queueFrame(queue: Int16Array[] | undefined, rs: Resampler | null, f: AudioFrame): void {
    if (!queue || !this.mixer) return;
    queue.push(rs ? rs.process(f.samples) : f.samples);
    if (queue.length > QUEUE_FRAMES) {
      queue.shift();
      this.stats.droppedInbound++;
    }
  }

  /** One 20 ms slot: every present leg's frame in, the mix out to every leg that listens. */
  private slot(spoken: Int16Array | null): void {
    const mixer = this.mixer;
    if (!mixer) return;
    this.stats.slots++;
    const callerFrame = this.callerQueue.shift();
    if (callerFrame) mixer.put('caller', callerFrame);
    const agent = spoken ?? this.agentFrame;
    this.agentFrame = null;
    if (agent) mixer.put('agent', agent);
    const m = mixer.matrix;
    if (m.legs.some((l) => l.id === 'hold') && Object.values(m.hears).some((s) => s.includes('hold'))) mixer.put('hold', this.hold.next());
    for (const [id, a] of this.added) {
      const f = a.queue.shift();
      if (f && this.inMatrix.has(id)) mixer.put(id, f);
    }
    mixer.mix();
    try {
      // Copies: a leg may keep or hand off what it is given (an encoder thread), and the mixer reuses its outputs.
      const heard = mixer.out('caller').slice();
      if (!this.caller.closed) this.caller.sendFrame(heard);
      this.pipeline.recordHeard({ samples: heard, sampleRate: this.rate, timestamp: 0 });
      for (const [id, a] of this.added) {
        if (a.leg.closed || !this.inMatrix.has(id)) continue;
        const out = mixer.out(id);
        a.leg.sendFrame(a.fromMix ? a.fromMix.process(out) : out.slice());
      }
    } catch (err) {
      this.log.warn({ err }, 'mixed slot not sent');
    }
  }
}
