/**
 * The per-call media pipeline. Caller frames from the leg fan out to taps
 * (recorder channel 0, transcriber — attached by later stages) and to the VAD;
 * agent audio is queued on a `PacedStream` driven by the process-wide
 * `MediaClock`, sent out through the leg, and fanned out to the same taps as
 * channel `agent`.
 *
 * Playout: each `play()` queues its audio with progress marks every
 * PROGRESS_MS and an end mark. On legs that report playout (Twilio, Vonage),
 * marks are forwarded to the far end and a play completes when the far end
 * echoes its end mark; elsewhere it completes when its last frame is sent.
 *
 * Barge-in: caller speech over agent audio (queued or still playing) that stays
 * voiced for the agent's `bargeIn.minSpeechMs` clears the local queue and the
 * far end's buffer (`leg.clear()`), and every pending play resolves
 * `interrupted` with how much the caller heard — the last progress mark echoed
 * before the clear. Shorter speech over the agent ends as a `backchannel`
 * event and the agent's audio keeps flowing (media/turn-taking.ts). Before either, from the caller's first voiced
 * frame over the agent, its audio is ducked by `bargeIn.duckDb` (media/ducker.ts) — the cue the caller hears within
 * a few frames; a backchannel (or a blip that never became speech) ramps it back, a barge-in clears it. The VAD
 * is the energy one (media/vad.ts) unless a `detector` is given (the silero
 * one, media/vad-silero.ts, chosen by SWITCHBOARD_VAD in media/vad-factory.ts).
 *
 * Several legs (bridge/legs.ts): while `routeOutbound(sink)` is set, agent frames go to the sink (the call's mixer)
 * instead of the leg, idle slots send nothing, and the recorder's `agent` channel gets what the mixer says the
 * caller heard (`recordHeard`). Unset (a plain two-party call) the path is the one above, untouched.
 */
import type { CallLeg, CallLegEvents } from './call-leg.ts';
import { SafeEmitter } from './emitter.ts';
import { FRAME_MS, type AudioFrame } from './frame.ts';
import { PacedStream, type MarkEvent, type MediaClock } from './pacer.ts';
import { EnergyVad, type EnergyVadOptions, type Vad } from './vad.ts';
import { BargeInGate, DEFAULT_TURN_TAKING, type TurnTakingSettings } from './turn-taking.ts';
import { Ducker } from './ducker.ts';

export type Channel = 'caller' | 'agent';

/** A consumer of the call's audio: recorder, transcriber, meter … */
export interface FrameTap {
  readonly name: string;
  process(frame: AudioFrame, channel: Channel): void;
  close?(): void;
}

export interface PlayResult {
  playId: string;
  durationMs: number;
  /** What the caller heard (from echoed marks, or sent frames when the leg cannot report playout). */
  heardMs: number;
  interrupted: boolean;
}

export type PipelineEvents = {
  speechStart: [];
  speechEnd: [info: { durationMs: number }];
  /** `duckDb`: how far the agent was ducked when it was decided (0: not ducked); `stopWord`: a recognised stop word did it. */
  bargeIn: [info: { droppedMs: number; interrupted: PlayResult[]; voicedMs: number; duckDb: number; stopWord?: boolean }];
  /** Caller speech over the agent too short to interrupt it (an "uh-huh"): the agent kept speaking. */
  backchannel: [info: { voicedMs: number; duckDb: number }];
  /** The caller's first voiced frame over the agent: its audio is being ducked by `depthDb`. */
  duck: [info: { depthDb: number }];
  dtmf: CallLegEvents['dtmf'];
  tapError: [info: { tap: string; error: unknown }];
};

const PROGRESS_MS = 200;

interface PendingPlay {
  id: string;
  durationMs: number;
  heardMs: number;
  sentMs: number;
  /** End mark left the local queue (or the far end was asked to play it). */
  sent: boolean;
  resolve: (r: PlayResult) => void;
}

export interface MediaPipelineOptions {
  vad?: EnergyVadOptions;
  /** A VAD to use instead of the energy one built from `vad` (media/vad-factory.ts). */
  detector?: Vad;
  /** Barge-in on caller speech (default true). */
  bargeIn?: boolean;
  /** Barge-in threshold (the agent's turn-taking settings; default DEFAULT_TURN_TAKING.bargeIn). */
  turnTaking?: Pick<TurnTakingSettings, 'bargeIn'>;
}

export class MediaPipeline extends SafeEmitter<PipelineEvents> {
  readonly outbound: PacedStream;
  private readonly taps: FrameTap[] = [];
  private readonly vad: Vad;
  private readonly gate: BargeInGate;
  /** The barge-in cue on the agent's audio. */
  private readonly ducker: Ducker;
  /** Consecutive voiced frames, for the gate's start (the VAD's attack). */
  private voicedRun = 0;
  private readonly plays = new Map<string, PendingPlay>();
  private readonly unsubscribe: Array<() => void> = [];
  private speechFrames = 0;
  private speechEndedAt = 0;
  private playSeq = 0;
  private closed = false;
  /** Set while the call's audio is mixed from several legs (bridge/legs.ts). */
  private sink: ((frame: AudioFrame) => void) | null = null;
  readonly stats = { callerFrames: 0, bargeIns: 0, backchannels: 0, ducks: 0, tapErrors: 0 };

  constructor(
    private readonly leg: CallLeg,
    private readonly clock: MediaClock,
    private readonly opts: MediaPipelineOptions = {},
  ) {
    super();
    this.vad = opts.detector ?? new EnergyVad(opts.vad);
    const bargeIn = opts.turnTaking?.bargeIn ?? DEFAULT_TURN_TAKING.bargeIn;
    this.gate = new BargeInGate(opts.bargeIn === false ? { ...bargeIn, enabled: false } : bargeIn);
    this.ducker = new Ducker(opts.bargeIn === false || !bargeIn.enabled ? 0 : (bargeIn.duckDb ?? DEFAULT_TURN_TAKING.bargeIn.duckDb));
    this.outbound = new PacedStream(leg.description.outputRate, { fireIdle: leg.description.continuousMedia === true });
    this.unsubscribe.push(
      leg.on('audio', (f) => this.onCallerFrame(f)),
      leg.on('dtmf', (d) => void this.emit('dtmf', d)),
      leg.on('markPlayed', (name) => this.onMarkPlayed(name)),
      this.outbound.on('frame', (f) => this.onAgentFrame(f)),
      this.outbound.on('idle', () => void (this.sink !== null || this.leg.closed || this.leg.sendIdle())),
      this.outbound.on('mark', (m) => this.onLocalMark(m)),
    );
    clock.add(this.outbound);
  }

  addTap(tap: FrameTap): () => void {
    this.taps.push(tap);
    return () => {
      const i = this.taps.indexOf(tap);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  /** The call's agent changed (a migration): its barge-in settings apply from the next speech. */
  setBargeIn(settings: TurnTakingSettings['bargeIn']): void {
    this.gate.set(this.opts.bargeIn === false ? { ...settings, enabled: false } : settings);
    this.ducker.setDepth(this.opts.bargeIn === false || !settings.enabled ? 0 : settings.duckDb);
  }

  /** True while the caller is talking (VAD). */
  get callerSpeaking(): boolean {
    return this.vad.speaking;
  }

  /** performance.now() of the caller's last speech end (0 = never). */
  get lastSpeechEndAt(): number {
    return this.speechEndedAt;
  }

  /** True while agent audio is queued or not yet played at the far end. */
  get agentSpeaking(): boolean {
    return this.outbound.queuedMs > 0 || this.plays.size > 0;
  }

  /** Queues agent audio (at the leg's output rate); resolves once played or interrupted. */
  play(samples: Int16Array): Promise<PlayResult> {
    const rate = this.leg.description.outputRate;
    const id = `${++this.playSeq}`;
    const durationMs = Math.round((samples.length * 1000) / rate);
    if (!this.agentSpeaking) this.ducker.reset(); // a new say after silence starts at full level
    return new Promise<PlayResult>((resolve) => {
      if (this.closed) return resolve({ playId: id, durationMs, heardMs: 0, interrupted: true });
      this.plays.set(id, { id, durationMs, heardMs: 0, sentMs: 0, sent: false, resolve });
      const step = (rate * PROGRESS_MS) / 1000;
      for (let at = 0; at < samples.length; at += step) {
        const end = Math.min(samples.length, at + step);
        this.outbound.enqueue(samples.subarray(at, end), `p:${id}:${Math.round((end * 1000) / rate)}`);
      }
      this.outbound.mark(`e:${id}`);
    });
  }

  /**
   * While `sink` is set, agent frames go to it instead of the leg (and not to the taps): the call's mixer decides
   * who hears them (bridge/legs.ts). Null gives the leg back its own path.
   */
  routeOutbound(sink: ((frame: AudioFrame) => void) | null): void {
    this.sink = sink;
  }

  /** While mixed: what the caller heard in one slot, for the taps' `agent` channel (the recorder). */
  recordHeard(frame: AudioFrame): void {
    if (!this.closed) this.runTaps(frame, 'agent');
  }

  /** Clears agent audio now (barge-in, or an agent-initiated stop). */
  interrupt(): { droppedMs: number; interrupted: PlayResult[] } {
    this.ducker.reset();
    const droppedMs = this.outbound.clear();
    if (this.leg.description.reportsPlayout && !this.leg.closed) this.leg.clear();
    const interrupted: PlayResult[] = [];
    for (const p of [...this.plays.values()]) interrupted.push(this.finish(p, true));
    return { droppedMs, interrupted };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clock.remove(this.outbound);
    for (const u of this.unsubscribe) u();
    this.vad.close?.();
    for (const p of [...this.plays.values()]) this.finish(p, true);
    for (const tap of this.taps) {
      try {
        tap.close?.();
      } catch (error) {
        this.emit('tapError', { tap: tap.name, error });
      }
    }
    this.taps.length = 0;
  }

  private onCallerFrame(frame: AudioFrame): void {
    this.stats.callerFrames++;
    this.runTaps(frame, 'caller');
    const ev = this.vad.process(frame.samples, frame.sampleRate);
    this.voicedRun = this.vad.voiced ? this.voicedRun + 1 : 0;
    if (this.vad.speaking) this.speechFrames++;
    if (ev === 'speech_start') {
      this.emit('speechStart');
      this.decide(this.gate.speechStarted(this.agentSpeaking, this.voicedRun * FRAME_MS));
    } else if (ev === 'speech_end') {
      this.decide(this.gate.speechEnded());
      const durationMs = this.speechFrames * FRAME_MS;
      this.speechFrames = 0;
      this.speechEndedAt = performance.now();
      this.emit('speechEnd', { durationMs });
    } else if (this.gate.pending) {
      this.decide(this.gate.frame(this.vad.voiced ? FRAME_MS : 0, this.agentSpeaking));
    }
    this.cue(ev);
  }

  /**
   * The duck: on a voiced frame over the agent that may become a barge-in (before the VAD started speech, or inside a
   * candidate the gate weighs); released once the caller is quiet again with nothing pending (a blip, a backchannel).
   */
  private cue(ev: ReturnType<Vad['process']>): void {
    const d = this.ducker;
    if (!this.agentSpeaking) return void (d.ducked && d.reset());
    if (this.vad.voiced && (!this.vad.speaking || ev === 'speech_start' || this.gate.pending)) {
      if (d.duck()) {
        this.stats.ducks++;
        this.emit('duck', { depthDb: d.depthDb });
      }
    } else if (d.ducked && !this.gate.pending && !this.vad.speaking && !this.vad.voiced) d.release();
  }

  /** A stop word was recognised over the agent (bridge/stop-words.ts): interrupt now, whatever the gate has counted. */
  interruptForStopWord(): boolean {
    if (!this.agentSpeaking || this.opts.bargeIn === false) return false;
    const voicedMs = this.gate.cancel();
    const duckDb = this.ducker.ducked ? this.ducker.depthDb : 0;
    this.stats.bargeIns++;
    this.emit('bargeIn', { ...this.interrupt(), voicedMs, duckDb, stopWord: true });
    return true;
  }

  private decide(d: ReturnType<BargeInGate['frame']>): void {
    const duckDb = this.ducker.ducked ? this.ducker.depthDb : 0;
    if (d?.kind === 'interrupt') {
      this.stats.bargeIns++;
      this.emit('bargeIn', { ...this.interrupt(), voicedMs: d.voicedMs, duckDb });
    } else if (d?.kind === 'backchannel') {
      this.stats.backchannels++;
      this.ducker.release();
      this.emit('backchannel', { voicedMs: d.voicedMs, duckDb });
    }
  }

  private onAgentFrame(raw: AudioFrame): void {
    const samples = this.ducker.process(raw.samples);
    const frame = samples === raw.samples ? raw : { ...raw, samples };
    if (this.sink !== null) return this.sink(frame);
    if (!this.leg.closed) this.leg.sendFrame(frame.samples);
    this.runTaps(frame, 'agent');
  }

  private runTaps(frame: AudioFrame, channel: Channel): void {
    for (let i = 0; i < this.taps.length; i++) {
      const tap = this.taps[i] as FrameTap;
      try {
        tap.process(frame, channel);
      } catch (error) {
        this.stats.tapErrors++;
        this.emit('tapError', { tap: tap.name, error });
      }
    }
  }

  /** A mark reached the head of the local queue (its audio has been sent). */
  private onLocalMark(mark: MarkEvent): void {
    if (mark.cleared) return; // interrupt() settles the plays
    const reports = this.leg.description.reportsPlayout;
    if (reports && !this.leg.closed) this.leg.sendMark(mark.name);
    const [kind, id, ms] = mark.name.split(':');
    const play = id === undefined ? undefined : this.plays.get(id);
    if (!play) return;
    if (kind === 'p') {
      play.sentMs = Number(ms);
      if (!reports) play.heardMs = play.sentMs;
    } else if (kind === 'e') {
      play.sent = true;
      if (!reports || this.leg.closed) this.finish(play, false);
    }
  }

  /** The far end echoed a mark: everything before it was played. */
  private onMarkPlayed(name: string): void {
    const [kind, id, ms] = name.split(':');
    const play = id === undefined ? undefined : this.plays.get(id);
    if (!play) return;
    if (kind === 'p') play.heardMs = Math.max(play.heardMs, Number(ms));
    else if (kind === 'e') this.finish(play, false);
  }

  private finish(play: PendingPlay, interrupted: boolean): PlayResult {
    this.plays.delete(play.id);
    const result: PlayResult = {
      playId: play.id,
      durationMs: play.durationMs,
      heardMs: interrupted ? Math.min(play.heardMs, play.durationMs) : play.durationMs,
      interrupted,
    };
    play.resolve(result);
    return result;
  }
}
