/**
 * One live media connection of a call, bridged to consent, recording,
 * transcription and its agent. Provider-neutral: it sees a `CallLeg`, the store
 * and interfaces, never a wire format.
 *
 *   attach ─► call_media_connected (resumes a `resuming` call)
 *          ─► consent phase (unless decided) ─► granted: recording + transcripts
 *          ─► agent.onStart | agent.onResume ─► turns (speech end, DTMF) ─► …
 *   *9, or the caller saying "stop recording" (a `phrases` result) ─► consent_withdrawn, recording paused
 *   leg closed ─► call_media_lost (the call waits in `resuming`), recording segment flushed
 *   hangup ─► call_ended, recording finalized
 *
 * Agent turns run one at a time; each `say` is an `agent_actions` row whose
 * result records how much the caller heard. Turn numbers are reserved in the
 * store before the turn runs, so a resumed call carries on from there.
 */
import type { Logger } from 'pino';
import type { HttpToolDefinition } from '../agents/sdk.ts';
import type { Agent, GatherOptions, GatherResult, Hook, Json, SayResult, TurnInput } from '../agents/types.ts';
import type { CallLeg, LegClose } from '../media/call-leg.ts';
import type { MediaClock } from '../media/pacer.ts';
import { MediaPipeline } from '../media/pipeline.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { SpeechToText, SttSession } from '../speech/stt.ts';
import { WITHDRAWAL_PHRASES } from '../speech/consent-grammar.ts';
import type { TextToSpeech } from '../speech/tts.ts';
import { ConsentCancelled } from '../consent/stage.ts';
import { currentDecision, policyFor, runConsentPhase, watchWithdrawal } from './consent-phase.ts';
import type { RecordingHandle, RecordingPort } from './recording-port.ts';
import { CallerWords } from './caller-words.ts';
import { Gatherer } from './gather.ts';
import { SilenceClock } from './silence.ts';
import { turnActions, type TurnHost } from './turn-actions.ts';
import * as facts from './call-facts.ts';

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
  /** Caller silence after the agent's turn that fires the agent's `onSilence` (default 8000 ms). */
  silenceMs?: number;
  /** Spoken consent and caller transcripts; null = DTMF-only consent, no caller transcript. */
  stt?: SpeechToText | null;
  recordings?: RecordingPort | null;
}

export interface CallRef {
  tenant: string;
  callId: string;
}

export class SessionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class CallSession {
  readonly pipeline: MediaPipeline;
  private turn = 0;
  private state: Record<string, Json> = {};
  private chain: Promise<void> = Promise.resolve();
  private phase: 'consent' | 'agent' = 'consent';
  private utterancePending = false;
  private ended = false;
  private closedReason: string | null = null;
  private transferring = false;
  private readonly silence: SilenceClock;
  private contentAllowed = false;
  private recording: RecordingHandle | null = null;
  private transcriber: SttSession | null = null;
  private readonly log: Logger;
  private onClosed: ((s: CallSession) => void) | null = null;
  private readonly gatherer: Gatherer;
  /** What the caller said: each utterance turn gets the words of its own utterance (bridge/caller-words.ts). */
  private readonly heard = new CallerWords();

  private constructor(
    private readonly deps: SessionDeps,
    readonly ref: CallRef,
    readonly leg: CallLeg,
    readonly legId: string,
    private agent: Agent,
    private readonly answeredAt: number,
    private readonly call: { name: string | null; from: string; to: string },
  ) {
    this.log = deps.logger.child({ call: ref.callId, leg: legId });
    this.pipeline = new MediaPipeline(leg, deps.clock);
    this.gatherer = new Gatherer(this.pipeline);
    this.silence = new SilenceClock(deps.silenceMs ?? 8000, (silentMs) => {
      if (!this.pipeline.callerSpeaking && !this.gatherer.active) this.enqueue('onSilence', { silentMs });
    });
  }

  /** The agent (version) running this call's turns. */
  get currentAgent(): Agent {
    return this.agent;
  }

  /** Records the media connection, then runs consent (unless decided) and starts or resumes the agent. */
  static async attach(deps: SessionDeps, ref: CallRef, leg: CallLeg, onClosed?: (s: CallSession) => void): Promise<CallSession> {
    const connected = await facts.mediaConnected(deps.store, ref, leg.description);
    if (!connected.ok) throw new SessionError(connected.code, connected.message);
    const res = connected.result;
    const call = deps.store.read(ref.tenant).calls.get(ref.callId);
    const agent = await deps.agents.select({ tenant: ref.tenant, callId: ref.callId, name: call?.agent ?? null, pinned: call?.agent_version ?? null }, null);
    deps.agents.retain(agent);
    const session = new CallSession(deps, ref, leg, res.leg_id, agent, call?.answered_at ?? call?.received_at ?? Date.now(), {
      name: call?.agent ?? null,
      from: call?.from_uri ?? '',
      to: call?.to_uri ?? '',
    });
    session.onClosed = onClosed ?? null;
    const saved = deps.store.read(ref.tenant).agent_state.get(ref.callId);
    if (saved) {
      session.turn = saved.turn;
      session.state = saved.state as Record<string, Json>;
    }
    session.wire();
    // The leg may have closed while this attach awaited the store and the agent registry: its 'closed' event is
    // gone, so close the session now (else it would run consent and start a recogniser nobody ever closes).
    const gone = leg.closedWith;
    if (gone) {
      await session.onLegClosed(gone);
      return session;
    }
    // The agent resumes only if it had started; a call cut off during consent starts it afresh.
    const resumed = saved !== undefined;
    session.log.info({ resumed, state: call?.state, turn: session.turn }, 'media attached');
    session.chain = session.chain.then(() => session.consentThenContent()).catch((err: unknown) => {
      if (err instanceof ConsentCancelled || session.closedReason !== null) {
        session.log.info({ reason: (err as Error).message }, 'consent stage stopped: media closed (consent stays pending for a resume)');
        return;
      }
      session.log.error({ err }, 'consent phase failed');
      void session.hangup('consent phase failed');
    });
    session.enqueue(resumed ? 'onResume' : 'onStart', {});
    return session;
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /** Ends the call (agent hangup, policy, operator). */
  async hangup(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await facts.endCall(this.deps.store, this.log, this.ref, reason, { caller: this.who().caller });
    this.leg.close(`hangup: ${reason}`);
  }

  /** The provider says the call ended (status callback, BYE): stop without recording a media loss. */
  providerEnded(reason: string): void {
    this.ended = true;
    this.leg.close(`call ended: ${reason}`);
  }

  /** Closes the media without ending the call (shutdown, superseded by a new stream). */
  detach(reason: string): void {
    this.leg.close(reason, false);
  }

  /** Resolves when the session's queued work (consent, turns, recording flush) is done. */
  settled(): Promise<void> {
    return this.chain;
  }

  private who(): { tenant: string; caller: string } {
    return { tenant: this.ref.tenant, caller: `agent:${this.agent.name}` };
  }

  private clockMs(): number {
    return Math.max(0, Date.now() - this.answeredAt);
  }

  private async consentThenContent(): Promise<void> {
    const { store } = this.deps;
    let decision = currentDecision(store, this.ref.tenant, this.ref.callId);
    if (!decision || decision.outcome === 'pending') {
      const d = await runConsentPhase(
        { store, tts: this.deps.tts, stt: this.deps.stt ?? null, logger: this.log },
        {
          tenant: this.ref.tenant,
          callId: this.ref.callId,
          answeredAt: this.answeredAt,
          pipeline: this.pipeline,
          outputRate: this.leg.description.outputRate,
          inputRate: this.leg.description.inputRate,
          cancelled: () => this.closedReason !== null,
        },
        decision?.pendingId ?? null,
      );
      this.log.info({ outcome: d.outcome, method: d.method }, 'consent decided');
      decision = { outcome: d.outcome, pendingId: null };
    }
    if (this.closedReason !== null) return;
    if (decision.outcome === 'granted') {
      this.contentAllowed = true;
      await this.startContent();
    } else if (decision.outcome !== 'withdrawn') {
      const policy = policyFor(store, this.ref.tenant, this.ref.callId);
      if (policy?.on_decline === 'transfer' && policy.transfer_target && this.leg.description.transfer === 'redirect') {
        await this.playText('Please hold while we connect you.');
        await this.transfer(policy.transfer_target);
        return;
      }
      if (policy?.on_decline === 'hangup' || policy?.on_decline === 'transfer') {
        const reason = policy.on_decline === 'hangup' ? `consent ${decision.outcome}` : `consent ${decision.outcome}: transfer to ${String(policy.transfer_target)} is not possible on this call`;
        await this.playText('Thank you for calling. Goodbye.');
        await this.hangup(reason);
        return;
      }
    }
    this.phase = 'agent';
  }

  private async startContent(): Promise<void> {
    const ref = { ...this.ref, answeredAt: this.answeredAt, sampleRate: this.leg.description.inputRate };
    const recording = (await this.deps.recordings?.begin(ref)) ?? null;
    if (this.closedReason !== null) {
      // The media closed while the recording was being set up: close what was opened, start nothing more
      // (a transcriber started now would never be closed, and its recogniser process would outlive the call).
      if (recording) this.chain = this.chain.then(() => recording.finish()).catch((err: unknown) => this.log.error({ err }, 'recording not finished'));
      return;
    }
    this.recording = recording;
    if (this.recording) this.pipeline.addTap(this.recording.tap);
    const stt = this.deps.stt;
    if (stt) {
      const offset = this.clockMs();
      // The recogniser takes the caller's frames at the leg's rate (wideband legs stay wideband).
      const session = stt.startSession({ sampleRate: this.leg.description.inputRate === 16000 ? 16000 : 8000, mode: 'transcript', phrases: WITHDRAWAL_PHRASES });
      this.transcriber = session;
      this.heard.attach();
      this.pipeline.addTap({
        name: 'transcriber',
        process: (frame, channel) => {
          if (channel !== 'caller') return;
          session.write(frame);
          this.heard.audio((frame.samples.length * 1000) / frame.sampleRate);
        },
      });
      session.on('result', (r) => {
        if (!r.isFinal) return;
        // Saying a withdrawal phrase stops the recording; the phrase itself is not transcribed (content stops there),
        // nor handed to the agent — it still tells a turn waiting on the recogniser how far it got.
        if (r.phrase) {
          this.heard.add({ ...r, text: '' });
          return void this.withdraw('speech', { words: r.text, at_ms: offset + r.startMs });
        }
        // Empty finals too: they tell the turn waiting for this utterance's words that the recogniser is past it.
        this.heard.add(r);
        if (r.text.trim() === '') return;
        this.appendTranscript('caller', offset + r.startMs, offset + r.endMs, r.text, r.confidence, stt.name);
      });
      session.on('error', (err) => this.log.warn({ err: err.message }, 'caller transcription failed'));
    }
  }

  private appendTranscript(channel: 'caller' | 'agent', startMs: number, endMs: number, text: string, confidence: number | null, provider: string): void {
    if (!this.contentAllowed) return;
    void this.deps.store
      .submit('transcript_appended', { call_id: this.ref.callId, channel, start_ms: Math.round(startMs), end_ms: Math.round(Math.max(startMs, endMs)), text, confidence, provider }, this.who())
      .then((r) => !r.outcome.ok && this.log.warn({ outcome: r.outcome }, 'transcript segment refused'))
      .catch(() => undefined);
  }

  private async withdraw(method: 'dtmf' | 'speech', evidence: Record<string, unknown>): Promise<void> {
    if (!this.contentAllowed) return;
    this.contentAllowed = false;
    const r = await this.deps.store.submit('consent_withdrawn', { call_id: this.ref.callId, method, evidence: { ...evidence, at_ms: evidence.at_ms ?? this.clockMs() } }, this.who());
    if (!r.outcome.ok) return void this.log.warn({ outcome: r.outcome }, 'withdrawal refused');
    await this.recording?.pause('consent withdrawn');
    this.transcriber?.close();
    this.heard.detach();
    this.log.info({ method }, 'consent withdrawn: recording and transcription stopped');
    await this.playText('Recording has been stopped.');
  }

  private async playText(text: string): Promise<void> {
    try {
      await this.pipeline.play(await this.deps.tts.synthesize(text, this.leg.description.outputRate));
    } catch (err) {
      this.log.warn({ err }, 'prompt not played');
    }
  }

  private wire(): void {
    this.pipeline.on('speechStart', () => this.silence.clear());
    this.pipeline.on('speechEnd', (info) => {
      this.heard.utteranceEnded();
      if (this.phase !== 'agent' || this.gatherer.active || this.utterancePending) return; // one queued answer is enough
      this.utterancePending = true;
      this.enqueue('onUtterance', { durationMs: info.durationMs });
    });
    this.pipeline.on('dtmf', ({ digit }) => {
      if (this.phase === 'agent' && !this.gatherer.active) this.enqueue('onDtmf', { digit });
    });
    watchWithdrawal(this.pipeline, (evidence) => void this.withdraw('dtmf', evidence));
    this.pipeline.on('bargeIn', (info) => this.log.info({ droppedMs: info.droppedMs, heard: info.interrupted.map((p) => p.heardMs) }, 'barge-in'));
    this.pipeline.on('tapError', (info) => this.log.error({ tap: info.tap, err: info.error }, 'media tap failed'));
    this.leg.on('warning', (w) => this.log.warn(w, 'media warning'));
    this.leg.on('closed', (info) => void this.onLegClosed(info));
  }

  private enqueue(hook: Hook, extra: { durationMs?: number; digit?: string; silentMs?: number }): void {
    this.silence.clear();
    this.chain = this.chain
      .then(async () => {
        if (this.closedReason !== null || this.ended) return;
        await this.switchAgentIfMigrating();
        const agent = this.agent;
        if (hook === 'onUtterance') this.utterancePending = false;
        if (!agent.has(hook)) return;
        const input: TurnInput = { hook, callId: this.ref.callId, turn: this.turn + 1, call: { from: this.call.from, to: this.call.to }, state: this.state };
        if (hook === 'onUtterance') input.utterance = { text: await this.heard.take(), durationMs: extra.durationMs ?? 0 };
        if (extra.digit !== undefined) input.digit = extra.digit;
        if (extra.silentMs !== undefined) input.silentMs = extra.silentMs;
        const started = await this.deps.store.submit(
          'agent_turn_started',
          { call_id: this.ref.callId, agent: agent.name, version: agent.version, turn: input.turn, kind: hook },
          this.who(),
        );
        if (!started.outcome.ok) return void this.log.warn({ outcome: started.outcome, hook }, 'agent turn not started');
        this.turn = input.turn;
        try {
          const out = await agent.runTurn(input, turnActions(this.turnHost(), agent, input.turn, hook));
          this.state = out.state;
        } catch (err) {
          this.log.error({ err, hook, turn: input.turn, agent: agent.name, version: agent.version }, 'agent turn failed');
        }
        if (this.ended && this.closedReason !== null) return;
        const saved = await this.deps.store.submit(
          'agent_state_saved',
          { call_id: this.ref.callId, agent: agent.name, version: agent.version, turn: input.turn, state: this.state },
          this.who(),
        );
        if (!saved.outcome.ok && saved.outcome.error.code !== 'call_not_found') this.log.warn({ outcome: saved.outcome }, 'agent state not saved');
        if (this.closedReason === null && !this.ended && this.phase === 'agent' && this.agent.has('onSilence')) this.silence.arm();
      })
      .catch((err: unknown) => {
        // The store closed under a running turn (shutdown): the turn's facts so far are committed.
        this.log.warn({ err: (err as Error).message, hook }, 'agent turn not recorded');
      });
  }

  /** At a turn boundary: move to a newer version deployed with `migrate` (state comes along from the store). */
  private async switchAgentIfMigrating(): Promise<void> {
    const next = await this.deps.agents.select({ tenant: this.ref.tenant, callId: this.ref.callId, name: this.call.name, pinned: this.agent.version }, this.agent);
    if (next === this.agent) return;
    this.log.info({ from: this.agent.version, to: next.version, agent: next.name }, 'call migrated to a new agent version at a turn boundary');
    this.deps.agents.retain(next);
    this.deps.agents.release(this.agent);
    this.agent = next;
  }

  private turnHost(): TurnHost {
    return {
      store: this.deps.store,
      callId: this.ref.callId,
      log: this.log,
      who: () => this.who(),
      outputRate: this.leg.description.outputRate,
      playSamples: async (samples) => {
        const played = await this.pipeline.play(samples);
        return { durationMs: played.durationMs, heardMs: played.heardMs, interrupted: played.interrupted };
      },
      synthesize: (text) => this.deps.tts.synthesize(text, this.leg.description.outputRate),
      clockMs: () => this.clockMs(),
      agentTranscript: (startMs, heardMs, text) => this.appendTranscript('agent', startMs, startMs + heardMs, text, null, this.deps.tts.name),
      hangup: (reason) => this.hangup(reason),
      transfer: this.leg.description.transfer === 'redirect' ? (target) => this.transfer(target) : undefined,
      configTools: this.deps.configTools?.get(this.agent.name),
      gather: (opts: GatherOptions): Promise<GatherResult> => this.gather(opts),
    };
  }

  /**
   * Blind transfer by redirect: the call becomes `transferring` (target in the
   * store), then the media closes; the provider asks the webhook again and is
   * told to dial the target. The agent's part of the call ends here.
   */
  private async transfer(target: string): Promise<void> {
    const r = await facts.transferStarted(this.deps.store, this.ref, target, { caller: this.who().caller });
    if (!r.ok) throw new SessionError(r.code, r.message);
    this.transferring = true;
    this.log.info({ target }, 'transferring the caller');
    // What the agent said before has played out (say resolves at playout): hand the call over.
    this.leg.close(`transfer to ${target}`);
  }

  private async gather(opts: GatherOptions): Promise<GatherResult> {
    if (opts.prompt) await this.playText(opts.prompt);
    const result = await this.gatherer.next(opts);
    if (result.kind === 'speech') return { ...result, text: await this.heard.take() };
    return result;
  }

  private async onLegClosed(info: LegClose): Promise<void> {
    if (this.closedReason !== null) return;
    this.closedReason = info.reason;
    this.gatherer.close();
    this.silence.clear();
    this.deps.agents.release(this.agent);
    this.pipeline.close();
    this.transcriber?.close();
    this.heard.detach();
    this.onClosed?.(this);
    this.log.info({ reason: info.reason, graceful: info.graceful, ended: this.ended }, 'media closed');
    if (!this.ended && !this.transferring) {
      const r = await facts.mediaLost(this.deps.store, this.ref, this.legId, info.reason).catch((err: unknown) => {
        this.log.error({ err }, 'call_media_lost not recorded');
        return null;
      });
      if (r && !r.ok && r.code !== 'leg_disconnected') this.log.warn({ outcome: r }, 'call_media_lost refused');
    }
    const rec = this.recording;
    // The segment is flushed; the recording is finalized by the recording service once the call row is `ended`.
    if (rec) this.chain = this.chain.then(() => rec.finish()).catch((err: unknown) => this.log.error({ err }, 'recording not finished'));
  }
}
