/**
 * One live media connection of a call, bridged to its agent. Provider-neutral:
 * it sees a `CallLeg`, the store and an `Agent`, never a wire format.
 *
 *   attach ─► call_media_connected (resumes a `resuming` call) ─► call_activated
 *          ─► agent.onStart | agent.onResume ─► turns (speech end, DTMF) ─► …
 *   leg closed ─► call_media_lost (the call waits in `resuming` for a new leg)
 *   hangup ─► call_ended
 *
 * Agent turns run one at a time; each `say` is an `agent_actions` row whose
 * result records how much the caller heard. Agent state and the turn number
 * are saved after every turn, so a resumed call carries on from there.
 */
import type { Logger } from 'pino';
import type { Agent, AgentTurnContext, SayResult } from '../agents/types.ts';
import type { CallLeg, LegClose } from '../media/call-leg.ts';
import type { MediaClock } from '../media/pacer.ts';
import { MediaPipeline } from '../media/pipeline.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Json, Receipt, Store } from '../store/index.ts';
import type { TextToSpeech } from '../speech/tts.ts';

export interface SessionDeps {
  store: Store<SwitchboardTables>;
  clock: MediaClock;
  tts: TextToSpeech;
  resolveAgent: (name: string | null) => Agent;
  logger: Logger;
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
  private utterancePending = false;
  private ended = false;
  private closedReason: string | null = null;
  private readonly log: Logger;
  private onClosed: ((s: CallSession) => void) | null = null;

  private constructor(
    private readonly deps: SessionDeps,
    readonly ref: CallRef,
    readonly leg: CallLeg,
    readonly legId: string,
    private readonly agent: Agent,
  ) {
    this.log = deps.logger.child({ call: ref.callId, leg: legId });
    this.pipeline = new MediaPipeline(leg, deps.clock);
  }

  /** Records the media connection, activates the call and starts (or resumes) its agent. */
  static async attach(deps: SessionDeps, ref: CallRef, leg: CallLeg, onClosed?: (s: CallSession) => void): Promise<CallSession> {
    const who = { tenant: ref.tenant, caller: `media:${leg.description.provider}` };
    const d = leg.description;
    const connected = await deps.store.submit(
      'call_media_connected',
      { call_id: ref.callId, provider: d.provider, media_session: d.session, codec: d.codec, sample_rate: d.inputRate, resume: d.resume },
      who,
    );
    const res = okResult<{ leg_id: string; resumed: boolean; state: string }>(connected);
    let call = deps.store.read(ref.tenant).calls.get(ref.callId);
    const agent = deps.resolveAgent(call?.agent ?? null);
    if (call?.state === 'answered') {
      okResult(await deps.store.submit('call_activated', { call_id: ref.callId, agent: agent.name, agent_version: agent.version }, who));
      call = deps.store.read(ref.tenant).calls.get(ref.callId);
    }
    const session = new CallSession(deps, ref, leg, res.leg_id, agent);
    session.onClosed = onClosed ?? null;
    const saved = deps.store.read(ref.tenant).agent_state.get(ref.callId);
    if (saved) {
      session.turn = saved.turn;
      session.state = saved.state as Record<string, Json>;
    }
    session.wire();
    const resumed = res.resumed || saved !== undefined;
    session.log.info({ resumed, state: call?.state, turn: session.turn }, 'media attached');
    session.enqueue(resumed ? 'resume' : 'start', (ctx) => (resumed ? agent.onResume?.(ctx) : agent.onStart(ctx)));
    return session;
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /** Ends the call (agent hangup or operator). */
  async hangup(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const r = await this.deps.store.submit('call_ended', { call_id: this.ref.callId, reason }, this.who());
    if (!r.outcome.ok) this.log.warn({ outcome: r.outcome }, 'call_ended refused');
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

  private who(): { tenant: string; caller: string } {
    return { tenant: this.ref.tenant, caller: `agent:${this.agent.name}` };
  }

  private wire(): void {
    this.pipeline.on('speechEnd', (info) => {
      if (this.utterancePending) return; // one queued answer is enough; the caller is still talking to it
      this.utterancePending = true;
      this.enqueue('utterance', (ctx) => {
        this.utterancePending = false;
        return this.agent.onUtterance(ctx, { text: null, durationMs: info.durationMs });
      });
    });
    this.pipeline.on('dtmf', ({ digit }) => this.enqueue('dtmf', (ctx) => this.agent.onDtmf?.(ctx, digit)));
    this.pipeline.on('bargeIn', (info) => this.log.info({ droppedMs: info.droppedMs, heard: info.interrupted.map((p) => p.heardMs) }, 'barge-in'));
    this.pipeline.on('tapError', (info) => this.log.error({ tap: info.tap, err: info.error }, 'media tap failed'));
    this.leg.on('warning', (w) => this.log.warn(w, 'media warning'));
    this.leg.on('closed', (info) => void this.onLegClosed(info));
  }

  private enqueue(kind: string, handler: (ctx: AgentTurnContext) => Promise<void> | void): void {
    this.chain = this.chain.then(async () => {
      if (this.closedReason !== null || this.ended) return;
      const turn = this.turn + 1;
      const started = await this.deps.store.submit(
        'agent_turn_started',
        { call_id: this.ref.callId, agent: this.agent.name, version: this.agent.version, turn, kind },
        this.who(),
      );
      if (!started.outcome.ok) {
        this.log.warn({ outcome: started.outcome, kind }, 'agent turn not started');
        return;
      }
      this.turn = turn;
      let says = 0;
      const ctx: AgentTurnContext = {
        callId: this.ref.callId,
        turn,
        state: this.state,
        say: (text) => this.say(`t${turn}:${kind}:say:${++says}`, text),
        hangup: (reason) => this.hangup(reason),
      };
      try {
        await handler(ctx);
      } catch (err) {
        this.log.error({ err, kind, turn }, 'agent turn failed');
      }
      if (this.ended && this.closedReason !== null) return;
      const saved = await this.deps.store.submit(
        'agent_state_saved',
        { call_id: this.ref.callId, agent: this.agent.name, version: this.agent.version, turn, state: this.state },
        this.who(),
      );
      if (!saved.outcome.ok && saved.outcome.error.code !== 'call_not_found') this.log.warn({ outcome: saved.outcome }, 'agent state not saved');
    }).catch((err: unknown) => {
      // The store closed under a running turn (shutdown): the turn's facts so far are committed.
      this.log.warn({ err: (err as Error).message, kind }, 'agent turn not recorded');
    });
  }

  /**
   * One `say` action. Its request id names the turn, the handler and the
   * position, so a turn re-run after a crash finds its own row, never another's.
   */
  private async say(requestId: string, text: string): Promise<SayResult> {
    const requested = await this.deps.store.submit(
      'agent_action_requested',
      { call_id: this.ref.callId, kind: 'say', request_id: requestId, args: { text } },
      this.who(),
    );
    if (!requested.outcome.ok) return { durationMs: 0, heardMs: 0, interrupted: true };
    const actionId = (requested.outcome.result as { action_id: string }).action_id;
    let result: SayResult;
    try {
      const samples = await this.deps.tts.synthesize(text, this.leg.description.outputRate);
      const played = await this.pipeline.play(samples);
      result = { durationMs: played.durationMs, heardMs: played.heardMs, interrupted: played.interrupted };
    } catch (err) {
      await this.deps.store.submit('agent_action_completed', { action_id: actionId, ok: false, result: { error: String(err) } }, this.who());
      throw err;
    }
    await this.deps.store.submit(
      'agent_action_completed',
      { action_id: actionId, ok: true, result: { duration_ms: result.durationMs, heard_ms: result.heardMs, interrupted: result.interrupted } },
      this.who(),
    );
    return result;
  }

  private async onLegClosed(info: LegClose): Promise<void> {
    if (this.closedReason !== null) return;
    this.closedReason = info.reason;
    this.pipeline.close();
    this.onClosed?.(this);
    this.log.info({ reason: info.reason, graceful: info.graceful, ended: this.ended }, 'media closed');
    if (this.ended) return;
    const r = await this.deps.store
      .submit('call_media_lost', { call_id: this.ref.callId, leg_id: this.legId, reason: info.reason.slice(0, 200) }, { tenant: this.ref.tenant, caller: 'media' })
      .catch((err: unknown) => {
        this.log.error({ err }, 'call_media_lost not recorded');
        return null;
      });
    if (r && !r.outcome.ok && r.outcome.error.code !== 'leg_disconnected') this.log.warn({ outcome: r.outcome }, 'call_media_lost refused');
  }
}

function okResult<R>(r: Receipt): R {
  if (!r.outcome.ok) throw new SessionError(r.outcome.error.code, r.outcome.error.message);
  return r.outcome.result as R;
}
