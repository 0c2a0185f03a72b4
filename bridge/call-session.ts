/**
 * One live media connection of a call, bridged to consent, recording, transcription and its agent: a thin
 * coordinator. It creates the call's managers around one shared context, routes the leg's events to them, and
 * closes them once, in order, when the media goes. Provider-neutral: it sees a `CallLeg`, the store and
 * interfaces, never a wire format.
 *
 *   CallSession ── CallContext (call-context.ts: ref, leg, log, pipeline, work queue, agent, lifecycle flags)
 *     ├─ ConsentManager (consent-manager.ts)  consent phase, decline policy, withdrawal (*9, "stop recording")
 *     ├─ ContentManager (content-manager.ts)  recording + transcripts (the transcriber tap, CallerWords), redaction,
 *     │                                       the PCI pause (pci-pause.ts: ctx.secure, the API, the console)
 *     ├─ TurnManager    (turn-manager.ts)     agent turns, gather, silence, actions, transfer
 *     ├─ TurnTaking     (turn-taking.ts)      barge-in / backchannel records, the adaptive end of turn
 *     └─ CallSupervision (supervisor.ts)      a supervisor's leg: listen, whisper (onWhisper), take over / hand back
 *
 * The call, as this connection sees it:
 *
 *   attach ─► call_media_connected (resumes a `resuming` call)
 *     ─► (an outbound call placed with `amd`) answering-machine detection first (amd-stage.ts): human ─► as below
 *        with onAnswered before onStart; machine ─► onAnswered after the beep (the voicemail); unknown ─► its default
 *     ─► consenting: consent phase, unless decided ──► declined/no_response + policy hangup ─► ended
 *          │                                      └──► policy transfer ─► transferring
 *          ▼ granted: recording + transcripts │ continue-unrecorded │ withdrawn (resumed): unrecorded
 *     ─► agent: onStart | onResume ─► turns (speech end, DTMF, silence) ─► …
 *          ├ *9, or the caller saying "stop recording" ─► consent_withdrawn, recording paused (turns go on)
 *          ├ agent transfer ─► transferring ─► media closes (not a loss)
 *          ├ warm transfer ─► the call's legs mixed (legs.ts, transfer-warm.ts); after a restart mid-bridge the
 *          │  matrix row brings the human back in (TurnManager.restoreBridge) and the agent stays out
 *          └ agent hangup / operator / policy ─► call_ended ─► media closes
 *   leg closed (any state) ─► close cascade, once: turns ─► turn-taking ─► pipeline ─► content (transcriber) ─► consent
 *     ─► call_media_lost unless ended or transferring (the call waits in `resuming`)
 *     ─► recording segment flushed (finalized if the call ended)
 *
 * A call whose agent is paused gets the agent's fallback instead (bridge/fallback.ts): at attach (a message at
 * once, or another agent from the start), or at its next turn boundary.
 *
 * Everything that takes time (the consent phase, turns, recording flushes) runs on the context's work queue, one
 * piece at a time; `settled()` waits for it.
 */
import { openOn, prewarmContentKey } from '../recording/content-seal.ts';
import type { Agent, Json } from '../agents/types.ts';
import type { CallLeg, LegClose } from '../media/call-leg.ts';
import type { MediaPipeline } from '../media/pipeline.ts';
import { ConsentCancelled } from '../consent/stage.ts';
import { CallContext, SessionError, type CallInfo, type CallRef, type SessionDeps } from './call-context.ts';
import { ConsentManager } from './consent-manager.ts';
import { ContentManager } from './content-manager.ts';
import { TurnManager } from './turn-manager.ts';
import * as facts from './call-facts.ts';
import type { Dialled } from './transfer-dial.ts';
import { pauseFallback } from './fallback.ts';
import { pendingAmd, runAmdStage, type AmdHost } from './amd-stage.ts';
import { recordMachineConsent } from '../consent/machine.ts';
import { TurnTaking } from './turn-taking.ts';
import { CallSupervision } from './supervisor.ts';

export { SessionError, type AgentDirectory, type CallRef, type SessionDeps } from './call-context.ts';

export class CallSession {
  readonly pipeline: MediaPipeline;
  private readonly ctx: CallContext;
  private readonly content: ContentManager;
  private readonly consent: ConsentManager;
  private readonly turns: TurnManager;
  /** Barge-in records, backchannels, the adaptive end of turn (bridge/turn-taking.ts). */
  private readonly taking: TurnTaking;
  /** A supervisor on the call (bridge/supervisor.ts; connected by bridge/supervisor-desk.ts). */
  readonly supervision: CallSupervision;
  private onClosed: ((s: CallSession) => void) | null = null;

  private constructor(
    private readonly deps: SessionDeps,
    readonly ref: CallRef,
    readonly leg: CallLeg,
    readonly legId: string,
    agent: Agent,
    answeredAt: number,
    call: CallInfo,
  ) {
    this.ctx = new CallContext(deps, ref, leg, legId, agent, answeredAt, call);
    this.pipeline = this.ctx.pipeline;
    // The content manager hands the caller's spoken commands (withdrawal) to consent; consent pauses content.
    this.content = new ContentManager(this.ctx, () => this.consent);
    this.turns = new TurnManager(this.ctx, this.content, (reason) => this.hangup(reason));
    this.taking = new TurnTaking(this.ctx);
    this.supervision = new CallSupervision(this.ctx, this.turns);
    this.turns.supervised = () => this.supervision.current !== null;
    this.taking.peekWords = () => this.content.peekWords();
    this.ctx.agentChanged = (next) => this.taking.agentChanged(next);
    this.consent = new ConsentManager(this.ctx, this.content, { canTransfer: () => this.turns.canHandOver, transfer: (target) => this.turns.handOver(target), hangup: (reason) => this.hangup(reason) });
  }

  /**
   * The human bridged into this call (`humanCallId`) hands it to `target` (a SIP REFER from it, accepted): null when
   * this call is not bridged to that human now; else the outcome once `target` answered (bridged) or failed.
   */
  referOnward(humanCallId: string, target: string): Promise<Dialled> | null {
    if (!this.turns.transfers.isBridgedTo(humanCallId)) return null;
    return this.turns.transfers.referOnward(humanCallId, target);
  }

  /** The agent (version) running this call's turns. */
  get currentAgent(): Agent {
    return this.ctx.agent;
  }

  /** Records the media connection, then runs consent (unless decided) and starts or resumes the agent. */
  static async attach(deps: SessionDeps, ref: CallRef, leg: CallLeg, onClosed?: (s: CallSession) => void): Promise<CallSession> {
    const connected = await facts.mediaConnected(deps.store, ref, leg.description);
    if (!connected.ok) throw new SessionError(connected.code, connected.message);
    const res = connected.result;
    // The call's content key is made (a key file written and synced) now, beside the agent's start, not inside
    // the first turn that says something (that turn's sealing joins this same pending key).
    void prewarmContentKey(deps.store, ref.tenant, ref.callId);
    const call = deps.store.read(ref.tenant).calls.get(ref.callId);
    // A paused agent's worker is not started for a call that will not run it.
    const fallback = pauseFallback(deps.store, ref, call?.agent ?? null);
    const name = fallback ? (fallback.kind === 'agent' ? fallback.agent : null) : (call?.agent ?? null);
    const agent = await deps.agents.select({ tenant: ref.tenant, callId: ref.callId, name, pinned: fallback ? null : (call?.agent_version ?? null) }, null);
    deps.agents.retain(agent);
    const session = new CallSession(deps, ref, leg, res.leg_id, agent, call?.answered_at ?? call?.received_at ?? Date.now(), {
      name: call?.agent ?? null,
      from: call?.from_uri ?? '',
      to: call?.to_uri ?? '',
    });
    session.onClosed = onClosed ?? null;
    if (fallback?.kind === 'agent') session.turns.routeTo(fallback.agent);
    if (fallback?.kind === 'transfer') session.turns.useStandIn();
    const saved = deps.store.read(ref.tenant).agent_state.get(ref.callId);
    // the saved state is sealed with the call's key (recording/content-seal.ts)
    if (saved) session.turns.restore({ turn: saved.turn, state: ((await openOn(deps.store, ref.tenant, ref.callId, 'state', saved.state)) ?? {}) as Record<string, Json> });
    // A restart mid-bridge: the human's leg is mixed in again from the matrix row; the agent stays out of it.
    const bridged = session.turns.restoreBridge();
    // A supervisor's media does not survive a restart: its supervision, if the rows still call it active, ends now.
    await session.supervision.settleStale().catch((err: unknown) => session.ctx.log.warn({ err }, 'stale supervision not ended'));
    session.wire();
    // The leg may have closed while this attach awaited the store and the agent registry: its 'closed' event is
    // gone, so close the session now (else it would run consent and start a recogniser nobody ever closes).
    const gone = leg.closedWith;
    if (gone) {
      await session.close(gone);
      return session;
    }
    // The agent resumes only if it had started; a call cut off during consent starts it afresh.
    const resumed = saved !== undefined;
    session.ctx.log.info({ resumed, state: call?.state, turn: session.turns.current, fallback }, 'media attached');
    if (fallback?.kind === 'message') {
      // Nothing is recorded and no agent runs: the caller hears the message, no consent phase needed.
      session.ctx.work.push(() => session.turns.fallBack(fallback), (err: unknown) => session.ctx.log.warn({ err }, 'pause fallback failed'));
      return session;
    }
    // An outbound call that asked for answering-machine detection: the detector decides first (bridge/amd-stage.ts).
    const amd = resumed ? null : pendingAmd(deps.store, ref);
    if (amd) {
      session.ctx.work.push(
        () => runAmdStage(session.amdHost(), amd),
        (err: unknown) => {
          session.ctx.log.error({ err }, 'answering-machine detection failed');
          void session.hangup('amd failed');
        },
      );
      return session;
    }
    session.ctx.work.push(
      async () => {
        if (await session.consent.run()) session.turns.openTurns();
      },
      (err: unknown) => {
        if (err instanceof ConsentCancelled || session.ctx.closed) {
          session.ctx.log.info({ reason: (err as Error).message }, 'consent stage stopped: media closed (consent stays pending for a resume)');
          return;
        }
        session.ctx.log.error({ err }, 'consent phase failed');
        void session.hangup('consent phase failed');
      },
    );
    if (!bridged) session.turns.enqueue(resumed ? 'onResume' : 'onStart', {});
    return session;
  }

  private amdHost(): AmdHost {
    return {
      ctx: this.ctx,
      runConsent: () => this.consent.run(),
      recordMachineConsent: (evidence) => recordMachineConsent(this.deps.store, this.ref.tenant, this.ref.callId, evidence),
      openTurns: () => this.turns.openTurns(),
      enqueueAnswered: (answered) => this.turns.enqueue('onAnswered', { answered }),
      enqueueStart: () => this.turns.enqueue('onStart', {}),
      hangup: (reason) => this.hangup(reason),
    };
  }

  /** The agent name the call routes by (the fallback agent's once its own was paused). */
  get agentName(): string | null {
    return this.turns.agentName;
  }

  /** Its agent was paused: the fallback after the running turn (bridge/fallback.ts). */
  pauseCheck(): void {
    if (!this.ctx.closed && !this.ctx.ended) this.turns.checkPause();
  }

  get isClosed(): boolean {
    return this.ctx.closed;
  }

  /** Ends the call (agent hangup, policy, operator). */
  async hangup(reason: string): Promise<void> {
    if (this.ctx.ended) return;
    this.ctx.markEnded();
    await facts.endCall(this.deps.store, this.ctx.log, this.ref, reason, { caller: this.who().caller });
    this.leg.close(`hangup: ${reason}`);
  }

  /** The provider says the call ended (status callback, BYE): stop without recording a media loss. */
  providerEnded(reason: string): void {
    this.ctx.markEnded();
    this.leg.close(`call ended: ${reason}`);
  }

  /** Closes the media without ending the call (shutdown, superseded by a new stream). */
  detach(reason: string): void {
    this.leg.close(reason, false);
  }

  /** Resolves when the session's queued work (consent, turns, recording flush) is done. */
  settled(): Promise<void> {
    return this.ctx.work.settled();
  }

  private who(): { tenant: string; caller: string } {
    return this.ctx.who();
  }

  /** Routes the media's events to the managers (content first: it marks where an utterance ended). */
  private wire(): void {
    const { pipeline, log } = this.ctx;
    // Content first: it marks where the utterance ended (before the end-of-turn gate may hold the turn).
    pipeline.on('speechEnd', () => this.content.utteranceEnded());
    this.taking.watch(
      (durationMs, backchannel) => this.turns.utteranceEnded(durationMs, backchannel ? (text) => this.taking.isAcknowledgement(text) : null),
      () => this.turns.speechStarted(),
    );
    pipeline.on('dtmf', ({ digit }) => this.turns.dtmf(digit));
    // The recogniser's text as it comes (in memory): stop words over the agent, interim text to an agent that asked.
    this.content.onText = (said) => {
      this.taking.heard(said);
      if (!said.final) this.turns.interim(said.text, this.taking.interimWanted);
    };
    this.consent.watch();
    this.content.pci.watch(); // PCI pauses made through the API or the console (bridge/pci-pause.ts)
    pipeline.on('tapError', (info) => log.error({ tap: info.tap, err: info.error }, 'media tap failed'));
    this.leg.on('warning', (w) => log.warn(w, 'media warning'));
    this.leg.on('closed', (info) => void this.close(info));
  }

  /** The media is gone: the close cascade, once (a second close — the leg's event after attach saw it — is a no-op). */
  private async close(info: LegClose): Promise<void> {
    if (!this.ctx.markClosed(info.reason)) return;
    this.supervision.close();
    this.turns.close();
    this.taking.close();
    this.pipeline.close();
    this.content.close();
    this.consent.close();
    this.onClosed?.(this);
    this.ctx.log.info({ reason: info.reason, graceful: info.graceful, ended: this.ctx.ended }, 'media closed');
    this.ctx.span.setAttributes({ 'switchboard.ended': this.ctx.ended, 'switchboard.graceful': info.graceful });
    this.ctx.span.end();
    if (!this.ctx.ended && !this.ctx.transferring) await this.mediaLost(info);
    this.content.finish();
  }

  /** Records that this connection's media was lost: the call waits in `resuming` for the provider to reconnect. */
  private async mediaLost(info: LegClose): Promise<void> {
    const r = await facts.mediaLost(this.deps.store, this.ref, this.legId, info.reason).catch((err: unknown) => {
      this.ctx.log.error({ err }, 'call_media_lost not recorded');
      return null;
    });
    if (r && !r.ok && r.code !== 'leg_disconnected') this.ctx.log.warn({ outcome: r }, 'call_media_lost refused');
  }
}
