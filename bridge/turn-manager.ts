/**
 * The agent's turns on one call: one at a time, on the call's work queue (after the consent phase).
 *
 *   onStart | onResume (at attach) ─┐
 *   speech end (once consent is done; one queued answer is enough) ─► onUtterance {the utterance's words, final: true}
 *   interim text (agents with `turnTaking.utterance.interim`; while no answer is queued; the latest one if several
 *     came while a turn ran) ─► onUtterance {text, final: false} — a turn like the others, never a transcript row
 *   DTMF (once consent is done, no gather waiting) ─► onDtmf         ├─► turn: agent_turn_started ─► runTurn with
 *   silence clock ran out after a turn ─► onSilence ─────────────────┘   the turn's actions ─► agent_state_saved
 *                                                                          ─► silence clock armed (if onSilence)
 *   gather (an action) ─► the next digits / utterance go to the waiting turn instead of starting one
 *   blind transfer (an action, consent's decline policy, a paused agent's fallback) ─► handOver: redirect
 *     (call_transfer_started ─► the media closes), REFER, or dialled and bridged by the gateway (transfer-dial.ts)
 *   warm transfer (an action) ─► bridge/call-transfers.ts, transfer-warm.ts on the call's legs (legs.ts): turns held while
 *     it runs; bridged ─► turns stay closed (the agent has left), the human hanging up ends the call;
 *     failed ─► turns open again and onTransferFailed {reason} runs next
 *   a restart in a bridge (the call's last matrix row `warm:bridged`): `restoreBridge` waits for the human's resumed
 *     leg (bridge/human-legs.ts) and mixes it in again; turns stay closed
 *   a supervisor (bridge/supervisor.ts): whisper ─► onWhisper {text}; take-over ─► turns closed, the agent's audio
 *     stopped, the caller's words kept; hand-back ─► turns open again, onResume {reason: handback, transcript}
 *
 * Each `say` is an `agent_actions` row whose result records how much the caller heard (turn-actions.ts). Turn
 * numbers are reserved in the store before the turn runs, so a resumed call carries on from there. At a turn
 * boundary the call moves to a version deployed with `migrate`. While its agent is paused (bridge/fallback.ts) the
 * call gets the fallback at its next turn boundary instead of a turn. A tool that needs approval holds its turn
 * until the decision (bridge/tool-gate.ts); closing the media cancels the wait. An utterance spoken briefly over the
 * agent (a backchannel, bridge/turn-taking.ts) starts no agent turn when its words are only acknowledgements. `pauseRecording` / `resumeRecording`
 * (ctx.secure) go to the content manager's PCI pause (bridge/pci-pause.ts). Owns: the turn number, the agent's
 * state, whether turns are open, the pending utterance, the silence clock, the gatherer and the agent name it
 * routes by.
 */
import type { AnsweredInfo, GatherOptions, GatherResult, Hook, Json, TurnInput } from '../agents/types.ts';
import { SessionError, type CallContext } from './call-context.ts';
import type { ContentManager } from './content-manager.ts';
import { Gatherer } from './gather.ts';
import { SilenceClock } from './silence.ts';
import { ActionError, turnActions, type TurnHost, type TurnSpans } from './turn-actions.ts';
import { agent_state_saved, agent_turn_started } from '../schema/reducers.ts';
import * as facts from './call-facts.ts';
import type { TraceSpan } from '../telemetry/tracing.ts';
import { pauseFallback, type Fallback } from './fallback.ts';
import { CallTransfers } from './call-transfers.ts';
import type { ResumeInfo, TransferFailure } from '../agents/types.ts';

export interface TurnExtra {
  durationMs?: number;
  digit?: string;
  silentMs?: number;
  answered?: AnsweredInfo;
  /** The utterance was a backchannel: true from its words = no agent turn (bridge/turn-taking.ts). */
  backchannel?: (text: string | null) => boolean;
  transferFailed?: { reason: TransferFailure; target: string };
  whisper?: string;
  resumed?: ResumeInfo;
  /** The turn is for the recogniser's interim text (taken from `interimText` when it runs). */
  interim?: boolean;
  interimText?: string;
}

export class TurnManager {
  private turn = 0;
  private state: Record<string, Json> = {};
  /** Consent is done: the caller's speech and keys start turns. */
  private open = false;
  private utterancePending = false;
  /** The pending utterance was a backchannel (spoken over the agent, short): its words decide if it is a turn. */
  private backchannel: ((text: string | null) => boolean) | null = null;
  /** The latest interim text not yet given to the agent (null: no interim turn queued). */
  private interimText: string | null = null;
  private readonly silence: SilenceClock;
  private readonly gatherer: Gatherer;
  /** The agent name the call routes by: the number's, or the fallback agent's once its own was paused. */
  private routeName: string | null;
  /** The call started on a stand-in while its agent was paused (its fallback waits for the consent phase). */
  private standIn = false;
  /** Aborted when the media closes: a tool waiting for approval is cancelled. */
  private readonly closing = new AbortController();
  /** Transfers through the gateway's media and the bridge they leave (bridge/call-transfers.ts). */
  readonly transfers: CallTransfers;
  /** A supervisor has the call (bridge/supervisor.ts): whether turns were open, and where the caller's words go. */
  private takenOver: { wasOpen: boolean; said: (text: string) => void } | null = null;
  /** True while a supervisor is on the call (a warm transfer is refused meanwhile); set by the session. */
  supervised: () => boolean = () => false;

  constructor(
    private readonly ctx: CallContext,
    private readonly content: ContentManager,
    private readonly hangup: (reason: string) => Promise<void>,
  ) {
    this.gatherer = new Gatherer(ctx.pipeline);
    this.transfers = new CallTransfers(ctx, this.closing.signal, hangup);
    this.routeName = ctx.call.name;
    this.silence = new SilenceClock(
      ctx.deps.silenceMs ?? 8000,
      (silentMs) => {
        if (!ctx.pipeline.callerSpeaking && !this.gatherer.active) this.enqueue('onSilence', { silentMs });
      },
      (err) => ctx.log.error({ err }, 'silence clock failed'),
    );
  }

  private get deps(): CallContext['deps'] {
    return this.ctx.deps;
  }

  private get ref(): CallContext['ref'] {
    return this.ctx.ref;
  }

  private who(): { tenant: string; caller: string } {
    return this.ctx.who();
  }

  /** The turn last run (a resumed call carries on from its saved turn). */
  get current(): number {
    return this.turn;
  }

  /** A resumed call: the agent's saved turn and state. */
  restore(saved: { turn: number; state: unknown }): void {
    this.turn = saved.turn;
    this.state = saved.state as Record<string, Json>;
  }

  /** The agent name the call routes by now. */
  get agentName(): string | null {
    return this.routeName;
  }

  /** A new call to a paused agent starts on its fallback agent. */
  routeTo(name: string): void {
    this.routeName = name;
  }

  /** A new call whose fallback waits for the consent phase runs a stand-in until then (its agent's worker is stopped). */
  useStandIn(): void {
    this.standIn = true;
  }

  /** Its agent was paused: once the running turn is over, the call gets the fallback (unless it keeps its agent). */
  checkPause(): void {
    this.ctx.work.push(
      async () => {
        if (!this.ctx.closed && !this.ctx.ended) await this.fallBackIfPaused();
      },
      (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, 'pause fallback failed'),
    );
  }

  /** Consent is done (granted, or the policy lets the call continue): speech and keys start turns. */
  openTurns(): void {
    if (this.takenOver) this.takenOver.wasOpen = !this.transfers.agentOut;
    else if (!this.transfers.agentOut) this.open = true;
  }

  /** A supervisor takes the call over: no agent turns, the agent's audio stops; the caller's words go to `said`. */
  takeOver(said: (text: string) => void): void {
    if (this.takenOver) return;
    this.takenOver = { wasOpen: this.open, said };
    this.open = false;
    this.silence.clear();
    this.ctx.pipeline.interrupt();
  }

  /**
   * The supervisor hands the call back: turns open again (as they were) and `onResume` gets what was said — `take()`
   * runs on the work queue, after the caller's words still being kept.
   */
  handBack(take: () => ResumeInfo['transcript']): void {
    const t = this.takenOver;
    if (!t) return;
    this.takenOver = null;
    this.open = t.wasOpen;
    this.ctx.work.push(
      async () => {
        if (!this.ctx.closed && !this.ctx.ended) this.enqueue('onResume', { resumed: { reason: 'handback', transcript: take() } });
      },
      (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, 'hand-back not run'),
    );
  }

  /** The supervisor whispered `text` (after speech-to-text): the agent's `onWhisper` turn. */
  whisper(text: string): void {
    if (!this.ctx.closed && !this.ctx.ended && !this.takenOver) this.enqueue('onWhisper', { whisper: text });
  }

  /** At attach: a restart mid-bridge brings the human back in (bridge/call-transfers.ts); true when bridged (turns stay closed). */
  restoreBridge(): boolean {
    const bridged = this.transfers.restore();
    if (bridged) this.open = false;
    return bridged;
  }

  speechStarted(): void {
    this.silence.clear();
  }

  /** An utterance ended; `backchannel` (for one spoken briefly over the agent) tells from its words if it starts no turn. */
  utteranceEnded(durationMs: number, backchannel: ((text: string | null) => boolean) | null = null): void {
    if (this.takenOver) return this.keepCallerWords(this.takenOver.said);
    if (this.utterancePending && backchannel === null) this.backchannel = null; // real words joined the queued answer
    if (!this.open || this.gatherer.active || this.utterancePending) return; // one queued answer is enough
    this.utterancePending = true;
    this.backchannel = backchannel;
    this.enqueue('onUtterance', { durationMs });
  }

  /** Taken over: the utterance's words are kept for the hand-back (no turn). */
  private keepCallerWords(said: (text: string) => void): void {
    this.ctx.work.push(
      async () => {
        const text = await this.content.takeWords();
        if (text) said(text);
      },
      (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, "the caller's words not kept"),
    );
  }

  /**
   * The recogniser's interim text, for an agent that asked for it (`wanted`): one interim turn queued at a time, given
   * the latest text when it runs; none once the utterance's own turn is queued or while a gather waits.
   */
  interim(text: string, wanted: boolean): void {
    if (!wanted || !this.open || this.gatherer.active || this.utterancePending) return;
    const queued = this.interimText !== null;
    this.interimText = text;
    if (!queued) this.enqueue('onUtterance', { interim: true });
  }

  dtmf(digit: string): void {
    if (this.open && !this.gatherer.active) this.enqueue('onDtmf', { digit });
  }

  enqueue(hook: Hook, extra: TurnExtra): void {
    this.silence.clear();
    const queuedAt = Date.now(); // the turn's span starts here: an utterance's starts when its end was detected
    this.ctx.work.push(
      () => this.runTurn(hook, extra, queuedAt),
      (err: unknown) => {
        // The store closed under a running turn (shutdown): the turn's facts so far are committed.
        this.ctx.log.warn({ err: (err as Error).message, hook }, 'agent turn not recorded');
      },
    );
  }

  /**
   * Blind transfer by redirect: the call becomes `transferring` (target in the
   * store), then the media closes; the provider asks the webhook again and is
   * told to dial the target. The agent's part of the call ends here.
   */
  async transfer(target: string): Promise<void> {
    const r = await facts.transferStarted(this.deps.store, this.ref, target, { caller: this.who().caller });
    if (!r.ok) throw new SessionError(r.code, r.message);
    this.ctx.markTransferring();
    this.ctx.log.info({ target }, 'transferring the caller');
    // What the agent said before has played out (say resolves at playout): hand the call over.
    this.ctx.leg.close(`transfer to ${target}`);
  }

  /**
   * Blind transfer the leg carries out itself (SIP REFER): the far end transfers the caller; once it reports
   * success the call is `transferring` (target in the store) and ends `<provider>:transferred`. A failure leaves the
   * caller with the agent and fails the action with the far end's reason.
   */
  private async transferByLeg(target: string): Promise<void> {
    const leg = this.ctx.leg;
    try {
      await leg.blindTransfer!(target);
    } catch (err) {
      throw new ActionError(`transfer to ${target} failed: ${(err as Error).message}`);
    }
    const r = await facts.transferStarted(this.deps.store, this.ref, target, { caller: this.who().caller });
    if (!r.ok) this.ctx.log.warn({ outcome: r }, 'call_transfer_started refused after the far end transferred');
    this.ctx.markTransferring();
    this.ctx.log.info({ target }, 'the far end transferred the caller');
    await this.hangup(`${leg.description.provider}:transferred`);
  }

  /** Whether `handOver` can transfer this call (its leg redirects or REFERs, or the gateway dials and bridges). */
  get canHandOver(): boolean {
    const how = this.ctx.leg.description.transfer;
    return how === 'redirect' || how === 'refer' || this.transfers.available;
  }

  /**
   * A blind transfer (the agent's, consent's decline policy, a paused agent's fallback): by redirect or REFER where the
   * leg does it, else dialled and bridged by the gateway (bridge/transfer-dial.ts). Throws when it fails (the caller
   * is back with the agent).
   */
  async handOver(target: string): Promise<void> {
    const how = this.ctx.leg.description.transfer;
    if (how === 'redirect') return this.transfer(target);
    if (how === 'refer') return this.transferByLeg(target);
    const wasOpen = this.open;
    this.open = false;
    const out = await this.transfers.blind(target);
    if (out.ok) return;
    this.open = wasOpen;
    throw new ActionError(`transfer to ${target} failed (${out.reason}): ${out.detail}`);
  }

  /**
   * Warm transfer (bridge/transfer-warm.ts): the caller's speech and keys start no turns meanwhile; bridged, they
   * never do again (the agent has left); failed, they do, and `onTransferFailed` runs next.
   */
  private async warmTransfer(target: string, opts: { summary?: string; timeoutMs?: number }): Promise<{ ok: true } | { ok: false; reason: TransferFailure }> {
    if (this.supervised()) throw new ActionError('a warm transfer cannot start while a supervisor is on the call');
    const wasOpen = this.open;
    this.open = false;
    const out = await this.transfers.warm(target, opts);
    if (out.ok) return { ok: true };
    this.open = wasOpen;
    if (!this.ctx.closed) this.enqueue('onTransferFailed', { transferFailed: { reason: out.reason, target } });
    return { ok: false, reason: out.reason };
  }

  /** The media is gone: a waiting gather times out, the silence clock stops, the agent version is released. */
  close(): void {
    this.closing.abort();
    this.transfers.close();
    this.gatherer.close();
    this.silence.clear();
    this.deps.agents.release(this.ctx.agent);
  }

  private async runTurn(hook: Hook, extra: TurnExtra, queuedAt: number): Promise<void> {
    const { ctx } = this;
    if (ctx.closed || ctx.ended) return;
    if (this.takenOver) {
      if (hook === 'onUtterance') this.utterancePending = false;
      return void ctx.log.info({ hook }, 'taken over by a supervisor: no agent turn');
    }
    if (await this.fallBackIfPaused()) return;
    await this.switchAgentIfMigrating();
    const agent = ctx.agent;
    if (extra.interim) {
      const text = this.interimText;
      this.interimText = null;
      // Stale once the utterance's own turn is queued (its final words come next), or without a hook.
      if (text === null || this.utterancePending || !agent.has(hook)) return;
      extra = { ...extra, interimText: text };
    } else if (hook === 'onUtterance') {
      this.utterancePending = false;
      if (this.backchannel) extra = { ...extra, backchannel: this.backchannel };
      this.backchannel = null;
    }
    if (!agent.has(hook)) return;
    const input: TurnInput = { hook, callId: this.ref.callId, turn: this.turn + 1, call: { from: ctx.call.from, to: ctx.call.to }, state: this.state };
    const span = ctx.span.child('turn', { 'switchboard.hook': hook, 'switchboard.turn': input.turn, 'switchboard.agent': agent.name, 'switchboard.agent_version': agent.version }, queuedAt);
    try {
      await this.runTraced(hook, extra, input, span, queuedAt);
    } finally {
      span.end();
    }
  }

  /** The turn proper, under its span: the words (stt), the agent's hook (agent), the state saved. */
  private async runTraced(hook: Hook, extra: TurnExtra, input: TurnInput, span: TraceSpan, queuedAt: number): Promise<void> {
    const { ctx } = this;
    const agent = ctx.agent;
    if (extra.interimText !== undefined) {
      span.setAttributes({ 'switchboard.interim': true });
      input.utterance = { text: this.content.agentView(extra.interimText), durationMs: 0, final: false };
    } else if (hook === 'onUtterance') {
      const stt = span.child('stt');
      const text = await this.content.takeWords();
      stt.setAttributes({ 'switchboard.recognised': text !== null });
      stt.end();
      if (extra.backchannel?.(text)) {
        span.setAttributes({ 'switchboard.backchannel': true });
        return void ctx.log.info('backchannel: no agent turn');
      }
      input.utterance = { text, durationMs: extra.durationMs ?? 0, final: true };
    }
    if (extra.digit !== undefined) input.digit = extra.digit;
    if (extra.silentMs !== undefined) input.silentMs = extra.silentMs;
    if (extra.answered !== undefined) input.answered = extra.answered;
    if (extra.transferFailed !== undefined) input.transferFailed = extra.transferFailed;
    if (extra.whisper !== undefined) input.whisper = extra.whisper;
    if (extra.resumed !== undefined) input.resumed = extra.resumed;
    const started = await this.deps.store.submit(
      agent_turn_started,
      { call_id: this.ref.callId, agent: agent.name, version: agent.version, turn: input.turn, kind: hook },
      this.who(),
    );
    if (!started.outcome.ok) return void ctx.log.warn({ outcome: started.outcome, hook }, 'agent turn not started');
    this.turn = input.turn;
    const agentSpan = span.child('agent');
    const spans = { turn: span, agent: agentSpan, firstAudio: span.child('first_audio', {}, queuedAt) };
    try {
      const out = await agent.runTurn(input, turnActions(this.turnHost(spans), agent, input.turn, hook));
      this.state = out.state;
      agentSpan.end();
    } catch (err) {
      agentSpan.end(undefined, 'agent turn failed');
      ctx.log.error({ err, hook, turn: input.turn, agent: agent.name, version: agent.version }, 'agent turn failed');
    }
    if (ctx.ended && ctx.closed) return;
    const saved = await this.deps.store.submit(
      agent_state_saved,
      { call_id: this.ref.callId, agent: agent.name, version: agent.version, turn: input.turn, state: this.state },
      this.who(),
    );
    if (!saved.outcome.ok && saved.outcome.error.code !== 'call_not_found') ctx.log.warn({ outcome: saved.outcome }, 'agent state not saved');
    if (!ctx.closed && !ctx.ended && this.open && ctx.agent.has('onSilence')) this.silence.arm();
  }

  /** At a turn boundary: move to a newer version deployed with `migrate` (state comes along from the store). */
  private async switchAgentIfMigrating(): Promise<void> {
    const { ctx } = this;
    const current = ctx.agent;
    // A stand-in (the agent was paused at attach, resumed since): the call's own agent is picked afresh.
    const standIn = this.standIn;
    this.standIn = false;
    const next = await this.deps.agents.select(
      { tenant: this.ref.tenant, callId: this.ref.callId, name: this.routeName, pinned: standIn ? null : current.version },
      standIn ? null : current,
    );
    if (next === current) return;
    ctx.log.info({ from: current.version, to: next.version, agent: next.name }, 'call migrated to a new agent version at a turn boundary');
    this.deps.agents.retain(next);
    this.deps.agents.release(current);
    ctx.useAgent(next);
  }

  /** The call's agent is paused: carry out its fallback (true), or keep the agent (false). */
  private async fallBackIfPaused(): Promise<boolean> {
    const fb = pauseFallback(this.deps.store, this.ref, this.routeName);
    if (!fb) return false;
    this.ctx.log.info({ agent: this.routeName, fallback: fb }, 'agent paused: the call gets the fallback');
    await this.fallBack(fb);
    return true;
  }

  /** Another agent (it starts afresh), a transfer (legs that can redirect, active calls), or a message and a hang-up. */
  async fallBack(fb: Fallback): Promise<void> {
    const { ctx } = this;
    if (fb.kind === 'agent') {
      const current = ctx.agent;
      const next = await this.deps.agents.select({ tenant: this.ref.tenant, callId: this.ref.callId, name: fb.agent, pinned: null }, null);
      this.routeName = fb.agent;
      this.deps.agents.retain(next);
      this.deps.agents.release(current);
      ctx.useAgent(next);
      this.state = {};
      this.enqueue('onStart', {});
      return;
    }
    if (fb.kind === 'transfer' && this.canHandOver) {
      try {
        return await this.handOver(fb.target);
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message, target: fb.target }, 'pause fallback transfer refused: the caller hears the message');
      }
    }
    await ctx.playText(fb.message);
    await this.hangup('agent paused');
  }

  private turnHost(spans: TurnSpans): TurnHost {
    const { ctx } = this;
    const pci = this.content.pci;
    const rate = ctx.leg.description.outputRate;
    return {
      spans,
      store: this.deps.store,
      callId: this.ref.callId,
      log: ctx.log,
      who: () => this.who(),
      outputRate: rate,
      playSamples: async (samples) => {
        const played = await ctx.pipeline.play(samples);
        return { durationMs: played.durationMs, heardMs: played.heardMs, interrupted: played.interrupted };
      },
      synthesize: (text) => this.deps.tts.synthesize(text, rate),
      clockMs: () => ctx.clockMs(),
      agentTranscript: (startMs, heardMs, text) => this.content.agentSaid(startMs, heardMs, text),
      hangup: (reason) => this.hangup(reason),
      transfer: this.canHandOver ? (target) => this.handOver(target) : undefined,
      warmTransfer: this.transfers.available ? (target, opts) => this.warmTransfer(target, opts) : undefined,
      configTools: this.deps.configTools?.get(ctx.agent.name),
      toolApproval: this.deps.toolApproval,
      closed: this.closing.signal,
      gather: (opts: GatherOptions): Promise<GatherResult> => this.gather(opts),
      pci: {
        pause: async (reason) => void (await this.content.pci.pause(reason, this.who())),
        resume: () => this.content.pci.resume(this.who()),
        get active() {
          return pci.active;
        },
      },
    };
  }

  private async gather(opts: GatherOptions): Promise<GatherResult> {
    if (opts.prompt) await this.ctx.playText(opts.prompt);
    const result = await this.gatherer.next(opts);
    // Inside a PCI pause (ctx.secure) the agent gets what was said, in memory; otherwise what the policy lets it see.
    if (result.kind === 'speech') return { ...result, text: await this.content.takeWords(this.content.pci.active) };
    return result;
  }
}
