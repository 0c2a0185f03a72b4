/**
 * The shared, typed state of one call's media session (bridge/call-session.ts), handed to each of its managers
 * (consent-manager.ts, content-manager.ts, turn-manager.ts) so none of them reaches into another:
 *
 *   deps (store, clock, TTS/STT, agents, recordings, logger)   ref (tenant, call), leg, legId, answeredAt, call
 *   log (child logger: call + leg)   pipeline (the leg's media)   work (the call's one-at-a-time queue)
 *   agent (the version running turns)   lifecycle: closed (media gone) · ended (call over) · transferring
 *
 * The fields that change are few and each changes through one method here: the agent (`useAgent`, by the turn
 * manager at a turn boundary), and the lifecycle flags (`markClosed` / `markEnded` by the coordinator,
 * `markTransferring` by the turn manager). A manager keeps the rest of its state to itself.
 */
import type { HumanLegs } from './human-legs.ts';
import type { TransferDialer } from './transfer-warm.ts';
import type { HoldAudio } from './hold-audio.ts';
import { NOOP_TRACER, type TraceSpan, type Tracer } from '../telemetry/tracing.ts';
import type { ToolApprovalSettings } from './tool-gate.ts';
import type { Logger } from 'pino';
import type { HttpToolDefinition } from '../agents/sdk.ts';
import type { Agent } from '../agents/types.ts';
import type { CallLeg } from '../media/call-leg.ts';
import type { MediaClock } from '../media/pacer.ts';
import { MediaPipeline } from '../media/pipeline.ts';
import type { VadFactory } from '../media/vad-factory.ts';
import { pipelineOptions } from './turn-taking.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { SpeechToText } from '../speech/stt.ts';
import type { TextToSpeech } from '../speech/tts.ts';
import type { Store } from '../store/index.ts';
import type { RecordingPort } from './recording-port.ts';

/** Picks the agent (version) for a call's turns; implemented by agents/registry.ts. */
export interface AgentDirectory {
  select(ref: { tenant: string; callId: string; name: string | null; pinned: string | null }, current: Agent | null): Promise<Agent>;
  retain(agent: Agent): void;
  release(agent: Agent): void;
}

export interface SessionDeps {
  store: Store<SwitchboardTables>;
  clock: MediaClock;
  tts: TextToSpeech;
  agents: AgentDirectory;
  logger: Logger;
  /** HTTP tools from the gateway's configuration, per agent name. */
  configTools?: ReadonlyMap<string, Readonly<Record<string, HttpToolDefinition>>>;
  /** Approval tools: how long a request waits for a decision, and what the caller hears meanwhile (bridge/tool-gate.ts). */
  toolApproval?: ToolApprovalSettings;
  /** Caller silence after the agent's turn that fires the agent's `onSilence` (default 8000 ms). */
  silenceMs?: number;
  /** Spoken consent and caller transcripts; null = DTMF-only consent, no caller transcript. */
  stt?: SpeechToText | null;
  recordings?: RecordingPort | null;
  /** One trace per call (telemetry/tracing.ts); absent = off. */
  tracer?: Tracer;
  /** The VAD `SWITCHBOARD_VAD` chose (media/vad-factory.ts); absent = the energy VAD. */
  vad?: VadFactory;
  /** Warm transfer (bridge/transfer-warm.ts): the legs transfers wait for, and the dialer that reaches the human; absent = no warm transfer. */
  humans?: HumanLegs;
  transferDialer?: TransferDialer;
  /** What a caller on hold hears (SWITCHBOARD_HOLD_AUDIO, bridge/hold-audio.ts); absent: the tone. */
  holdAudio?: HoldAudio;
}

export interface CallRef {
  tenant: string;
  callId: string;
}

/** What the session knows of the call from its row: the agent's name and the two parties. */
export interface CallInfo {
  name: string | null;
  from: string;
  to: string;
}

export class SessionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The call's work, one piece at a time (the consent phase, agent turns, recording flushes): each step starts after
 * the previous one settled, and a step's failure goes to its own handler, never to the next step.
 */
export class WorkQueue {
  private tail: Promise<void> = Promise.resolve();

  push(step: () => Promise<void>, failed: (err: unknown) => void): void {
    this.tail = this.tail.then(step).catch(failed);
  }

  /** Resolves when everything queued so far is done. */
  settled(): Promise<void> {
    return this.tail;
  }
}

export class CallContext {
  readonly log: Logger;
  /** This leg's span in the call's trace (a no-op when tracing is off); ended when the media closes. */
  readonly span: TraceSpan;
  readonly pipeline: MediaPipeline;
  readonly work = new WorkQueue();
  private running: Agent;
  private closedWith: string | null = null;
  private over = false;
  private handedOver = false;

  constructor(
    readonly deps: SessionDeps,
    readonly ref: CallRef,
    readonly leg: CallLeg,
    readonly legId: string,
    agent: Agent,
    /** Wall-clock ms the call was answered: 0 on the recording clock. */
    readonly answeredAt: number,
    readonly call: CallInfo,
  ) {
    this.running = agent;
    const tracer = deps.tracer ?? NOOP_TRACER;
    this.span = tracer.callSpan(ref.callId, { 'switchboard.leg_id': legId, 'switchboard.provider': leg.description.provider, 'switchboard.agent': agent.name, 'switchboard.agent_version': agent.version });
    this.log = deps.logger.child(tracer.enabled ? { call: ref.callId, leg: legId, trace_id: this.span.traceId } : { call: ref.callId, leg: legId });
    this.pipeline = new MediaPipeline(leg, deps.clock, pipelineOptions(agent, deps.vad));
  }

  /** Told when the call moves to another agent version (the turn-taking settings follow it). */
  agentChanged: ((next: Agent) => void) | null = null;

  /** The agent (version) running this call's turns. */
  get agent(): Agent {
    return this.running;
  }

  /** The turn manager moved the call to another version (migration at a turn boundary). */
  useAgent(next: Agent): void {
    this.running = next;
    this.agentChanged?.(next);
  }

  /** The media connection is gone (the leg closed); nothing new may start. */
  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Marks the media closed; true the first time only (the close cascade runs once). */
  markClosed(reason: string): boolean {
    if (this.closedWith !== null) return false;
    this.closedWith = reason;
    return true;
  }

  /** The call is over (hung up here, or the provider said so): no media loss to record. */
  get ended(): boolean {
    return this.over;
  }

  markEnded(): void {
    this.over = true;
  }

  /** The call is being handed to a transfer target: the media closing is not a loss. */
  get transferring(): boolean {
    return this.handedOver;
  }

  markTransferring(): void {
    this.handedOver = true;
  }

  who(): { tenant: string; caller: string } {
    return { tenant: this.ref.tenant, caller: `agent:${this.running.name}` };
  }

  /** Ms since the call was answered (the recording clock). */
  clockMs(): number {
    return Math.max(0, Date.now() - this.answeredAt);
  }

  /** Speaks `text` to the caller; a TTS or playout failure is logged, not thrown. */
  async playText(text: string): Promise<void> {
    try {
      await this.pipeline.play(await this.deps.tts.synthesize(text, this.leg.description.outputRate));
    } catch (err) {
      this.log.warn({ err }, 'prompt not played');
    }
  }
}
